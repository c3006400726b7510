"""The generative-model viewpoint: push a standard normal through a map onto 2-D toy data.

Two models of the same 2-D data, trained side by side in notebook 02_generative_viewpoint:

- a *density model*: a RealNVP-style normalizing flow (Dinh et al. 2017) made of affine
  coupling layers, trained by exact maximum likelihood through the change-of-variables
  formula, book equations (gen-change-of-variables), (gen-coupling), (gen-coupling-logdet);
- an *implicit model*: a small GAN (Goodfellow et al. 2014) whose generator samples well
  but gives no likelihood, book equations (gen-gan-d-loss) and (gen-gan-g-loss).

Both are push-forward maps of a standard normal, book equation (gen-push-forward). The toy
data are two moons (no closed-form density) and a ring of Gaussians, whose true density,
book equation (gen-ring-density), is a Gaussian mixture in closed form: the yardstick for the
flow's test log-likelihood.

Conventions: points are rows of an (N, D) tensor; log-densities are in nats, shape (N,).
The flow's ``forward`` is the *normalizing* direction x -> z (data to noise), as in RealNVP;
its ``inverse`` z -> x is the generator g = f^{-1}.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.runtime import get_device, seed_everything, tqdm
from course_lib.training import train

Conditioner = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

LOG_2PI = math.log(2 * math.pi)


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
        generator: optional ``torch.Generator`` for repeatable data.

    Returns:
        Tensor of shape (n, 2), float32, in random order.

    Raises:
        ValueError: if ``n`` is not a positive int or ``noise`` is negative.

    Example:
        >>> x = two_moons(100, generator=torch.Generator().manual_seed(0))
        >>> x.shape, x.dtype
        (torch.Size([100, 2]), torch.float32)
    """
    _check_positive_int(n, "n")
    if not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    n_upper = n // 2
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.cat([upper[:n_upper], lower[n_upper:]])
    x = x + noise * torch.randn(n, 2, generator=generator)
    return x[torch.randperm(n, generator=generator)]


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The means mu_k = radius (cos(2 pi k / K), sin(2 pi k / K)), k = 0..K-1, shape (K, 2)."""
    _check_positive_int(n_modes, "n_modes")
    if not isinstance(radius, (int, float)) or radius < 0:
        raise ValueError(f"radius must be a non-negative number, got {radius!r}")
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    return (radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)).float()


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
        generator: optional ``torch.Generator`` for repeatable data.

    Returns:
        Tensor of shape (n, 2), float32.

    Raises:
        ValueError: if an argument is out of range (the message names it).

    Example:
        >>> ring_of_gaussians(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """
    _check_positive_int(n, "n")
    _check_positive(std, "std")
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
        Log-densities in nats, shape (N,), same dtype as ``x``.

    Raises:
        ValueError: if ``x`` is not (N, 2) or a parameter is out of range.

    Example:
        >>> # at a mode, far from the others: log p = -log K - log(2 pi std^2)
        >>> x = torch.tensor([[100.0, 0.0]])
        >>> round(float(ring_log_density(x, n_modes=4, radius=100.0, std=1.0)), 4)
        -3.2242
    """
    _check_points(x, "x", dim=2)
    _check_positive(std, "std")
    centers = ring_centers(n_modes, radius).to(device=x.device, dtype=x.dtype)
    sq_dist = (x.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(dim=2)  # (N, K)
    return torch.logsumexp(-sq_dist / (2 * std**2), dim=1) - math.log(n_modes) - math.log(2 * math.pi * std**2)


# ---------------------------------------------------------------------------------------
# Push-forward sampling and the standard normal
# ---------------------------------------------------------------------------------------

def push_forward(
    g: Callable[[torch.Tensor], torch.Tensor], n: int, dim: int, seed: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sample the push-forward of N(0, I) by ``g``, book equation (gen-push-forward): x = g(z).

    The noise z is drawn on the CPU, as ``torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))``
    (so a seed gives the same samples on every device), then moved to ``device`` and mapped by ``g``.

    Args:
        g: a map from noise (n, dim) to samples (n, ...), e.g. a flow's ``inverse`` or a GAN's generator.
        n: number of samples, a positive int.
        dim: dimension of the noise, a positive int.
        seed: a non-negative int for repeatable samples; ``None`` uses PyTorch's global generator.
        device: where ``g`` runs; ``None`` keeps the CPU.

    Returns:
        ``g(z)``, computed without gradient; shape (n, ...) as ``g`` returns it.

    Raises:
        ValueError: if ``g`` is not callable, ``n`` or ``dim`` is not a positive int, or ``seed`` is negative.

    Example:
        >>> x = push_forward(lambda z: 3.0 + 0.5 * z, n=20000, dim=1, seed=0)
        >>> round(float(x.mean()), 1), round(float(x.std()), 1)
        (3.0, 0.5)
    """
    if not callable(g):
        raise ValueError(f"g must be callable (a map from noise to samples), got {type(g).__name__}")
    _check_positive_int(n, "n")
    _check_positive_int(dim, "dim")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, dim, generator=generator)
    if device is not None:
        z = z.to(device)
    with torch.no_grad():
        return g(z)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-normal): log N(z; 0, I_D) = -||z||^2 / 2 - (D / 2) log(2 pi), per row.

    Args:
        z: points, shape (N, D).

    Returns:
        Log-densities in nats, shape (N,).

    Example:
        >>> round(float(standard_normal_log_prob(torch.zeros(1, 2))), 4)  # -log(2 pi)
        -1.8379
    """
    _check_points(z, "z")
    return -0.5 * z.pow(2).sum(dim=1) - 0.5 * z.shape[1] * LOG_2PI


# ---------------------------------------------------------------------------------------
# Affine coupling layer (RealNVP) and the flow
# ---------------------------------------------------------------------------------------

def affine_coupling_forward(
    x: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One affine coupling layer, book equations (gen-coupling) and (gen-coupling-logdet).

    With the binary ``mask`` m (1: the coordinate passes through unchanged, 0: it is transformed)
    and ``(s, t) = conditioner(m * x)``:

        z = m * x + (1 - m) * (x * exp(s) + t),
        log |det dz/dx| = sum_j (1 - m_j) s_j.

    The conditioner sees only the unchanged coordinates m * x, so the Jacobian is triangular
    (after reordering) with diagonal 1 where m = 1 and exp(s_j) where m = 0.

    Args:
        x: points, shape (N, D).
        mask: binary tensor of shape (D,), with at least one 0 and one 1.
        conditioner: ``conditioner(m * x) -> (log_scale s, shift t)``, each of shape (N, D);
            only the entries where m = 0 are used.

    Returns:
        ``(z, log_det)``: z of shape (N, D) and log |det dz/dx| of shape (N,).

    Raises:
        ValueError: if ``x`` is not (N, D), the mask is not a binary (D,) tensor, or the
            conditioner's outputs do not have shape (N, D).

    Example:
        >>> m = torch.tensor([1.0, 0.0])
        >>> cond = lambda xm: (torch.full_like(xm, 0.5), torch.ones_like(xm))
        >>> z, log_det = affine_coupling_forward(torch.tensor([[2.0, 3.0]]), m, cond)
        >>> z, log_det
        (tensor([[2.0000, 5.9462]]), tensor([0.5000]))
    """
    _check_points(x, "x")
    _check_mask(mask, x.shape[1])
    return _coupling_forward(x, mask.to(device=x.device, dtype=x.dtype), _checked(conditioner, x.shape))


