"""2-D toy data, the standard normal, push-forward sampling and densities on a grid.

The data of notebook 02_generative_viewpoint: two moons (no closed-form density) and a ring of
Gaussians, whose true density, book equation (gen-ring-density), is a Gaussian mixture in closed
form: the yardstick for a model's test log-likelihood. Every generative model of the chapter is a
push-forward of a standard normal, book equation (gen-push-forward); ``push_forward`` samples one,
``standard_normal_log_prob`` is the base density, book equation (gen-normal), and
``log_density_grid`` evaluates any 2-D log-density on a grid (for plots, and to check that a
density integrates to 1).

Conventions: points are rows of an (N, D) tensor; log-densities are in nats, shape (N,).
Nothing here imports a model: ``course_lib.flows`` and ``course_lib.gan`` build on this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from course_lib.runtime import as_device
from course_lib.validation import LOG_2PI, check_in_range, check_points, check_positive, check_positive_int

# ---------------------------------------------------------------------------------------
# Toy data
# ---------------------------------------------------------------------------------------


def two_moons(n: int, noise: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Two interleaving half circles with Gaussian noise (the geometry of scikit-learn's make_moons).

    The upper moon is (cos t, sin t), the lower one (1 - cos t, 1/2 - sin t), with t uniform
    in [0, pi] (not evenly spaced as in scikit-learn, so that the data have a density), plus
    isotropic Gaussian noise of standard deviation ``noise``. Points lie roughly in
    [-1, 2] x [-0.5, 1] (plus the noise).

    The density of these data has **no closed form**: it is a uniform density on two curves
    blurred by a Gaussian, a 1-D integral over t with no antiderivative. So the notebook can
    report the flow's log-likelihood on the moons, but not a true value to compare with.

    Args:
        n: number of points, a positive int; the first moon gets ``n // 2`` of them before shuffling.
        noise: standard deviation of the noise, >= 0.
        generator: optional ``torch.Generator`` (on the CPU) for repeatable data.

    Returns:
        Tensor of shape (n, 2), float32, on the CPU, in random order.

    Raises:
        ValueError: if ``n`` is not a positive int or ``noise`` is negative.

    Example:
        >>> x = two_moons(100, generator=torch.Generator().manual_seed(0))
        >>> x.shape, x.dtype
        (torch.Size([100, 2]), torch.float32)
    """
    check_positive_int(n, "n")
    check_in_range(noise, "noise", 0.0, math.inf)
    n_upper = n // 2
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.cat([upper[:n_upper], lower[n_upper:]])
    x = x + noise * torch.randn(n, 2, generator=generator)
    return x[torch.randperm(n, generator=generator)]


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The means mu_k = radius (cos(2 pi k / K), sin(2 pi k / K)), k = 0..K-1, of the ring's K Gaussians.

    Args:
        n_modes: number K of Gaussians, a positive int.
        radius: radius of the circle of means, >= 0.

    Returns:
        Tensor of shape (K, 2), float32, on the CPU.

    Raises:
        ValueError: if ``n_modes`` is not a positive int or ``radius`` is negative.

    Example:
        >>> square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        >>> torch.allclose(ring_centers(4, radius=1.0), square, atol=1e-6)
        True
    """
    return _ring_centers(n_modes, radius).float()


def _ring_centers(n_modes: int, radius: float) -> torch.Tensor:
    # Computed in float64 on the CPU, so that a float64 caller gets float64-exact means.
    check_positive_int(n_modes, "n_modes")
    check_in_range(radius, "radius", 0.0, math.inf)
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def ring_of_gaussians(
    n: int, n_modes: int = 8, radius: float = 2.0, std: float = 0.2, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample the mixture of book equation (gen-ring-density): K equal Gaussians on a circle.

    Each point picks a mode k uniformly, then x = mu_k + std * eps with eps ~ N(0, I_2).

    Args:
        n: number of points, a positive int.
        n_modes: number K of Gaussians, a positive int.
        radius: radius of the circle of means, >= 0.
        std: standard deviation of each Gaussian, > 0.
        generator: optional ``torch.Generator`` (on the CPU) for repeatable data.

    Returns:
        Tensor of shape (n, 2), float32, on the CPU.

    Raises:
        ValueError: if an argument is out of range (the message names it).

    Example:
        >>> ring_of_gaussians(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """
    check_positive_int(n, "n")
    check_positive(std, "std")
    centers = ring_centers(n_modes, radius)
    k = torch.randint(n_modes, (n,), generator=generator)
    return centers[k] + std * torch.randn(n, 2, generator=generator)


