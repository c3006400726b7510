"""Tests of course_lib.likelihoods against independent references (torch.distributions, numerical integration)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from course_lib import likelihoods


def test_bernoulli_log_likelihood_matches_torch():
    g = torch.Generator().manual_seed(3)
    logits = 4 * torch.randn(5, 1, 6, 6, generator=g, dtype=torch.float64)
    x = torch.bernoulli(torch.full((5, 1, 6, 6), 0.3, dtype=torch.float64), generator=g)
    expected = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(likelihoods.bernoulli_log_likelihood(logits, x), expected, atol=1e-10)
    # far in the tails the logits form stays finite where log(sigmoid) would give -inf
    assert torch.isfinite(likelihoods.bernoulli_log_likelihood(torch.full((1, 2), 200.0), torch.zeros(1, 2))).all()
    with pytest.raises(ValueError, match="logits and x"):
        likelihoods.bernoulli_log_likelihood(logits, x[:, :, :3])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_continuous_bernoulli_matches_torch(dtype):
    logits = torch.linspace(-8, 8, 161, dtype=dtype)  # includes 0 and tiny |logits|
    logits = torch.cat([logits, torch.tensor([1e-4, -1e-4, 0.099, 0.101], dtype=dtype)])
    ref = D.ContinuousBernoulli(logits=logits)
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    assert torch.allclose(likelihoods.continuous_bernoulli_log_norm(logits), ref._cont_bern_log_norm(), atol=tol)
    assert torch.allclose(likelihoods.continuous_bernoulli_mean(logits), ref.mean, atol=tol)
    x = torch.rand(len(logits), dtype=dtype)
    got = likelihoods.continuous_bernoulli_log_likelihood(logits.view(1, -1), x.view(1, -1))
    assert torch.allclose(got, ref.log_prob(x).sum().view(1), atol=tol * len(x))


def test_continuous_bernoulli_is_normalised():
    # a density integrates to 1 over [0, 1], whatever the logit; the Bernoulli "density" of grey levels does not
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for eta in (-5.0, -0.5, 0.0, 0.05, 3.0):
        logits = torch.full((len(x), 1), eta, dtype=torch.float64)
        density = likelihoods.continuous_bernoulli_log_likelihood(logits, x.view(-1, 1)).exp()
        assert torch.trapezoid(density, x).item() == pytest.approx(1.0, abs=1e-6)
        bce_density = likelihoods.bernoulli_log_likelihood(logits, x.view(-1, 1)).exp()
        if eta != 0.0:
            assert torch.trapezoid(bce_density, x).item() < 0.99


def test_gaussian_log_likelihood_matches_torch_fixed_and_tensor_variance():
    g = torch.Generator().manual_seed(4)
    mean, x = (torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    for logvar in (0.0, -3.0, torch.tensor(-1.5, dtype=torch.float64)):
        expected = D.Normal(mean, math.exp(0.5 * float(logvar))).log_prob(x).flatten(1).sum(1)
        assert torch.allclose(likelihoods.gaussian_log_likelihood(mean, x, logvar), expected, atol=1e-10)


def test_binarize_is_bernoulli_of_grey_levels_and_reproducible():
    x = torch.full((100_000,), 0.3)
    b = likelihoods.binarize(x, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert b.mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.equal(b, likelihoods.binarize(x, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        likelihoods.binarize(torch.tensor([1.5]))


def test_gaussian_log_likelihood_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mean and x"):
        likelihoods.gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4), 0.0)
    with pytest.raises(ValueError, match="logits and x"):
        likelihoods.continuous_bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(3, 2))


def test_binarize_tolerates_round_off_and_keeps_dtype_and_device():
    x = torch.tensor([-1e-8, 0.0, 1.0, 1.0 + 1e-8], dtype=torch.float64)  # round-off of a [0, 1] computation
    b = likelihoods.binarize(x, torch.Generator().manual_seed(0))
    assert b.dtype == torch.float64 and b.device == x.device
    assert b.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert likelihoods.binarize(torch.zeros(0, 3)).shape == (0, 3)


def test_binarize_with_a_generator_leaves_the_global_generator_alone():
    before = torch.get_rng_state()
    likelihoods.binarize(torch.full((100,), 0.5), torch.Generator().manual_seed(3))
    assert torch.equal(before, torch.get_rng_state())
