"""The ELBO identities on the linear-Gaussian model, and the two gradient estimators, to tight tolerances."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate
from torch import distributions as D

from course_lib import gradient_estimators as ge
from course_lib.elbo import LinearGaussianModel, gaussian_kl_full
from course_lib.vae import iwae_bound


@pytest.fixture(scope="module")
def setup():
    model = LinearGaussianModel.random(D=6, d=3, noise_var=0.4, seed=0)
    x, _ = model.sample(8, torch.Generator().manual_seed(1))
    return model, x


def _random_q(n, d, seed, full=True):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, d, generator=g, dtype=torch.float64)
    a = torch.randn(n, d, d, generator=g, dtype=torch.float64) if full else torch.diag_embed(
        torch.rand(n, d, generator=g, dtype=torch.float64) + 0.1)
    c = a @ a.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=torch.float64) if full else a
    return m, c


def test_log_marginal_matches_torch_multivariate_normal(setup):
    model, x = setup
    cov = model.W @ model.W.T + model.noise_var * torch.eye(model.D, dtype=torch.float64)
    expected = D.MultivariateNormal(model.b, covariance_matrix=cov).log_prob(x)
    assert torch.allclose(model.log_marginal(x), expected, atol=1e-10)


def test_log_marginal_matches_numerical_integration_in_one_dimension():
    model = LinearGaussianModel(torch.tensor([[1.5], [-0.5]]), torch.tensor([0.2, 0.1]), 0.3)
    x = torch.tensor([[1.0, -0.4]], dtype=torch.float64)

    def joint(z):
        return math.exp(model.log_joint(x, torch.tensor([[z]], dtype=torch.float64)).item())

    integral, _ = integrate.quad(joint, -20, 20, epsabs=1e-13)
    assert model.log_marginal(x).item() == pytest.approx(math.log(integral), abs=1e-8)


def test_posterior_matches_bayes_rule(setup):
    # p(z|x) = p(x, z) / p(x): the log-density of the closed-form posterior must equal log p(x,z) - log p(x)
    model, x = setup
    mean, cov = model.posterior(x)
    z = mean + 0.3 * torch.randn(x.shape[0], model.d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    log_post = D.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z)
    assert torch.allclose(log_post, model.log_joint(x, z) - model.log_marginal(x), atol=1e-10)


def test_gaussian_kl_full_matches_torch():
    m1, c1 = _random_q(5, 3, seed=3)
    m2, c2 = _random_q(5, 3, seed=4)
    expected = D.kl_divergence(D.MultivariateNormal(m1, c1), D.MultivariateNormal(m2, c2))
    assert torch.allclose(gaussian_kl_full(m1, c1, m2, c2), expected, atol=1e-10)
    assert torch.allclose(gaussian_kl_full(m1, c1, m1, c1), torch.zeros(5, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("full", [True, False])
def test_log_p_equals_elbo_plus_kl_for_any_q(setup, full):
    # (elbo-identity): log p(x) = ELBO(q) + KL(q || p(z|x)), for full-covariance and diagonal q
    model, x = setup
    for seed in range(5):
        m, c = _random_q(len(x), model.d, seed=10 + seed, full=full)
        elbo, gap = model.elbo(x, m, c), model.kl_to_posterior(x, m, c)
        assert torch.allclose(elbo + gap, model.log_marginal(x), atol=1e-9)
        assert (gap > 0).all() and (elbo < model.log_marginal(x)).all()


def test_elbo_is_tight_at_the_true_posterior(setup):
    model, x = setup
    mean, cov = model.posterior(x)
    assert torch.allclose(model.elbo(x, mean, cov), model.log_marginal(x), atol=1e-10)
    assert torch.allclose(model.kl_to_posterior(x, mean, cov), torch.zeros(len(x), dtype=torch.float64), atol=1e-10)


def test_analytic_elbo_matches_its_definition_by_torch_distributions(setup):
    # ELBO = E_q[log p(x|z)] - KL(q || p(z)) (vae-elbo), with the expectation of a quadratic done exactly
    model, x = setup
    m, c = _random_q(len(x), model.d, seed=20)
    kl_prior = D.kl_divergence(D.MultivariateNormal(m, c), D.MultivariateNormal(torch.zeros_like(m), torch.eye(model.d,
                               dtype=torch.float64)))
    resid = x - model.b - m @ model.W.T
    tr = torch.einsum("ij,njk,ik->n", model.W, c, model.W)
    e_log_lik = (-0.5 * model.D * math.log(2 * math.pi * model.noise_var)
                 - (resid.pow(2).sum(1) + tr) / (2 * model.noise_var))
    assert torch.allclose(model.elbo(x, m, c), e_log_lik - kl_prior, atol=1e-9)


def test_monte_carlo_elbo_converges_to_the_analytic_one(setup):
    model, x = setup
    m, c = _random_q(len(x), model.d, seed=30)
    exact = model.elbo(x, m, c)
    g = torch.Generator().manual_seed(0)
    errors = []
    for k in (100, 1000, 50_000):
        log_w = model.log_weights(x, m, c, k, g)
        err = (log_w.mean(0) - exact).abs()
        stderr = log_w.std(0) / math.sqrt(k)
        assert (err < 5 * stderr).all()  # unbiased: within 5 standard errors
        errors.append(err.mean().item())
    assert errors[2] < errors[0] / 10


def test_iwae_approaches_log_p_as_k_grows(setup):
    model, x = setup
    post_mean, post_cov = model.posterior(x)
    g = torch.Generator().manual_seed(40)
    m = post_mean + 0.3 * torch.randn(post_mean.shape, generator=g, dtype=torch.float64)  # a VAE-like q:
    c = torch.diag(torch.diagonal(post_cov)) * 1.5  # diagonal, shifted and too wide
    log_p, kl = model.log_marginal(x), model.kl_to_posterior(x, m, c)
    log_w = model.log_weights(x, m, c, 100_000, torch.Generator().manual_seed(1))
    gaps, stderrs = [], []
    for k in (1, 10, 100, 1000, 10_000):
        bounds = torch.logsumexp(log_w.view(-1, k, len(x)), dim=1) - math.log(k)  # 100000/k independent L_k
        assert torch.allclose(bounds[0], iwae_bound(log_w[:k], k=k))
        gaps.append((log_p - bounds.mean(0)).mean().item())
        stderrs.append((bounds.std(0) / math.sqrt(len(bounds))).mean().item())
    assert abs(gaps[0] - kl.mean().item()) < 5 * stderrs[0]  # k = 1: E[gap] = KL(q || p(z|x))
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] > 0
    assert abs(gaps[4]) < 0.05 * gaps[0]
    # with q the true posterior every weight equals p(x): the IWAE bound is exact for any k
    assert torch.allclose(model.iwae(x, post_mean, post_cov, 3, g), log_p, atol=1e-9)


def test_linear_gaussian_rejects_bad_input():
    with pytest.raises(ValueError, match="noise_var"):
        LinearGaussianModel(torch.ones(2, 1), torch.zeros(2), 0.0)
    with pytest.raises(ValueError, match="b must"):
        LinearGaussianModel(torch.ones(2, 1), torch.zeros(3), 1.0)
    model = LinearGaussianModel.random(D=4, d=2)
    with pytest.raises(ValueError, match="x must"):
        model.log_marginal(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="q_cov"):
        model.elbo(torch.zeros(3, 4), torch.zeros(3, 2), torch.eye(3))
    with pytest.raises(ValueError, match="D must be a positive int"):
        LinearGaussianModel.random(D=0)
    with pytest.raises(ValueError, match="n must be a positive int"):
        model.sample(0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        model.log_weights(torch.zeros(3, 4), torch.zeros(3, 2), torch.eye(2), k=0)


def test_linear_gaussian_reads_python_numbers_in_float64():
    model = LinearGaussianModel([[1.0], [0.1]], [0.1, 0.0], 0.1)  # 0.1 is not a float32 number
    assert model.W.dtype == torch.float64 and model.W[1, 0].item() == 0.1 and model.b[0].item() == 0.1


# --------------------------------------------------------------------------- gradient estimators

MU = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
LOG_SIGMA = torch.tensor([0.0, -0.5, 0.3], dtype=torch.float64)
C = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)


def test_closed_form_gradient_matches_autograd_of_the_closed_form_objective():
    mu, ls = MU.clone().requires_grad_(), LOG_SIGMA.clone().requires_grad_()
    value = (mu - C).pow(2).sum() + torch.exp(2 * ls).sum()  # E ||z - c||^2
    value.backward()
    assert torch.allclose(torch.cat([mu.grad, ls.grad]), ge.quadratic_objective_gradient(MU, LOG_SIGMA, C))


@pytest.mark.parametrize("method", ge.METHODS)
def test_estimators_are_unbiased(method):
    f = ge.quadratic_objective(C)
    rows = ge.gradient_samples(method, f, MU, LOG_SIGMA, 400_000, torch.Generator().manual_seed(0))
    truth = ge.quadratic_objective_gradient(MU, LOG_SIGMA, C)
    stderr = rows.std(0) / math.sqrt(len(rows))
    assert ((rows.mean(0) - truth).abs() < 4 * stderr).all()


def test_reparam_variance_is_lower_and_falls_as_one_over_n():
    f = ge.quadratic_objective(C)
    g = torch.Generator().manual_seed(1)
    var_r10 = ge.estimator_variance("reparam", f, MU, LOG_SIGMA, 10, 2000, g)[1]
    var_s10 = ge.estimator_variance("score", f, MU, LOG_SIGMA, 10, 2000, g)[1]
    var_b10 = ge.estimator_variance("score_baseline", f, MU, LOG_SIGMA, 10, 2000, g)[1]
    var_r100 = ge.estimator_variance("reparam", f, MU, LOG_SIGMA, 100, 2000, g)[1]
    assert (var_r10 < var_s10).all() and (var_r10 < var_b10).all()
    assert var_b10.sum() < var_s10.sum()  # a baseline helps the score function, but not enough
    assert torch.allclose(var_r100 * 10, var_r10, rtol=0.15)
    # reparam variance of d/dmu_j is Var(2 (z_j - c_j)) / n = 4 sigma_j^2 / n, exactly
    assert torch.allclose(var_r10[:3], 4 * torch.exp(2 * LOG_SIGMA) / 10, rtol=0.1)


def test_gradient_samples_rejects_bad_input():
    f = ge.quadratic_objective(C)
    with pytest.raises(ValueError, match="method"):
        ge.gradient_samples("pathwise", f, MU, LOG_SIGMA, 10)
    with pytest.raises(ValueError, match="n must"):
        ge.gradient_samples("reparam", f, MU, LOG_SIGMA, 0)
    with pytest.raises(ValueError, match="mu and log_sigma"):
        ge.gradient_samples("reparam", f, MU, LOG_SIGMA[:2], 10)
    with pytest.raises(ValueError, match="repeats must be an int >= 2"):
        ge.estimator_variance("reparam", f, MU, LOG_SIGMA, 10, 1)