def ring_log_density(x: torch.Tensor, n_modes: int = 8, radius: float = 2.0, std: float = 0.2) -> torch.Tensor:
    """The true log-density of ``ring_of_gaussians``, book equation (gen-ring-density).

    log p(x) = log( (1/K) sum_k N(x; mu_k, std^2 I_2) )
             = logsumexp_k( -||x - mu_k||^2 / (2 std^2) ) - log K - log(2 pi std^2),

    computed with ``torch.logsumexp`` so that points far from every mode do not underflow.

    Args:
        x: points, shape (N, 2).
        n_modes, radius, std: the mixture's parameters, as in ``ring_of_gaussians``.

    Returns:
        Log-densities in nats, shape (N,), same dtype and device as ``x``.

    Raises:
        ValueError: if ``x`` is not (N, 2) or a parameter is out of range.

    Example:
        >>> # at a mode, far from the others: log p = -log K - log(2 pi std^2)
        >>> x = torch.tensor([[100.0, 0.0]])
        >>> round(float(ring_log_density(x, n_modes=4, radius=100.0, std=1.0)), 4)
        -3.2242
    """
    check_points(x, "x", dim=2)
    check_positive(std, "std")
    centers = _ring_centers(n_modes, radius).to(device=x.device, dtype=x.dtype)
    sq_dist = (x.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)  # (N, K)
    return torch.logsumexp(-sq_dist / (2 * std**2), dim=1) - math.log(n_modes) - math.log(2 * math.pi * std**2)


# ---------------------------------------------------------------------------------------
# The standard normal and its push-forward
# ---------------------------------------------------------------------------------------


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-normal): log N(z; 0, I_D) = -||z||^2 / 2 - (D / 2) log(2 pi), per row.

    Args:
        z: points, shape (N, D).

    Returns:
        Log-densities in nats, shape (N,), same dtype and device as ``z``.

    Raises:
        ValueError: if ``z`` is not an (N, D) tensor.

    Example:
        >>> round(float(standard_normal_log_prob(torch.zeros(1, 2))), 4)  # -log(2 pi)
        -1.8379
    """
    check_points(z, "z")
    return -0.5 * z.pow(2).sum(dim=1) - 0.5 * z.shape[1] * LOG_2PI


def push_forward(
    g: Callable[[torch.Tensor], torch.Tensor], n: int, dim: int, seed: int | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Sample the push-forward of N(0, I) by ``g``, book equation (gen-push-forward): x = g(z).

    The noise z is drawn on the CPU, as ``torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))``
    (so a seed gives the same samples on every device), then moved to ``device`` and mapped by ``g``.

    Args:
        g: a map from noise (n, dim) to samples (n, ...), e.g. a flow's ``inverse`` or a GAN's generator.
        n: number of samples, a positive int.
        dim: dimension of the noise, a positive int.
        seed: a non-negative int for repeatable samples; ``None`` uses PyTorch's global generator.
        device: where ``g`` runs, a str or torch.device; ``None`` keeps the CPU.

    Returns:
        ``g(z)``, computed without gradient; shape (n, ...) as ``g`` returns it.

    Raises:
        ValueError: if ``g`` is not callable, ``n`` or ``dim`` is not a positive int, ``seed`` is
            negative, or ``device`` names no device.

    Example:
        >>> x = push_forward(lambda z: 3.0 + 0.5 * z, n=20000, dim=1, seed=0)
        >>> round(float(x.mean()), 1), round(float(x.std()), 1)
        (3.0, 0.5)
    """
    if not callable(g):
        raise ValueError(f"g must be callable (a map from noise to samples), got {type(g).__name__}")
    check_positive_int(n, "n")
    check_positive_int(dim, "dim")
    if seed is not None:
        check_positive_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, dim, generator=generator)
    if device is not None:
        z = z.to(as_device(device))
    with torch.no_grad():
        return g(z)


# ---------------------------------------------------------------------------------------
# Densities on a grid
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def log_density_grid(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-3.0, 3.0),
    ylim: tuple[float, float] = (-3.0, 3.0),
    resolution: int = 200,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-D log-density on a regular grid (cell centres), for plots and integrals.

    Args:
        log_prob: maps points (N, 2) to log-densities (N,), e.g. ``flow.log_prob`` or ``ring_log_density``.
        xlim, ylim: the box [x_min, x_max] x [y_min, y_max].
        resolution: number of cells per side, an int >= 2.
        device: where ``log_prob`` runs, a str or torch.device; ``None`` keeps the CPU.

    Returns:
        ``(xs, ys, log_p)``: cell centres along x (resolution,), along y (resolution,), and
        float32 log-densities of shape (resolution, resolution) with rows along y (``imshow``'s
        layout), all numpy arrays. The probability mass in the box is about ``exp(log_p).sum() * dx * dy``.

    Raises:
        ValueError: if ``resolution`` is not an int >= 2, a limit is empty, or ``device`` names no device.

    Example:
        >>> xs, ys, lp = log_density_grid(standard_normal_log_prob, (-6, 6), (-6, 6), 300)
        >>> mass = np.exp(lp).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
        >>> round(float(mass), 4)
        1.0
    """
    check_positive_int(resolution, "resolution", minimum=2)
    for name, (lo, hi) in (("xlim", xlim), ("ylim", ylim)):
        if not lo < hi:
            raise ValueError(f"{name} must be (low, high) with low < high, got {(lo, hi)}")
    device = as_device(device) if device is not None else None
    xs = _cell_centres(*xlim, resolution)
    ys = _cell_centres(*ylim, resolution)
    gx, gy = torch.meshgrid(torch.from_numpy(xs), torch.from_numpy(ys), indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).float()
    values = torch.cat([
        log_prob(chunk.to(device) if device is not None else chunk).float().cpu()
        for chunk in points.split(20000)
    ])
    return xs, ys, values.reshape(resolution, resolution).numpy()


def _cell_centres(lo: float, hi: float, n: int) -> np.ndarray:
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + 0.5)