def affine_coupling_inverse(
    z: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of ``affine_coupling_forward``: x = m * z + (1 - m) * (z - t) * exp(-s).

    The unchanged coordinates give m * x = m * z, so (s, t) = conditioner(m * z) are the same
    as in the forward pass: inverting costs one pass, no equation solving.

    Returns:
        ``(x, log_det)``: x of shape (N, D) and log |det dx/dz| = -sum_j (1 - m_j) s_j, shape (N,).

    Example:
        >>> m = torch.tensor([0.0, 1.0])
        >>> cond = lambda xm: (0.3 * xm.flip(1), xm.flip(1) ** 2)
        >>> x = torch.randn(4, 2)
        >>> z, _ = affine_coupling_forward(x, m, cond)
        >>> torch.allclose(affine_coupling_inverse(z, m, cond)[0], x, atol=1e-6)
        True
    """
    _check_points(z, "z")
    _check_mask(mask, z.shape[1])
    return _coupling_inverse(z, mask.to(device=z.device, dtype=z.dtype), _checked(conditioner, z.shape))


def _coupling_forward(x, mask, conditioner):
    # (gen-coupling) and (gen-coupling-logdet), without the argument checks (AffineCoupling's hot path).
    s, t = conditioner(mask * x)
    free = 1 - mask
    return mask * x + free * (x * torch.exp(s) + t), (free * s).sum(dim=1)


def _coupling_inverse(z, mask, conditioner):
    s, t = conditioner(mask * z)
    free = 1 - mask
    return mask * z + free * (z - t) * torch.exp(-s), -(free * s).sum(dim=1)


def coupling_log_density(
    x: torch.Tensor, mask: torch.Tensor, conditioner: Conditioner,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact log-density of a one-layer flow, book equation (gen-change-of-variables).

    The model is x = f^{-1}(z), z ~ N(0, I), with f one affine coupling layer. By the change
    of variables,

        log p(x) = log N(f(x); 0, I) + log |det df/dx|
                 = -||z||^2 / 2 - (D/2) log(2 pi) + sum_j (1 - m_j) s_j.

    Args:
        x, mask, conditioner: as in ``affine_coupling_forward``.

    Returns:
        ``(log_px, log_det)``, each of shape (N,), in nats.

    Example:
        >>> m = torch.tensor([1.0, 0.0])
        >>> identity = lambda xm: (torch.zeros_like(xm), torch.zeros_like(xm))
        >>> log_px, log_det = coupling_log_density(torch.zeros(1, 2), m, identity)
        >>> round(float(log_px), 4), float(log_det)  # N(0; 0, I_2) = 1 / (2 pi)
        (-1.8379, 0.0)
    """
    z, log_det = affine_coupling_forward(x, mask, conditioner)
    return standard_normal_log_prob(z) + log_det, log_det


def mlp(
    in_features: int, out_features: int, hidden: int = 64, depth: int = 2,
    activation: Callable[[], nn.Module] = nn.SiLU,
) -> nn.Sequential:
    """A fully connected network: ``depth`` hidden layers of width ``hidden``, each followed by ``activation()``."""
    for name, value in (("in_features", in_features), ("out_features", out_features), ("hidden", hidden),
                        ("depth", depth)):
        _check_positive_int(value, name)
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class AffineCoupling(nn.Module):
    """An affine coupling layer with an MLP conditioner, book equation (gen-coupling).

    The conditioner's log-scale is softly bounded, s = c * tanh(raw / c) with c = ``max_log_scale``,
    so that one step cannot blow the density up; its last layer starts at zero, so a new layer
    is the identity map.

    Args:
        mask: binary tensor of shape (D,): 1 for the coordinates that pass through unchanged.
        hidden: width of the conditioner's hidden layers.
        max_log_scale: bound c on |s|, > 0.

    Example:
        >>> layer = AffineCoupling(torch.tensor([1.0, 0.0]))
        >>> x = torch.randn(3, 2)
        >>> z, log_det = layer(x)
        >>> torch.allclose(z, x), log_det.tolist()  # the identity at initialisation
        (True, [0.0, 0.0, 0.0])
    """

    def __init__(self, mask: torch.Tensor, hidden: int = 64, max_log_scale: float = 2.0):
        super().__init__()
        if not isinstance(mask, torch.Tensor) or mask.ndim != 1:
            raise ValueError(f"mask must be a 1-D tensor, got {mask!r}")
        _check_mask(mask, len(mask))
        _check_positive(max_log_scale, "max_log_scale")
        self.register_buffer("mask", mask.float())
        self.max_log_scale = float(max_log_scale)
        dim = len(mask)
        self.net = mlp(dim, 2 * dim, hidden)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def conditioner(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) masked input -> (log_scale, shift), each (N, D)."""
        raw_s, t = self.net(x_masked).chunk(2, dim=1)
        c = self.max_log_scale
        return c * torch.tanh(raw_s / c), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> (z, log |det dz/dx|), shapes (N, D) and (N,)."""
        return _coupling_forward(x, self.mask, self.conditioner)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (N, D) -> (x, log |det dx/dz|), shapes (N, D) and (N,)."""
        return _coupling_inverse(z, self.mask, self.conditioner)


class RealNVP(nn.Module):
    """A normalizing flow of affine coupling layers (Dinh et al. 2017), book equation (gen-flow).

    f = f_L o ... o f_1 maps data x to noise z; consecutive layers have complementary masks
    (the coordinates of even index pass through layer 1, those of odd index layer 2, ...),
    so every coordinate is transformed. Its exact log-likelihood is book equation
    (gen-flow-loglik): log p(x) = log N(f(x); 0, I) + sum_l log |det df_l/dh_{l-1}|.

    Args:
        dim: data dimension D >= 2.
        n_layers: number of coupling layers, a positive int (an even number treats all coordinates alike).
        hidden: width of each conditioner's hidden layers.
        max_log_scale: bound on each layer's |log-scale|.

    Example:
        >>> flow = RealNVP(dim=2, n_layers=4)
        >>> x = torch.randn(5, 2)
        >>> flow.log_prob(x).shape, flow.sample(3, seed=0).shape
        (torch.Size([5]), torch.Size([3, 2]))
    """

    def __init__(self, dim: int = 2, n_layers: int = 8, hidden: int = 64, max_log_scale: float = 2.0):
        super().__init__()
        _check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"dim must be at least 2 (a coupling layer splits the coordinates), got {dim}")
        _check_positive_int(n_layers, "n_layers")
        self.dim = dim
        parity = torch.arange(dim) % 2
        masks = [(parity == (layer % 2)).float() for layer in range(n_layers)]
        self.layers = nn.ModuleList(AffineCoupling(m, hidden, max_log_scale) for m in masks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalizing direction: x (N, D) -> (z = f(x), log |det df/dx|), shapes (N, D) and (N,)."""
        _check_points(x, "x", dim=self.dim)
        log_det = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Generative direction: z (N, D) -> x = f^{-1}(z), shape (N, D)."""
        _check_points(z, "z", dim=self.dim)
        for layer in reversed(self.layers):
            z, _ = layer.inverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Book equation (gen-flow-loglik): exact log p(x) in nats, shape (N,)."""
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n samples x = f^{-1}(z), z ~ N(0, I): the push-forward of book equation (gen-push-forward)."""
        return push_forward(self.inverse, n, self.dim, seed, device=_device_of(self))


def flow_nll(model: RealNVP, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Training objective for ``course_lib.training.train``, book equation (gen-mle).

    Returns:
        ``{"loss": -mean log p(x)}``, the negative log-likelihood in nats per point.
    """
    return {"loss": -model.log_prob(x).mean()}


def train_flow(
    flow: RealNVP,
    data: torch.Tensor,
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 512,
    val_data: torch.Tensor | None = None,
    device: torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Fit ``flow`` by exact maximum likelihood, book equation (gen-mle), with ``course_lib.training.train``.

    Adam with a cosine learning-rate decay from ``lr`` to 0 over the epochs (large steps first,
    then small ones to settle), in float32 (no mixed precision: log-determinants add up many
    small terms).

    Args:
        flow: the model, trained in place.
        data: training points, shape (N, flow.dim).
        epochs: passes over the data, a positive int.
        lr: initial learning rate, > 0.
        batch_size: points per step.
        val_data: optional held-out points, evaluated after each epoch.
        device: where to train; ``None`` picks ``get_device()``.
        seed: seeds the shuffling.
        progress: show tqdm bars.

    Returns:
        ``train``'s history: ``train_loss`` (and ``val_loss``), negative log-likelihoods in nats
        per point, one per epoch, and ``epoch_seconds``.

    Raises:
        ValueError: if ``data`` is not (N, flow.dim), or ``epochs``, ``batch_size`` or ``lr`` is out of range.
    """
    _check_points(data, "data", dim=flow.dim)
    _check_positive_int(epochs, "epochs")
    _check_positive(lr, "lr")
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return train(flow, flow_nll, data, epochs=epochs, batch_size=batch_size, val_data=val_data,
                 optimizer=optimizer, device=device, amp=False, seed=seed, progress=progress,
                 on_epoch_end=lambda epoch, history: schedule.step())


# ---------------------------------------------------------------------------------------
# GAN
# ---------------------------------------------------------------------------------------

class GANGenerator(nn.Module):
    """The GAN's generator G: noise z (N, latent_dim) -> samples (N, data_dim), an MLP.

    Its output is ``loc + scale * mlp(z)``: with ``loc`` and ``scale`` the data's mean and standard
    deviation per coordinate, the network itself works on standardized data, where GANs train best.

    Args:
        latent_dim: dimension of the noise z.
        data_dim: dimension of the samples.
        hidden, depth: width and number of hidden layers (LeakyReLU(0.2) activations).
        loc, scale: per-coordinate shift and scale of the output, shape (data_dim,); default 0 and 1.

    Example:
        >>> GANGenerator()(torch.randn(4, 2)).shape
        torch.Size([4, 2])
    """

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3,
                 loc: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        _check_positive_int(latent_dim, "latent_dim")
        _check_positive_int(data_dim, "data_dim")
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.net = mlp(latent_dim, data_dim, hidden, depth, activation=lambda: nn.LeakyReLU(0.2))
        _register_standardization(self, data_dim, loc, scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_points(z, "z", dim=self.latent_dim)
        return self.loc + self.scale * self.net(z)


class GANDiscriminator(nn.Module):
    """The GAN's discriminator D: samples (N, data_dim) -> logits (N,); D(x) = sigmoid(logit).

    Its input is standardized first, ``mlp((x - loc) / scale)``, as the generator's output is scaled.

    Args:
        data_dim: dimension of the samples.
        hidden, depth: width and number of hidden layers (LeakyReLU(0.2) activations).
        loc, scale: per-coordinate shift and scale of the input, shape (data_dim,); default 0 and 1.

    Example:
        >>> GANDiscriminator()(torch.randn(4, 2)).shape
        torch.Size([4])
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3,
                 loc: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__()
        _check_positive_int(data_dim, "data_dim")
        self.data_dim = data_dim
        self.net = mlp(data_dim, 1, hidden, depth, activation=lambda: nn.LeakyReLU(0.2))
        _register_standardization(self, data_dim, loc, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_points(x, "x", dim=self.data_dim)
        return self.net((x - self.loc) / self.scale).squeeze(1)


def _register_standardization(module: nn.Module, dim: int, loc, scale) -> None:
    loc = torch.zeros(dim) if loc is None else loc
    scale = torch.ones(dim) if scale is None else scale
    for name, value in (("loc", loc), ("scale", scale)):
        if not isinstance(value, torch.Tensor) or value.shape != (dim,):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a tensor of shape ({dim},), got {got}")
    if not bool((scale > 0).all()):
        raise ValueError("scale must be positive")
    module.register_buffer("loc", loc.detach().float().clone())
    module.register_buffer("scale", scale.detach().float().clone())


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-gan-d-loss): L_D = -mean log sigma(a) - mean log(1 - sigma(b)).

    With a the discriminator's logits on real data and b on generated samples; since
    log sigma(a) = -softplus(-a) and log(1 - sigma(b)) = -softplus(b), L_D = mean softplus(-a) + mean softplus(b),
    computed stably. It is the binary cross-entropy with labels 1 for real, 0 for fake.

    Example:
        >>> round(float(discriminator_loss(torch.zeros(3), torch.zeros(5))), 4)  # 2 log 2
        1.3863
    """
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Book equation (gen-gan-g-loss), the non-saturating loss: L_G = -mean log sigma(b) = mean softplus(-b).

    Minimising log(1 - sigma(b)) instead (the minimax game's own term) gives almost no gradient
    when the discriminator easily rejects the samples (b very negative), early in training.

    Example:
        >>> round(float(generator_loss(torch.zeros(4))), 4)  # log 2
        0.6931
    """
    return F.softplus(-logits_fake).mean()


def gan_losses(
    generator: nn.Module, discriminator: nn.Module, x_real: torch.Tensor, z: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Both GAN losses on one batch, book equations (gen-gan-d-loss) and (gen-gan-g-loss).

    L_D uses the generated samples detached, so its gradient reaches only D; L_G's gradient flows
    through D into G (step only G's optimizer on it).

    Args:
        generator: G, mapping z to samples.
        discriminator: D, mapping samples (N, D) to logits (N,).
        x_real: a batch of data, shape (N, D).
        z: a batch of noise, shape (M, latent_dim).

    Returns:
        ``{"d_loss", "g_loss", "d_real", "d_fake"}``: the two losses (scalars, nats) and the mean
        probabilities D assigns to "real" on the real and the fake batch (in [0, 1], for monitoring).

    Example:
        >>> class Zero(nn.Module):  # a discriminator that cannot tell: logit 0, D = 1/2
        ...     def forward(self, x): return torch.zeros(len(x))
        >>> out = gan_losses(nn.Identity(), Zero(), torch.randn(8, 2), torch.randn(8, 2))
        >>> round(float(out["d_loss"]), 4), round(float(out["g_loss"]), 4)  # 2 log 2 and log 2
        (1.3863, 0.6931)
    """
    _check_points(x_real, "x_real")
    _check_points(z, "z")
    fake = generator(z)
    logits_real = discriminator(x_real)
    logits_fake_detached = discriminator(fake.detach())
    return {
        "d_loss": discriminator_loss(logits_real, logits_fake_detached),
        "g_loss": generator_loss(discriminator(fake)),
        "d_real": torch.sigmoid(logits_real).mean().detach(),
        "d_fake": torch.sigmoid(logits_fake_detached).mean().detach(),
    }


def train_gan(
    generator: GANGenerator,
    discriminator: GANDiscriminator,
    data: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    decay: bool = True,
    device: torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train a GAN: alternate one Adam step of D on L_D and one of G on L_G (Goodfellow et al. 2014).

    Each step draws a batch of data and of noise, updates D on (gen-gan-d-loss), then updates G on
    (gen-gan-g-loss) against the D just updated.

    A GAN has no single loss to minimise (it is a two-player game), so it does not fit
    ``course_lib.training.train``; this loop uses Adam with beta1 = 0.5, the usual GAN setting.

    Args:
        generator, discriminator: the two networks, moved to ``device`` and trained in place.
        data: training points, shape (N, data_dim).
        steps: number of (discriminator, generator) update pairs, a positive int.
        batch_size: real points (and fakes) per step, a positive int.
        lr: both optimizers' learning rate, > 0.
        betas: Adam's (beta1, beta2).
        decay: decay both learning rates linearly to 0 over the steps, so that the game, which
            tends to oscillate, settles at the end.
        device: where to train; ``None`` picks ``get_device()``.
        seed: seeds the batches and the noise.
        progress: show a tqdm bar.

    Returns:
        History: ``{"d_loss", "g_loss", "d_real", "d_fake": one value per step, "seconds": [total]}``;
        ``d_real`` and ``d_fake`` are D's mean probability of "real" on the data and on the samples
        (before D's update), in [0, 1].

    Raises:
        ValueError: if ``steps`` or ``batch_size`` is not a positive int, ``lr`` is not positive,
            or ``data`` is not (N, data_dim) with N > 0.
    """
    _check_positive_int(steps, "steps")
    _check_positive_int(batch_size, "batch_size")
    _check_positive(lr, "lr")
    _check_points(data, "data", dim=discriminator.data_dim)
    if len(data) == 0:
        raise ValueError("data is empty")
    device = device or get_device()
    generator_rng = seed_everything(seed)
    generator.to(device).train()
    discriminator.to(device).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps if decay else 1.0)
                 for opt in (opt_d, opt_g)]
    history: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="GAN", disable=not progress, leave=False)
    for step in bar:
        idx = torch.randint(len(data), (batch_size,), generator=generator_rng)
        x = data[idx].to(device, non_blocking=True)
        z = torch.randn(batch_size, generator.latent_dim, generator=generator_rng).to(device)
        fake = generator(z)
        logits_real = discriminator(x)
        logits_fake = discriminator(fake.detach())
        d_loss = discriminator_loss(logits_real, logits_fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(generator.parameters()))  # D's gradients are not needed here
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        history["d_loss"].append(float(d_loss.detach()))
        history["g_loss"].append(float(g_loss.detach()))
        history["d_real"].append(float(torch.sigmoid(logits_real.detach()).mean()))
        history["d_fake"].append(float(torch.sigmoid(logits_fake.detach()).mean()))
        if step % 50 == 0:
            bar.set_postfix(d_loss=f"{history['d_loss'][-1]:.3f}", g_loss=f"{history['g_loss'][-1]:.3f}")
    history["seconds"] = [time.perf_counter() - start]
    generator.eval()
    discriminator.eval()
    return history


# ---------------------------------------------------------------------------------------
# Densities on a grid and plots
# ---------------------------------------------------------------------------------------

@torch.no_grad()
def log_density_grid(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-3.0, 3.0),
    ylim: tuple[float, float] = (-3.0, 3.0),
    resolution: int = 200,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a 2-D log-density on a regular grid (cell centres), for plots and integrals.

    Args:
        log_prob: maps points (N, 2) to log-densities (N,), e.g. ``flow.log_prob`` or ``ring_log_density``.
        xlim, ylim: the box [x_min, x_max] x [y_min, y_max].
        resolution: number of cells per side, an int >= 2.
        device: where ``log_prob`` runs; ``None`` keeps the CPU.

    Returns:
        ``(xs, ys, log_p)``: cell centres along x (resolution,), along y (resolution,), and
        log-densities of shape (resolution, resolution) with rows along y (``imshow``'s layout).
        The probability mass in the box is about ``exp(log_p).sum() * dx * dy``.

    Raises:
        ValueError: if ``resolution`` is not an int >= 2 or a limit is empty.

    Example:
        >>> xs, ys, lp = log_density_grid(standard_normal_log_prob, (-6, 6), (-6, 6), 300)
        >>> mass = np.exp(lp).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
        >>> round(float(mass), 4)
        1.0
    """
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    for name, (lo, hi) in (("xlim", xlim), ("ylim", ylim)):
        if not lo < hi:
            raise ValueError(f"{name} must be (low, high) with low < high, got {(lo, hi)}")
    xs = _cell_centres(*xlim, resolution)
    ys = _cell_centres(*ylim, resolution)
    gx, gy = torch.meshgrid(torch.from_numpy(xs), torch.from_numpy(ys), indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).float()
    values = torch.cat([
        log_prob(chunk.to(device) if device is not None else chunk).float().cpu()
        for chunk in points.split(20000)
    ])
    return xs, ys, values.reshape(resolution, resolution).numpy()


def plot_log_density(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-3.0, 3.0),
    ylim: tuple[float, float] = (-3.0, 3.0),
    *,
    title: str = "log-density",
    ax=None,
    resolution: int = 200,
    vmin: float | None = -10.0,
    device: torch.device | str | None = None,
):
    """Draw log p(x) on a grid as an image with a colour bar (values below ``vmin`` are clipped)."""
    ax = ax or plt.figure(figsize=(5, 4.5)).gca()
    xs, ys, log_p = log_density_grid(log_prob, xlim, ylim, resolution, device)
    image = ax.imshow(log_p, origin="lower", extent=(*xlim, *ylim), cmap="viridis", vmin=vmin,
                      vmax=float(log_p.max()), aspect="equal", interpolation="bilinear")
    ax.figure.colorbar(image, ax=ax, label="log p(x) (nats)", shrink=0.85)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    return ax


def plot_samples(
    samples: torch.Tensor, *, label: str, title: str = "samples", ax=None, color=None, s: float = 2.0,
    alpha: float = 0.5, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
):
    """Scatter 2-D points (N, 2) with a legend entry ``label``; call again on ``ax`` to overlay."""
    _check_points(samples, "samples", dim=2)
    ax = ax or plt.figure(figsize=(4.5, 4.5)).gca()
    points = samples.detach().float().cpu().numpy()
    ax.scatter(points[:, 0], points[:, 1], s=s, alpha=alpha, color=color, label=label)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.legend(markerscale=4, loc="upper right", fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------

def _cell_centres(lo: float, hi: float, n: int) -> np.ndarray:
    step = (hi - lo) / n
    return lo + step * (np.arange(n) + 0.5)


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _check_positive_int(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_positive(value, name: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_points(x, name: str, dim: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        expected = f"(N, {dim})" if dim is not None else "(N, D)"
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {got}")


def _check_mask(mask, dim: int) -> None:
    if not isinstance(mask, torch.Tensor) or mask.shape != (dim,):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a tensor of shape ({dim},), got {got}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must contain only 0s and 1s")
    if bool((mask == 0).all()) or bool((mask == 1).all()):
        raise ValueError("mask must contain at least one 0 and one 1 (a coupling layer splits the coordinates)")


def _checked(conditioner: Conditioner, shape: torch.Size) -> Conditioner:
    """Wrap ``conditioner`` so that a wrong output raises a ValueError naming it."""
    if not callable(conditioner):
        raise ValueError(f"conditioner must be callable, got {type(conditioner).__name__}")

    def checked(x_masked: torch.Tensor):
        out = conditioner(x_masked)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError("conditioner must return a tuple (log_scale, shift)")
        s, t = out
        if s.shape != shape or t.shape != shape:
            raise ValueError(f"conditioner must return log_scale and shift of shape {tuple(shape)}, "
                             f"got {tuple(s.shape)} and {tuple(t.shape)}")
        return s, t

    return checked
