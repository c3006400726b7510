"""Tests of course_lib.toy_data and of the push-forward checker, against independent references.

References: scipy.stats for the Gaussian mixture and the standard normal, numerical integration
on a grid for normalisation, and closed-form cases worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib import toy_data

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


def _grid_mass(log_prob, half_width: float, n: int, dtype=torch.float64) -> float:
    """Riemann sum of exp(log_prob) on an n x n grid of cell centres over [-w, w]^2."""
    h = 2 * half_width / n
    centres = -half_width + h * (torch.arange(n, dtype=dtype) + 0.5)
    gx, gy = torch.meshgrid(centres, centres, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.no_grad():
        return float(torch.exp(log_prob(points)).sum() * h * h)


# ---------------------------------------------------------------------------------------
# Toy data and their densities
# ---------------------------------------------------------------------------------------

def test_ring_log_density_matches_scipy_mixture():
    x = 2.5 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k, r, s = 6, 1.7, 0.35
    centres = [(r * math.cos(2 * math.pi * i / k), r * math.sin(2 * math.pi * i / k)) for i in range(k)]
    pdf = sum(stats.multivariate_normal(c, s**2 * np.eye(2)).pdf(x.numpy()) for c in centres) / k
    got = toy_data.ring_log_density(x, n_modes=k, radius=r, std=s)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), np.log(pdf), rtol=1e-10, atol=1e-10)  # float64 means, float64 result


def test_ring_log_density_hand_computed_at_the_centre():
    # At the origin every mode is at distance r: p(0) = N(0; mu_k, s^2 I) = exp(-r^2 / (2 s^2)) / (2 pi s^2).
    r, s = 2.0, 0.5
    expected = -r**2 / (2 * s**2) - math.log(2 * math.pi * s**2)
    got = float(toy_data.ring_log_density(torch.zeros(1, 2), n_modes=8, radius=r, std=s))
    assert got == pytest.approx(expected, abs=1e-5)


def test_ring_log_density_far_away_is_finite_and_integrates_to_one():
    far = toy_data.ring_log_density(torch.tensor([[50.0, 50.0]]))
    assert torch.isfinite(far).all() and far < -1000  # logsumexp: no underflow to -inf
    assert abs(_grid_mass(toy_data.ring_log_density, 4.0, 400) - 1) < 1e-3


def test_ring_samples_have_the_right_modes_and_spread():
    x = toy_data.ring_of_gaussians(20000, n_modes=8, radius=2.0, std=0.2, generator=torch.Generator().manual_seed(0))
    centres = toy_data.ring_centers(8, 2.0)
    nearest = torch.cdist(x, centres).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=8).float() / len(x)
    assert torch.allclose(counts, torch.full((8,), 1 / 8), atol=0.015)
    residual = x - centres[nearest]
    assert residual.std(dim=0) == pytest.approx(torch.tensor([0.2, 0.2]), abs=0.01)
    # The sample's average log-density is minus the mixture's entropy, about log(2 pi e s^2) + log K
    # when the modes barely overlap.
    entropy = math.log(2 * math.pi * math.e * 0.2**2) + math.log(8)
    assert float(-toy_data.ring_log_density(x).mean()) == pytest.approx(entropy, abs=0.03)


def test_two_moons_without_noise_lie_on_their_half_circles():
    x = toy_data.two_moons(1000, noise=0.0, generator=torch.Generator().manual_seed(0))
    on_upper = ((x.norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] >= -1e-6)
    on_lower = (((x - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] <= 0.5 + 1e-6)
    assert bool((on_upper | on_lower).all())
    assert int(on_upper.sum()) == 500 and int(on_lower.sum()) == 500
    assert not bool(on_upper[:500].all())  # shuffled, not one moon after the other


def test_two_moons_noise_has_the_requested_spread():
    noisy = toy_data.two_moons(5000, noise=0.1, generator=torch.Generator().manual_seed(2))
    assert noisy.shape == (5000, 2)
    # Distance to the nearer half circle is |noise| projected on the normal: about 0.1 * sqrt(2/pi) on average.
    d_upper = (noisy.norm(dim=1) - 1).abs()
    d_lower = ((noisy - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs()
    assert float(torch.minimum(d_upper, d_lower).mean()) == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.15)


def test_standard_normal_log_prob_matches_scipy():
    z = torch.randn(20, 3, dtype=torch.float64)
    expected = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z.numpy())
    np.testing.assert_allclose(toy_data.standard_normal_log_prob(z).numpy(), expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Push-forward sampling
# ---------------------------------------------------------------------------------------

def test_push_forward_of_an_affine_map_has_the_pushed_mean_and_covariance():
    a = torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    b = torch.tensor([-1.0, 3.0])
    x = toy_data.push_forward(lambda z: z @ a.T + b, 50000, 2, seed=0)
    assert torch.allclose(x.mean(0), b, atol=0.03)
    assert torch.allclose(torch.cov(x.T), a @ a.T, atol=0.05)


def test_push_forward_is_repeatable_with_a_seed():
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    assert torch.equal(toy_data.push_forward(g, 10, 3, seed=4), toy_data.push_forward(g, 10, 3, seed=4))
    assert not torch.equal(toy_data.push_forward(g, 10, 3, seed=4), toy_data.push_forward(g, 10, 3, seed=5))
    expected = g(torch.randn(10, 3, generator=torch.Generator().manual_seed(4)))
    assert torch.allclose(toy_data.push_forward(g, 10, 3, seed=4), expected)




# ---------------------------------------------------------------------------------------
# Densities on a grid
# ---------------------------------------------------------------------------------------

def test_log_density_grid_has_imshow_layout_and_integrates_to_one():
    # Rows run along y, columns along x: compare each cell with a direct evaluation at its centre.
    xs, ys, lp = toy_data.log_density_grid(toy_data.ring_log_density, (-4.0, 4.0), (-3.0, 3.0), 160)
    assert xs.shape == (160,) and ys.shape == (160,) and lp.shape == (160, 160)
    assert xs[0] == pytest.approx(-4.0 + 0.025) and ys[-1] == pytest.approx(3.0 - 6.0 / 320)
    for i, j in [(0, 0), (10, 150), (159, 3), (80, 40)]:
        direct = toy_data.ring_log_density(torch.tensor([[xs[j], ys[i]]], dtype=torch.float64))
        assert lp[i, j] == pytest.approx(float(direct), abs=1e-4)
    # The ring lies inside [-3, 3]^2 up to tails of 5 standard deviations: the mass is 1.
    mass = np.exp(lp.astype(np.float64)).sum() * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_log_density_grid_accepts_a_str_device():
    calls = []

    def log_prob(x):
        calls.append(x.device)
        return toy_data.standard_normal_log_prob(x)

    xs, ys, lp = toy_data.log_density_grid(log_prob, resolution=4, device="cpu")
    assert calls == [torch.device("cpu")] and lp.shape == (4, 4)
    assert toy_data.push_forward(lambda z: z, 3, 2, seed=0, device="cpu").device == torch.device("cpu")


# ---------------------------------------------------------------------------------------
# Argument checks: ValueError naming the argument
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "name"), [
    (lambda: toy_data.two_moons(0), "n"),
    (lambda: toy_data.two_moons(10, noise=-0.1), "noise"),
    (lambda: toy_data.ring_of_gaussians(10, std=0.0), "std"),
    (lambda: toy_data.ring_of_gaussians(10, n_modes=0), "n_modes"),
    (lambda: toy_data.ring_centers(4, radius=-1.0), "radius"),
    (lambda: toy_data.ring_log_density(torch.zeros(3, 3)), "x"),
    (lambda: toy_data.push_forward("not a map", 5, 2), "g"),
    (lambda: toy_data.push_forward(lambda z: z, 0, 2), "n"),
    (lambda: toy_data.push_forward(lambda z: z, 5, 2.0), "dim"),
    (lambda: toy_data.push_forward(lambda z: z, 5, 2, seed=-1), "seed"),
    (lambda: toy_data.push_forward(lambda z: z, 5, 2, device=3), "device"),
    (lambda: toy_data.standard_normal_log_prob(torch.zeros(3)), "z"),
    (lambda: toy_data.log_density_grid(toy_data.ring_log_density, resolution=1), "resolution"),
    (lambda: toy_data.log_density_grid(toy_data.ring_log_density, xlim=(1.0, -1.0)), "xlim"),
    (lambda: toy_data.log_density_grid(toy_data.ring_log_density, ylim=(0.0, 0.0)), "ylim"),
    (lambda: toy_data.log_density_grid(toy_data.ring_log_density, device="no such device"), "device"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
