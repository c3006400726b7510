"""Tests of course_lib.gan, against independent references.

References: torch's binary cross-entropy for the GAN losses, the true density and modes of the
ring of Gaussians (course_lib.toy_data, itself tested against scipy) for what a trained GAN
samples, and a Gaussian fitted to the data as the baseline it must beat.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import gan, training
from course_lib.toy_data import push_forward, ring_centers, ring_log_density, ring_of_gaussians

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------
# Losses and networks
# ---------------------------------------------------------------------------------------

def test_gan_losses_match_binary_cross_entropy():
    torch.manual_seed(0)
    g, d = gan.GANGenerator(latent_dim=3, hidden=16), gan.GANDiscriminator(hidden=16)
    x, z = torch.randn(12, 2), torch.randn(9, 3)
    out = gan.gan_losses(g, d, x, z)
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
    assert torch.allclose(gan.discriminator_loss(a, b), expected_d, atol=1e-5)
    assert torch.allclose(gan.generator_loss(b), -torch.log(torch.sigmoid(b)).mean(), atol=1e-5)
    # Stable where the naive formula overflows: a confident discriminator, logits of +-100.
    assert torch.isfinite(gan.discriminator_loss(torch.tensor([-100.0]), torch.tensor([100.0])))
    assert float(gan.generator_loss(torch.tensor([-100.0]))) == pytest.approx(100.0)


def test_gan_networks_standardize_with_loc_and_scale():
    loc, scale = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    torch.manual_seed(0)
    g = gan.GANGenerator(latent_dim=3, hidden=8, loc=loc, scale=scale)
    z = torch.randn(6, 3)
    assert torch.allclose(g(z), loc + scale * g.net(z))
    d = gan.GANDiscriminator(hidden=8, loc=loc, scale=scale)
    x = torch.randn(6, 2)
    assert torch.allclose(d(x), d.net((x - loc) / scale).squeeze(1))
    assert set(dict(g.named_buffers())) == {"loc", "scale"}  # saved with the model, not trained


def test_gan_discriminator_loss_does_not_reach_the_generator():
    torch.manual_seed(0)
    g, d = gan.GANGenerator(hidden=16), gan.GANDiscriminator(hidden=16)
    out = gan.gan_losses(g, d, torch.randn(8, 2), torch.randn(8, 2))
    out["d_loss"].backward()
    assert all(p.grad is None for p in g.parameters())
    out["g_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())



# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

def test_train_gan_moves_the_generator_onto_a_shifted_gaussian():
    data = torch.tensor([2.0, -1.0]) + 0.3 * torch.randn(2048, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    g, d = gan.GANGenerator(latent_dim=2, hidden=32, depth=2), gan.GANDiscriminator(hidden=32, depth=2)
    before = push_forward(g, 2000, 2, seed=1).mean(0)
    # 19 epochs of 16 batches: about the 300 steps of the step-based loop this test was written for
    history = gan.train_gan(g, d, data, epochs=19, batch_size=128, lr=2e-3, device=torch.device("cpu"),
                            progress=False)
    after = push_forward(g, 2000, 2, seed=1)
    assert (before - torch.tensor([2.0, -1.0])).norm() > 1.5
    assert (after.mean(0) - torch.tensor([2.0, -1.0])).norm() < 0.3, after.mean(0)
    assert len(history["train_d_loss"]) == 19 and all(math.isfinite(v) for v in history["train_g_loss"])


def _ring_scores(points: torch.Tensor) -> tuple[float, int, float]:
    """Share of points within 3 standard deviations of a mode, modes nearest to > 2% of them,
    and their mean true log-density (the notebook's criteria)."""
    distance, nearest = torch.cdist(points, ring_centers()).min(dim=1)
    share = torch.bincount(nearest, minlength=8).float() / len(points)
    return float((distance < 3 * 0.2).float().mean()), int((share > 0.02).sum()), float(ring_log_density(points).mean())


def test_train_gan_learns_the_ring_of_gaussians():
    x = ring_of_gaussians(2048, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    loc, scale = x.mean(0), x.std(0)
    g = gan.GANGenerator(latent_dim=8, hidden=64, loc=loc, scale=scale)
    d = gan.GANDiscriminator(hidden=64, loc=loc, scale=scale)
    near_before, _, _ = _ring_scores(push_forward(g, 2000, 8, seed=1))
    history = gan.train_gan(g, d, x, epochs=60, batch_size=256, lr=3e-3, device="cpu", progress=False)
    near, modes, log_p = _ring_scores(push_forward(g, 2000, 8, seed=1))
    # The baseline: the best single Gaussian (the data's mean and covariance) puts ~25% near a mode.
    fit = torch.distributions.MultivariateNormal(x.mean(0), torch.cov(x.T))
    near_fit, _, log_p_fit = _ring_scores(fit.sample((2000,)))
    assert near_before < 0.1
    assert near > 0.6 and near > near_fit + 0.3, (near, near_fit)
    assert modes == 8, "every mode must get samples (no mode collapse)"
    assert log_p > log_p_fit + 1.0, (log_p, log_p_fit)
    # At the end the discriminator can hardly tell samples from data.
    assert abs(history["train_d_real"][-1] - 0.5) < 0.15 and abs(history["train_d_fake"][-1] - 0.5) < 0.15


def test_train_gan_goes_through_training_train_with_an_alternating_step(monkeypatch):
    calls, order = [], []
    real_train = training.train

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    g, d = gan.GANGenerator(hidden=8, depth=1), gan.GANDiscriminator(hidden=8, depth=1)
    # Record which player each optimizer step moves, and the learning rate it uses.
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        player = "D" if self.param_groups[0]["params"][0] is next(d.parameters()) else "G"
        order.append((player, self.param_groups[0]["lr"]))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    history = gan.train_gan(g, d, x, epochs=2, batch_size=40, lr=0.01, device="cpu", progress=False)
    assert len(calls) == 1 and callable(calls[0]["update"])
    assert set(history) == {"train_d_loss", "train_g_loss", "train_d_real", "train_d_fake", "epoch_seconds"}
    assert all(len(v) == 2 for v in history.values())
    # 2 epochs x ceil(100 / 40) = 6 steps, each D then G, with the learning rate decayed linearly to 0.
    assert [p for p, _ in order] == ["D", "G"] * 6
    assert [lr for _, lr in order[::2]] == pytest.approx([0.01 * (1 - t / 6) for t in range(6)], abs=1e-12)
    assert not g.training and not d.training


def test_train_gan_history_is_the_mean_of_its_steps():
    # train records per-epoch means weighted by batch size: check them against a replay of the steps.
    torch.manual_seed(0)
    g, d = gan.GANGenerator(hidden=8, depth=1), gan.GANDiscriminator(hidden=8, depth=1)
    steps = []
    real_loss = gan.discriminator_loss

    def spy(real, fake):
        out = real_loss(real, fake)
        steps.append((len(real), float(out.detach())))
        return out

    x = torch.randn(90, 2, generator=torch.Generator().manual_seed(1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan, "discriminator_loss", spy)
        history = gan.train_gan(g, d, x, epochs=1, batch_size=40, device="cpu", progress=False)
    assert [n for n, _ in steps] == [40, 40, 10]
    expected = sum(n * v for n, v in steps) / 90
    assert history["train_d_loss"][0] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------------------
# Argument checks: ValueError naming the argument
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "name"), [
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 2), epochs=0), "epochs"),
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 2), epochs=1, lr=0.0), "lr"),
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 2), epochs=1,
                           batch_size=0), "batch_size"),
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 3), epochs=1), "data"),
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(0, 2), epochs=1), "data"),
    (lambda: gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 2), epochs=1,
                           device=3), "device"),
    (lambda: gan.gan_losses(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4), torch.zeros(4, 2)),
     "x_real"),
    (lambda: gan.gan_losses(gan.GANGenerator(), gan.GANDiscriminator(), torch.zeros(4, 2), torch.zeros(4)), "z"),
    (lambda: gan.GANGenerator(latent_dim=0), "latent_dim"),
    (lambda: gan.GANGenerator(hidden=0), "hidden"),
    (lambda: gan.GANGenerator(scale=torch.tensor([1.0, 0.0])), "scale"),
    (lambda: gan.GANDiscriminator(loc=torch.zeros(3)), "loc"),
    (lambda: gan.GANDiscriminator(data_dim=0), "data_dim"),
    (lambda: gan.GANGenerator(latent_dim=2)(torch.zeros(4, 3)), "z"),
    (lambda: gan.GANDiscriminator()(torch.zeros(4, 3)), "x"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
