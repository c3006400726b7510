"""Tests of course_lib.generative and its checkers, against independent references.

References: autograd's Jacobian (torch.autograd.functional.jacobian) for log-determinants,
numerical integration on a grid for normalisation, scipy.stats for the Gaussian mixture,
torch's binary cross-entropy for the GAN losses, and closed-form cases worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from course_lib import generative as gen
from course_lib.exercises import generative as ex

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(module: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (a new flow is the identity map, too easy to test)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return module


def _random_flow(n_layers: int = 4, seed: int = 0) -> gen.RealNVP:
    return _randomize(gen.RealNVP(dim=2, n_layers=n_layers, hidden=16), seed=seed).double()


# ---------------------------------------------------------------------------------------
# Coupling layer and flow: log-determinants, inverses, normalisation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
def test_coupling_log_det_matches_autograd_jacobian(mask):
    mask = torch.tensor(mask, dtype=torch.float64)
    layer = _randomize(gen.AffineCoupling(mask, hidden=8), scale=0.7).double()
    x = 1.5 * torch.randn(5, len(mask), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, log_det = layer(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        sign, logabsdet = torch.linalg.slogdet(jac)
        assert sign > 0  # exp(s) > 0: the layer preserves orientation
        assert torch.allclose(log_det[i], logabsdet, atol=1e-10), (log_det[i], logabsdet)
    assert log_det.abs().max() > 0.05  # the test is not trivial


def test_flow_log_det_matches_autograd_jacobian():
    flow = _random_flow(n_layers=5)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, log_det = flow(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), x[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-10)


def test_coupling_log_density_is_base_density_plus_jacobian_log_det():
    mask = torch.tensor([0.0, 1.0], dtype=torch.float64)
    layer = _randomize(gen.AffineCoupling(mask, hidden=8), scale=0.7, seed=3).double()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    log_px, log_det = gen.coupling_log_density(x, mask, layer.conditioner)
    z, _ = layer(x)
    f64 = torch.float64
    base = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=f64), torch.eye(2, dtype=f64))
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        expected = base.log_prob(z[i]) + torch.linalg.slogdet(jac)[1]
        assert torch.allclose(log_px[i], expected, atol=1e-10)
        assert torch.allclose(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-10)


def test_coupling_layer_changes_only_masked_out_coordinates():
    mask = torch.tensor([1.0, 0.0, 1.0])
    layer = _randomize(gen.AffineCoupling(mask, hidden=8), scale=0.7)
    x = torch.randn(10, 3)
    z, _ = layer(x)
    assert torch.equal(z[:, [0, 2]], x[:, [0, 2]])
    assert not torch.allclose(z[:, 1], x[:, 1])


def test_flow_inverse_undoes_forward():
    flow = _random_flow(n_layers=6, seed=5)
    x = 2 * torch.randn(200, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    z, _ = flow(x)
    assert not torch.allclose(z, x, atol=1e-2)
    assert torch.allclose(flow.inverse(z), x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(x))[0], x, atol=1e-10)


def test_new_flow_is_the_identity_and_its_density_the_standard_normal():
    flow = gen.RealNVP(n_layers=4)
    x = torch.randn(50, 2)
    z, log_det = flow(x)
    assert torch.equal(z, x) and torch.equal(log_det, torch.zeros(50))
    expected = torch.tensor(stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(x.numpy()), dtype=torch.float32)
    assert torch.allclose(flow.log_prob(x), expected, atol=1e-5)


def _grid_mass(log_prob, half_width: float, n: int, dtype=torch.float64) -> float:
    """Riemann sum of exp(log_prob) on an n x n grid of cell centres over [-w, w]^2."""
    h = 2 * half_width / n
    centres = -half_width + h * (torch.arange(n, dtype=dtype) + 0.5)
    gx, gy = torch.meshgrid(centres, centres, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.no_grad():
        return float(torch.exp(log_prob(points)).sum() * h * h)


def test_flow_density_integrates_to_one():
    flow = _random_flow(n_layers=4, seed=7)
    assert abs(_grid_mass(flow.log_prob, 9.0, 400) - 1) < 5e-3


def test_flow_density_of_a_wrong_log_det_does_not_integrate_to_one():
    # The integration test can fail: flipping the log-determinant's sign breaks normalisation.
    flow = _random_flow(n_layers=4, seed=7)

    def wrong(x):
        z, log_det = flow(x)
        return gen.standard_normal_log_prob(z) - log_det

    assert abs(_grid_mass(wrong, 9.0, 300) - 1) > 0.05


def test_flow_samples_follow_its_density():
    # Samples pushed through the inverse must land where log_prob puts the mass: compare the
    # fraction of samples in a box with the density's integral over that box.
    flow = _random_flow(n_layers=4, seed=8)
    samples = flow.sample(20000, seed=0)
    inside = ((samples[:, 0] > 0) & (samples[:, 1] > 0)).double().mean()
    h, n = 8.0 / 400, 400
    centres = h * (torch.arange(n, dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(centres, centres, indexing="ij")
    with torch.no_grad():
        mass = torch.exp(flow.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))).sum() * h * h
    assert abs(float(inside) - float(mass)) < 0.015


def test_train_flow_fits_a_gaussian_by_maximum_likelihood():
    # A correlated Gaussian is an affine push-forward of N(0, I): the flow can fit it exactly,
    # so its test NLL must approach the true entropy.
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.5, 0.0], [0.8, 0.4]])
    mean = torch.tensor([1.0, -2.0])
    train_x = torch.randn(2048, 2, generator=g) @ a.T + mean
    test_x = torch.randn(2048, 2, generator=g) @ a.T + mean
    true = stats.multivariate_normal(mean.numpy(), (a @ a.T).numpy())
    true_nll = -true.logpdf(test_x.numpy()).mean()
    flow = gen.RealNVP(n_layers=4, hidden=16)
    history = gen.train_flow(flow, train_x, epochs=12, lr=1e-2, batch_size=256, device=torch.device("cpu"),
                             progress=False)
    flow_nll = -flow.log_prob(test_x).mean().item()
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert flow_nll - true_nll < 0.05, (flow_nll, true_nll)


# ---------------------------------------------------------------------------------------
# Toy data and their densities
# ---------------------------------------------------------------------------------------

def test_ring_log_density_matches_scipy_mixture():
    x = 2.5 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k, r, s = 6, 1.7, 0.35
    centres = [(r * math.cos(2 * math.pi * i / k), r * math.sin(2 * math.pi * i / k)) for i in range(k)]
    pdf = sum(stats.multivariate_normal(c, s**2 * np.eye(2)).pdf(x.numpy()) for c in centres) / k
    got = gen.ring_log_density(x, n_modes=k, radius=r, std=s)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), np.log(pdf), rtol=1e-6, atol=1e-6)


def test_ring_log_density_hand_computed_at_the_centre():
    # At the origin every mode is at distance r: p(0) = N(0; mu_k, s^2 I) = exp(-r^2 / (2 s^2)) / (2 pi s^2).
    r, s = 2.0, 0.5
    expected = -r**2 / (2 * s**2) - math.log(2 * math.pi * s**2)
    got = float(gen.ring_log_density(torch.zeros(1, 2), n_modes=8, radius=r, std=s))
    assert got == pytest.approx(expected, abs=1e-5)


def test_ring_log_density_far_away_is_finite_and_integrates_to_one():
    far = gen.ring_log_density(torch.tensor([[50.0, 50.0]]))
    assert torch.isfinite(far).all() and far < -1000  # logsumexp: no underflow to -inf
    assert abs(_grid_mass(gen.ring_log_density, 4.0, 400) - 1) < 1e-3


def test_ring_samples_have_the_right_modes_and_spread():
    x = gen.ring_of_gaussians(20000, n_modes=8, radius=2.0, std=0.2, generator=torch.Generator().manual_seed(0))
    centres = gen.ring_centers(8, 2.0)
    nearest = torch.cdist(x, centres).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=8).float() / len(x)
    assert torch.allclose(counts, torch.full((8,), 1 / 8), atol=0.015)
    residual = x - centres[nearest]
    assert residual.std(dim=0) == pytest.approx(torch.tensor([0.2, 0.2]), abs=0.01)
    # The sample's average log-density is minus the mixture's entropy, about log(2 pi e s^2) + log K
    # when the modes barely overlap.
    entropy = math.log(2 * math.pi * math.e * 0.2**2) + math.log(8)
    assert float(-gen.ring_log_density(x).mean()) == pytest.approx(entropy, abs=0.03)


def test_two_moons_without_noise_lie_on_their_half_circles():
    x = gen.two_moons(1000, noise=0.0, generator=torch.Generator().manual_seed(0))
    on_upper = ((x.norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] >= -1e-6)
    on_lower = (((x - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] <= 0.5 + 1e-6)
    assert bool((on_upper | on_lower).all())
    assert int(on_upper.sum()) == 500 and int(on_lower.sum()) == 500
    assert not bool(on_upper[:500].all())  # shuffled, not one moon after the other


def test_two_moons_noise_has_the_requested_spread():
    noisy = gen.two_moons(5000, noise=0.1, generator=torch.Generator().manual_seed(2))
    assert noisy.shape == (5000, 2)
    # Distance to the nearer half circle is |noise| projected on the normal: about 0.1 * sqrt(2/pi) on average.
    d_upper = (noisy.norm(dim=1) - 1).abs()
    d_lower = ((noisy - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs()
    assert float(torch.minimum(d_upper, d_lower).mean()) == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.15)


def test_standard_normal_log_prob_matches_scipy():
    z = torch.randn(20, 3, dtype=torch.float64)
    expected = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z.numpy())
    np.testing.assert_allclose(gen.standard_normal_log_prob(z).numpy(), expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Push-forward sampling
# ---------------------------------------------------------------------------------------

def test_push_forward_of_an_affine_map_has_the_pushed_mean_and_covariance():
    a = torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    b = torch.tensor([-1.0, 3.0])
    x = gen.push_forward(lambda z: z @ a.T + b, 50000, 2, seed=0)
    assert torch.allclose(x.mean(0), b, atol=0.03)
    assert torch.allclose(torch.cov(x.T), a @ a.T, atol=0.05)


def test_push_forward_is_repeatable_with_a_seed():
    g = gen.GANGenerator(latent_dim=3)
    assert torch.equal(gen.push_forward(g, 10, 3, seed=4), gen.push_forward(g, 10, 3, seed=4))
    assert not torch.equal(gen.push_forward(g, 10, 3, seed=4), gen.push_forward(g, 10, 3, seed=5))
    expected = g(torch.randn(10, 3, generator=torch.Generator().manual_seed(4)))
    assert torch.allclose(gen.push_forward(g, 10, 3, seed=4), expected)


# ---------------------------------------------------------------------------------------
# GAN
# ---------------------------------------------------------------------------------------

def test_gan_losses_match_binary_cross_entropy():
    torch.manual_seed(0)
    g, d = gen.GANGenerator(latent_dim=3, hidden=16), gen.GANDiscriminator(hidden=16)
    x, z = torch.randn(12, 2), torch.randn(9, 3)
    out = gen.gan_losses(g, d, x, z)
    real, fake = d(x), d(g(z))
    d_loss = F.binary_cross_entropy_with_logits(real, torch.ones(12)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros(9))
    g_loss = F.binary_cross_entropy_with_logits(fake, torch.ones(9))  # non-saturating: -log D(G(z))
    assert torch.allclose(out["d_loss"], d_loss, atol=1e-6)
    assert torch.allclose(out["g_loss"], g_loss, atol=1e-6)
    assert torch.allclose(out["d_real"], torch.sigmoid(real).mean())
    assert torch.allclose(out["d_fake"], torch.sigmoid(fake).mean())


def test_discriminator_and_generator_losses_match_binary_cross_entropy():
    a, b = 3 * torch.randn(7), 3 * torch.randn(5)
    expected_d = F.binary_cross_entropy(torch.sigmoid(a), torch.ones(7)) + F.binary_cross_entropy(
        torch.sigmoid(b), torch.zeros(5))
    assert torch.allclose(gen.discriminator_loss(a, b), expected_d, atol=1e-5)
    assert torch.allclose(gen.generator_loss(b), -torch.log(torch.sigmoid(b)).mean(), atol=1e-5)
    # Stable where the naive formula overflows: a confident discriminator, logits of +-100.
    assert torch.isfinite(gen.discriminator_loss(torch.tensor([-100.0]), torch.tensor([100.0])))
    assert float(gen.generator_loss(torch.tensor([-100.0]))) == pytest.approx(100.0)


def test_gan_networks_standardize_with_loc_and_scale():
    loc, scale = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.manual_seed(0)
    g = gen.GANGenerator(latent_dim=3, hidden=8, loc=loc, scale=scale)
    z = torch.randn(6, 3)
    assert torch.allclose(g(z), loc + scale * g.net(z))
    d = gen.GANDiscriminator(hidden=8, loc=loc, scale=scale)
    x = torch.randn(6, 2)
    assert torch.allclose(d(x), d.net((x - loc) / scale).squeeze(1))
    assert set(dict(g.named_buffers())) == {"loc", "scale"}  # saved with the model, not trained


def test_gan_discriminator_loss_does_not_reach_the_generator():
    torch.manual_seed(0)
    g, d = gen.GANGenerator(hidden=16), gen.GANDiscriminator(hidden=16)
    out = gen.gan_losses(g, d, torch.randn(8, 2), torch.randn(8, 2))
    out["d_loss"].backward()
    assert all(p.grad is None for p in g.parameters())
    out["g_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_train_gan_moves_the_generator_onto_a_shifted_gaussian():
    data = torch.tensor([2.0, -1.0]) + 0.3 * torch.randn(2048, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    g, d = gen.GANGenerator(latent_dim=2, hidden=32, depth=2), gen.GANDiscriminator(hidden=32, depth=2)
    before = gen.push_forward(g, 2000, 2, seed=1).mean(0)
    history = gen.train_gan(g, d, data, steps=300, batch_size=128, lr=2e-3, device=torch.device("cpu"),
                            progress=False)
    after = gen.push_forward(g, 2000, 2, seed=1)
    assert (before - torch.tensor([2.0, -1.0])).norm() > 1.5
    assert (after.mean(0) - torch.tensor([2.0, -1.0])).norm() < 0.3, after.mean(0)
    assert len(history["d_loss"]) == 300 and all(math.isfinite(v) for v in history["g_loss"])


# ---------------------------------------------------------------------------------------
# Checkers: the reference passes, every mistake fails with its hint
# ---------------------------------------------------------------------------------------

CHECKERS = [ex.check_coupling_log_density, ex.check_push_forward]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.reference_name)
def test_checker_accepts_the_reference(checker):
    assert checker.grade(checker.reference).status == "correct"


@pytest.mark.parametrize(
    ("checker", "mistake"), [(c, m) for c in CHECKERS for m in c.mistakes],
    ids=lambda v: getattr(v, "reference_name", None) or getattr(v, "hint", "")[:40],
)
def test_checker_names_each_mistake(checker, mistake):
    verdict = checker.grade(mistake.wrong)
    assert verdict.status == "wrong"
    assert mistake.hint in verdict.message


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.reference_name)
def test_checker_reports_a_stub_as_not_done(checker):
    def stub(*args):
        raise NotImplementedError

    verdict = checker.grade(stub)
    assert verdict.status == "not_done"
    assert checker(stub) is checker.reference


def test_mistakes_differ_from_the_reference_on_the_cases():
    # Each mistake must be a different function from the reference on the checker's cases,
    # otherwise its hint could never be shown.
    for checker in CHECKERS:
        cases = checker.make_cases(torch.Generator().manual_seed(0))
        for mistake in checker.mistakes:
            assert any(checker._compare(mistake.wrong(*args), checker.reference(*args)) is not None for args in cases)


# ---------------------------------------------------------------------------------------
# Argument checks: ValueError naming the argument
# ---------------------------------------------------------------------------------------

def _cond(x):
    return torch.zeros_like(x), torch.zeros_like(x)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: gen.two_moons(0), "n"),
    (lambda: gen.two_moons(10, noise=-0.1), "noise"),
    (lambda: gen.ring_of_gaussians(10, std=0.0), "std"),
    (lambda: gen.ring_of_gaussians(10, n_modes=0), "n_modes"),
    (lambda: gen.ring_centers(4, radius=-1.0), "radius"),
    (lambda: gen.ring_log_density(torch.zeros(3, 3)), "x"),
    (lambda: gen.push_forward("not a map", 5, 2), "g"),
    (lambda: gen.push_forward(lambda z: z, 0, 2), "n"),
    (lambda: gen.push_forward(lambda z: z, 5, 2.0), "dim"),
    (lambda: gen.push_forward(lambda z: z, 5, 2, seed=-1), "seed"),
    (lambda: gen.standard_normal_log_prob(torch.zeros(3)), "z"),
    (lambda: gen.affine_coupling_forward(torch.zeros(3), torch.tensor([1.0, 0.0]), _cond), "x"),
    (lambda: gen.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 0.0, 0.0]), _cond), "mask"),
    (lambda: gen.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 1.0]), _cond), "mask"),
    (lambda: gen.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([0.5, 0.0]), _cond), "mask"),
    (lambda: gen.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 0.0]),
                                         lambda x: (x[:, :1], x)), "conditioner"),
    (lambda: gen.affine_coupling_inverse(torch.zeros(3, 2), torch.tensor([1.0, 0.0]), "nope"), "conditioner"),
    (lambda: gen.AffineCoupling(torch.tensor([1.0, 0.0]), max_log_scale=0.0), "max_log_scale"),
    (lambda: gen.RealNVP(dim=1), "dim"),
    (lambda: gen.RealNVP(n_layers=0), "n_layers"),
    (lambda: gen.RealNVP().log_prob(torch.zeros(4, 3)), "x"),
    (lambda: gen.RealNVP().inverse(torch.zeros(4, 3)), "z"),
    (lambda: gen.train_flow(gen.RealNVP(), torch.zeros(4, 2), epochs=0), "epochs"),
    (lambda: gen.train_flow(gen.RealNVP(), torch.zeros(4, 3), epochs=1), "data"),
    (lambda: gen.train_gan(gen.GANGenerator(), gen.GANDiscriminator(), torch.zeros(4, 2), steps=0), "steps"),
    (lambda: gen.train_gan(gen.GANGenerator(), gen.GANDiscriminator(), torch.zeros(4, 2), steps=1, lr=0.0), "lr"),
    (lambda: gen.train_gan(gen.GANGenerator(), gen.GANDiscriminator(), torch.zeros(4, 2), steps=1,
                           batch_size=0), "batch_size"),
    (lambda: gen.gan_losses(gen.GANGenerator(), gen.GANDiscriminator(), torch.zeros(4), torch.zeros(4, 2)),
     "x_real"),
    (lambda: gen.GANGenerator(latent_dim=0), "latent_dim"),
    (lambda: gen.GANGenerator(scale=torch.tensor([1.0, 0.0])), "scale"),
    (lambda: gen.GANDiscriminator(loc=torch.zeros(3)), "loc"),
    (lambda: gen.GANGenerator(latent_dim=2)(torch.zeros(4, 3)), "z"),
    (lambda: gen.log_density_grid(gen.ring_log_density, resolution=1), "resolution"),
    (lambda: gen.log_density_grid(gen.ring_log_density, xlim=(1.0, -1.0)), "xlim"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
