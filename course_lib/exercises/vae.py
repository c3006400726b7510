"""Checkers for the VAE part's exercises, numbered in book order (notebooks 03b, 03c, 03_vae, 03d).

``reparameterize`` is random. Its checker makes the comparison deterministic: each call, of the
reference, of the student's function and of each known mistake, runs inside
``torch.random.fork_rng`` right after seeding torch's CPU generator with the case's seed, so a
function that draws eps with ``torch.randn_like(mu)`` (or ``torch.randn(mu.shape)``) sees the
same eps as the reference, and the notebook's own random state is the same after the check as
before it. Values alone cannot tell a
reparameterization from a sample that ignores the trick (``torch.normal(mu, std)`` draws the very
same numbers), so every checker here also compares the gradients with respect to its
differentiable inputs (``grad_inputs``).

Example:
    >>> print(check_reparameterize.grade(lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar))).message)
    [wrong] Exercise 3.5, the reparameterization trick: mu receives no gradient (nor does logvar): ...
    >>> check_reparameterize.grade(lambda mu, logvar: torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()
    ...                            ).status
    'correct'
    >>> print(check_gaussian_kl.grade(lambda mu, logvar: -(mu**2 + logvar.exp() - 1 - logvar).sum(1)).message)
    [wrong] Exercise 3.6, ...: on every test case your values are -2 times the reference's (a sign and a constant ...
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib import vae
from course_lib.exercises import Exercise, Mistake, NumericAnswer, Probe, Verdict

# --------------------------------------------------------------------------- reparameterize

class _SeededExercise(Exercise):
    """An Exercise for a random function of (mu, logvar); its cases are (mu, logvar, seed).

    ``reference`` and every ``Mistake.wrong`` take (mu, logvar), like the student's function; each call
    is fn(mu, logvar) right after seeding the CPU generator with ``seed`` (the cases are CPU tensors),
    inside ``torch.random.fork_rng``, which restores the generator's state afterwards: checking does
    not change the random numbers the notebook draws next. The gradients with respect to mu and
    logvar are compared too, so noise drawn by ``torch.normal(mu, std)`` or ``Normal(mu, std).sample()``
    (the same values, no gradient) is wrong.

    Example:
        >>> before = torch.get_rng_state()
        >>> _ = check_reparameterize.grade(lambda mu, logvar: mu + (0.5 * logvar).exp() * torch.randn_like(mu))
        >>> torch.equal(before, torch.get_rng_state())
        True
    """

    def _invoke(self, fn, args):
        mu, logvar, seed = args
        # CPU only (devices=[]): torch.manual_seed would also reseed every CUDA device, for good
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return fn(mu, logvar)


def _mu_logvar_seed(g: torch.Generator):
    shapes = [(1, 2), (4, 3), (16, 8)]
    return [(torch.randn(s, generator=g), torch.randn(s, generator=g), i) for i, s in enumerate(shapes)]


def _eps(mu):
    return torch.randn_like(mu)


check_reparameterize = _SeededExercise(
    "Exercise 3.5, the reparameterization trick",
    vae.reparameterize,
    "course_lib.vae.reparameterize",
    _mu_logvar_seed,
    mistakes=[
        Mistake("you multiplied eps by the variance exp(logvar); the standard deviation is exp(logvar / 2) "
                "(a missing 1/2).", lambda mu, lv: mu + lv.exp() * _eps(mu)),
        Mistake("logvar is the log-variance, not the standard deviation: sigma = exp(logvar / 2).",
                lambda mu, lv: mu + lv * _eps(mu)),
        Mistake("sigma = exp(logvar / 2), not sqrt(logvar): logvar is a logarithm and may be negative.",
                lambda mu, lv: mu + lv.abs().sqrt() * _eps(mu)),
        Mistake("you forgot the mean: z = mu + sigma * eps.", lambda mu, lv: (0.5 * lv).exp() * _eps(mu)),
        Mistake("you returned mu without noise: the sample needs sigma * eps with eps ~ N(0, I) (torch.randn_like).",
                lambda mu, lv: mu),
        Mistake("mu - sigma * eps has the right distribution, but write the sample as the book's "
                "reparameterization does so that the checker can compare your samples with the reference.",
                lambda mu, lv: mu - (0.5 * lv).exp() * _eps(mu)),
        Mistake("eps must be standard normal (torch.randn_like), not uniform (torch.rand_like).",
                lambda mu, lv: mu + (0.5 * lv).exp() * torch.rand_like(mu)),
        Mistake("mu receives no gradient (nor does logvar): your samples have the right values, but they are not "
                "computed from mu and logvar by differentiable operations. torch.normal(mu, std) and "
                "Normal(mu, std).sample() draw them without the trick, and torch.no_grad() or .detach() cut the "
                "graph: draw only the noise at random, then build the sample from it, mu and logvar with "
                "differentiable operations.",
                lambda mu, lv: (mu + (0.5 * lv).exp() * _eps(mu)).detach()),
        Mistake("logvar receives no gradient: sigma must be computed from logvar inside the graph "
                "(no .detach(), .item() or numpy on the way), or the encoder never learns its variances.",
                lambda mu, lv: mu + (0.5 * lv).exp().detach() * _eps(mu)),
    ],
    grad_inputs=(0, 1),
    arg_names=("mu", "logvar", "seed"),
    accepts="a tensor shaped like mu (any floating dtype), computed from mu and logvar by differentiable "
            "operations, with eps drawn by torch.randn_like(mu) or torch.randn(mu.shape)",
)
"""Example:
    >>> check_reparameterize.grade(lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).status
    'correct'
    >>> print(check_reparameterize.grade(lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu)).message)
    [wrong] ... the standard deviation is exp(logvar / 2) (a missing 1/2). ...
"""


# --------------------------------------------------------------------------- Gaussian KL

def _mu_logvar(g: torch.Generator):
    shapes = [(1, 1), (5, 2), (8, 16)]
    return [(torch.randn(s, generator=g), 0.8 * torch.randn(s, generator=g)) for s in shapes]


def _kl_terms(mu, lv):
    return mu.pow(2) + lv.exp() - 1 - lv


check_gaussian_kl = Exercise(
    "Exercise 3.6, the KL divergence to the prior",
    vae.gaussian_kl,
    "course_lib.vae.gaussian_kl",
    _mu_logvar,
    mistakes=[
        Mistake("you forgot the factor 1/2 in front of the sum.", lambda mu, lv: _kl_terms(mu, lv).sum(1)),
        Mistake("the sign is flipped: the KL is 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2) >= 0.",
                lambda mu, lv: -0.5 * _kl_terms(mu, lv).sum(1)),
        Mistake("logvar is log sigma^2, not log sigma: sigma^2 = exp(logvar), log sigma^2 = logvar.",
                lambda mu, lv: 0.5 * (mu.pow(2) + (2 * lv).exp() - 1 - 2 * lv).sum(1)),
        Mistake("you used logvar as the variance itself: sigma^2 = exp(logvar), log sigma^2 = logvar.",
                lambda mu, lv: 0.5 * (mu.pow(2) + lv - 1 - lv.abs().log()).sum(1)),
        Mistake("you averaged over the latent dimensions; the KL of a diagonal Gaussian is their sum.",
                lambda mu, lv: 0.5 * _kl_terms(mu, lv).mean(1)),
        Mistake("return one KL per example, shape (N,): sum over dim=1 only, do not reduce over the batch.",
                lambda mu, lv: 0.5 * _kl_terms(mu, lv).sum()),
        Mistake("return one KL per example, shape (N,): do not average over the batch.",
                lambda mu, lv: 0.5 * _kl_terms(mu, lv).sum(1).mean()),
        Mistake("you forgot the -1 in each term (the KL of N(0, 1) to itself must be 0).",
                lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - lv).sum(1)),
        Mistake("the mean enters squared: mu^2, not mu.", lambda mu, lv: 0.5 * (mu + lv.exp() - 1 - lv).sum(1)),
        Mistake("the values are right but the KL is detached (.detach(), .item() or numpy on the way): the "
                "encoder would get no gradient from it. Compute it with torch operations on mu and logvar.",
                lambda mu, lv: (0.5 * _kl_terms(mu, lv).sum(1)).detach()),
    ],
    grad_inputs=(0, 1),
    probes=[
        Probe("the mean term 1/2 sum mu^2", "isolated as KL(mu, logvar) - KL(0, logvar)", _mu_logvar,
              lambda f, mu, lv: f(mu, lv) - f(torch.zeros_like(mu), lv)),
        Probe("the variance term 1/2 sum (sigma^2 - 1 - log sigma^2)", "with mu = 0", _mu_logvar,
              lambda f, mu, lv: f(torch.zeros_like(mu), lv)),
    ],
    accepts="a tensor of shape (N,) (any floating dtype), differentiable with respect to mu and logvar",
)
"""Example:
    >>> check_gaussian_kl.grade(lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).sum(1)).status
    'correct'
"""


# --------------------------------------------------------------------------- negative ELBO

def _elbo_cases(g: torch.Generator):
    cases = []
    for n, shape, d in ((1, (1, 4, 4), 2), (6, (1, 28, 28), 2), (4, (1, 28, 28), 16)):
        logits = 2 * torch.randn(n, *shape, generator=g)
        x = (torch.rand(n, *shape, generator=g) < 0.4).float()
        cases.append((logits, x, torch.randn(n, d, generator=g), 0.5 * torch.randn(n, d, generator=g)))
    return cases


def _bce(logits, x, reduction="none"):
    return F.binary_cross_entropy_with_logits(logits, x, reduction=reduction)


def _kl(mu, lv):
    return 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(1)


def _perfect_logits(x):
    """Logits whose sigmoid is x (to 1e-16 for binary x): the cross-entropy vanishes."""
    return 40.0 * (2 * x - 1)


check_negative_elbo = Exercise(
    "Exercise 3.8, the negative ELBO",
    vae.negative_elbo,
    "course_lib.vae.negative_elbo",
    _elbo_cases,
    mistakes=[
        Mistake("you averaged the cross-entropy over pixels (the default of F.binary_cross_entropy); sum it "
                "over the pixels of each image, as log p(x|z) is a sum over pixels, then average over the batch.",
                lambda lo, x, mu, lv: _bce(lo, x, "mean") + _kl(mu, lv).mean()),
        Mistake("you summed over the batch; average the per-image values over the N images.",
                lambda lo, x, mu, lv: _bce(lo, x).sum() + _kl(mu, lv).sum()),
        Mistake("you returned the ELBO; the loss to minimise is its negative: -log p(x|z) + KL.",
                lambda lo, x, mu, lv: -(_bce(lo, x).flatten(1).sum(1) + _kl(mu, lv)).mean()),
        Mistake("the KL must be added, not subtracted: loss = -log p(x|z) + KL(q || p(z)).",
                lambda lo, x, mu, lv: (_bce(lo, x).flatten(1).sum(1) - _kl(mu, lv)).mean()),
        Mistake("the KL term is missing: the loss is -log p(x|z) + KL(q(z|x) || p(z)).",
                lambda lo, x, mu, lv: _bce(lo, x).flatten(1).sum(1).mean()),
        Mistake("the KL term has lost its factor 1/2.",
                lambda lo, x, mu, lv: (_bce(lo, x).flatten(1).sum(1) + 2 * _kl(mu, lv)).mean()),
        Mistake("logvar is log sigma^2, not log sigma: in the KL, sigma^2 = exp(logvar).",
                lambda lo, x, mu, lv: (_bce(lo, x).flatten(1).sum(1)
                                       + 0.5 * (mu.pow(2) + (2 * lv).exp() - 1 - 2 * lv).sum(1)).mean()),
        Mistake("the decoder outputs logits: use F.binary_cross_entropy_with_logits (or apply a sigmoid first).",
                lambda lo, x, mu, lv: (F.binary_cross_entropy(lo.clamp(1e-6, 1 - 1e-6), x, reduction="none")
                                       .flatten(1).sum(1) + _kl(mu, lv)).mean()),
        Mistake("the Bernoulli log-likelihood is a cross-entropy, not a squared error.",
                lambda lo, x, mu, lv: ((torch.sigmoid(lo) - x).pow(2).flatten(1).sum(1) + _kl(mu, lv)).mean()),
        Mistake("the values are right but the KL term is detached: mu and logvar receive no gradient, so the "
                "encoder is never pulled towards the prior. Keep the KL in the graph (no .detach() or .item()).",
                lambda lo, x, mu, lv: (_bce(lo, x).flatten(1).sum(1) + _kl(mu, lv).detach()).mean()),
        Mistake("the values are right but the reconstruction term is detached: the decoder's logits receive no "
                "gradient. Keep the cross-entropy in the graph (no .detach() or .item()).",
                lambda lo, x, mu, lv: (_bce(lo, x).flatten(1).sum(1).detach() + _kl(mu, lv)).mean()),
    ],
    atol=1e-4, rtol=1e-5,
    grad_inputs=(0, 2, 3),
    probes=[
        Probe("the reconstruction term", "isolated as loss(logits) - loss(logits that reproduce x)", _elbo_cases,
              lambda f, lo, x, mu, lv: f(lo, x, mu, lv) - f(_perfect_logits(x), x, mu, lv)),
        Probe("the KL term", "with logits that reproduce x, where the cross-entropy vanishes", _elbo_cases,
              lambda f, lo, x, mu, lv: f(_perfect_logits(x), x, mu, lv)),
    ],
    accepts="a 0-dim tensor (any floating dtype), differentiable with respect to logits, mu and logvar",
)
"""Example:
    >>> import torch.nn.functional as F
    >>> def ok(logits, x, mu, logvar):
    ...     rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    ...     return (rec + 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean()
    >>> check_negative_elbo.grade(ok).status
    'correct'
"""


# --------------------------------------------------------------------------- IWAE

def _log_weights(g: torch.Generator):
    cases = [torch.randn(1, 3, generator=g), torch.randn(5, 2, generator=g), 3 * torch.randn(50, 4, generator=g)]
    cases.append(-1000 + 5 * torch.randn(20, 3, generator=g))  # realistic log-weights: exp underflows to 0
    return [(c,) for c in cases]


check_iwae_bound = Exercise(
    "Exercise 3.2, the importance-weighted bound",
    vae.iwae_bound,
    "course_lib.vae.iwae_bound",
    _log_weights,
    mistakes=[
        Mistake("you averaged the log-weights: that is the k-sample ELBO, not the IWAE bound. Average the "
                "weights themselves, inside the log: logsumexp over the k samples, minus log k.",
                lambda lw: lw.mean(0)),
        Mistake("you forgot the -log k: the bound is log((1/k) sum_i w_i) = logsumexp(log w) - log k.",
                lambda lw: torch.logsumexp(lw, 0)),
        Mistake("log(mean(exp(log_w))) is right on paper, but exp underflows for log-weights near -1000 "
                "(real images): use torch.logsumexp(log_w, dim=0) - log k.",
                lambda lw: lw.exp().mean(0).log()),
        Mistake("the k samples are along dim 0 (log_w has shape (k, N)); you reduced over the examples.",
                lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1])),
        Mistake("you kept only the largest weight (max instead of logsumexp).", lambda lw: lw.max(0).values),
        Mistake("the values are right but the bound is detached: the log-weights receive no gradient, so it "
                "could not be trained. Stay with torch operations (torch.logsumexp), no .detach() or numpy.",
                lambda lw: (torch.logsumexp(lw, 0) - math.log(lw.shape[0])).detach()),
    ],
    grad_inputs=(0,),
    accepts="a tensor of shape (N,) (any floating dtype), differentiable with respect to log_w",
)
"""Example:
    >>> check_iwae_bound.grade(lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0])).status
    'correct'
"""


# ------------------------------------------------------------------ pen and paper: the KL between two 1-D Gaussians
def _kl_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    """KL(N(m1, s1^2) || N(m2, s2^2)) through course_lib.elbo.gaussian_kl_full with 1x1 covariances."""
    from course_lib.elbo import gaussian_kl_full

    t = lambda v: torch.tensor([[v]], dtype=torch.float64)  # noqa: E731
    return float(gaussian_kl_full(t(m1), t(s1**2).view(1, 1, 1), t(m2), t(s2**2).view(1, 1, 1))[0])


KL_GIVEN = {"m_q": 1.0, "s_q": 0.5, "m_p": 0.0, "s_p": 2.0}
_q, _p = (KL_GIVEN["m_q"], KL_GIVEN["s_q"]), (KL_GIVEN["m_p"], KL_GIVEN["s_p"])


def _kl_variant(log_factor=1.0, quad_half=True, minus_half=True, quad_var=True):
    (m1, s1), (m2, s2) = _q, _p
    quad = ((s1**2 if quad_var else s1) + (m1 - m2) ** 2) / ((2 if quad_half else 1) * s2**2)
    return log_factor * math.log(s2 / s1) + quad - (0.5 if minus_half else 0.0)


check_kl_two_gaussians = NumericAnswer(
    "Exercise 3.7, the KL between two 1-D Gaussians",
    _kl_1d(*_q, *_p),
    "the exact KL (course_lib.elbo.gaussian_kl_full)",
    mistakes=[
        Mistake("that is KL(p || q): the KL is not symmetric; here the expectation is under q = N(m_q, s_q^2).",
                _kl_1d(*_p, *_q)),
        Mistake("the log term is log(s_p / s_q), the log of the ratio of the standard deviations; you took the log "
                "of the ratio of the variances.", _kl_variant(log_factor=2.0)),
        Mistake("the middle term divides by 2 s_p^2: a factor 1/2 is missing.", _kl_variant(quad_half=False)),
        Mistake("the constant -1/2 is missing: without it the KL of a distribution to itself would be 1/2.",
                _kl_variant(minus_half=False)),
        Mistake("the middle term has the variance s_q^2, not the standard deviation s_q.",
                _kl_variant(quad_var=False)),
        Mistake("that is the KL of q to the standard normal N(0, 1), not to p = N(m_p, s_p^2).", _kl_1d(*_q, 0.0, 1.0)),
    ],
    atol=1e-3, rtol=0.0, given=KL_GIVEN,
    accepts="a number in nats (a float, a numpy scalar or a 0-dim tensor; a Python expression such as "
            "math.log(4) + ... is fine), within 0.001 of the exact value",
)


# ------------------------------------------------------------------ pen and paper: the ELBO gap, linear-Gaussian model
GAP_GIVEN = {"w": 2.0, "b": 0.0, "s2": 1.0, "x": 3.0, "m": 0.5, "c": 0.5}


def _gap_exact() -> float:
    """log p(x) - ELBO(q) by course_lib.elbo.LinearGaussianModel (lg-marginal and lg-elbo), d = D = 1."""
    from course_lib.elbo import LinearGaussianModel

    g = GAP_GIVEN
    model = LinearGaussianModel(torch.tensor([[g["w"]]], dtype=torch.float64), torch.tensor([g["b"]],
                                dtype=torch.float64), noise_var=g["s2"])
    x = torch.tensor([[g["x"]]], dtype=torch.float64)
    m, c = torch.tensor([[g["m"]]], dtype=torch.float64), torch.tensor([[[g["c"]]]], dtype=torch.float64)
    return float(model.log_marginal(x)[0] - model.elbo(x, m, c)[0])


def _gap_variant(reverse=False, prior=False, half=True, log_factor=1.0, forgot_prior_precision=False):
    g = GAP_GIVEN
    precision = g["w"] ** 2 / g["s2"] + (0.0 if forgot_prior_precision else 1.0)
    var_post = 1.0 / precision
    mean_post = var_post * g["w"] * (g["x"] - g["b"]) / g["s2"]
    if prior:
        mean_post, var_post = 0.0, 1.0
    (m1, v1), (m2, v2) = ((mean_post, var_post), (g["m"], g["c"])) if reverse else ((g["m"], g["c"]),
                                                                                    (mean_post, var_post))
    value = v1 / v2 + (m1 - m2) ** 2 / v2 - 1 + log_factor * math.log(v2 / v1)
    return (0.5 if half else 1.0) * value


check_elbo_gap = NumericAnswer(
    "Exercise 3.1, the ELBO gap of a given encoder",
    _gap_exact(),
    "the exact gap (log p(x) - ELBO by course_lib.elbo.LinearGaussianModel)",
    mistakes=[
        Mistake("that is KL(p(z|x) || q): the gap in the ELBO identity is KL(q || p(z|x)), with the expectation "
                "under q.",
                _gap_variant(reverse=True)),
        Mistake("that is the KL of q to the prior p(z) = N(0, 1), one of the ELBO's two terms; the gap is the KL to "
                "the posterior p(z|x).", _gap_variant(prior=True)),
        Mistake("a factor 1/2 is missing in front of the KL between the two Gaussians.", _gap_variant(half=False)),
        Mistake("the log term of the 1-D Gaussian KL is log of the ratio of variances, not of standard deviations.",
                _gap_variant(log_factor=0.5)),
        Mistake("the posterior precision is 1 + w^2 / s^2: the prior contributes its 1.",
                _gap_variant(forgot_prior_precision=True)),
    ],
    atol=1e-3, rtol=0.0, given=GAP_GIVEN,
    accepts="a number in nats, >= 0 (a float, a numpy scalar or a 0-dim tensor; a Python expression is fine), "
            "within 0.001 of the exact value",
)


# ------------------------------------------------------------------ the score-function (REINFORCE) estimator
def score_function_gradient(f, mu, log_sigma, eps, baseline=0.0):
    """Single-sample score-function estimates of grad_(mu, log sigma) E_q[f(z)], book equation (score-function).

    z = mu + sigma * eps row by row; row s is (f(z_s) - b) * grad log q(z_s) with grad_mu log q = eps / sigma
    and grad_(log sigma) log q = eps^2 - 1. The same as ``course_lib.gradient_estimators.gradient_samples``'s
    ``"score"`` (b = 0) and ``"score_baseline"`` methods, on given noise instead of drawn noise.

    Args:
        f: maps z of shape (S, D) to (S,).
        mu, log_sigma: (D,). eps: (S, D) standard normal draws. baseline: the constant b.

    Returns:
        (S, 2D): columns d/dmu, then d/dlog sigma.
    """
    sigma = log_sigma.exp()
    z = mu + sigma * eps
    weight = (f(z) - baseline).unsqueeze(1)
    return weight * torch.cat([eps / sigma, eps.pow(2) - 1], dim=1)


def _score_cases(g: torch.Generator):
    from course_lib.gradient_estimators import quadratic_objective

    cases = []
    for n, d, b in [(5, 3, 1.5), (8, 2, -0.7), (3, 4, 2.0), (6, 1, 0.4)]:
        mu = torch.randn(d, generator=g, dtype=torch.float64)
        log_sigma = 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
        c = torch.randn(d, generator=g, dtype=torch.float64)
        eps = torch.randn(n, d, generator=g, dtype=torch.float64)
        cases.append((quadratic_objective(c), mu, log_sigma, eps, b))
    return cases


def _score_variant(f, mu, log_sigma, eps, baseline, *, fz=True, b_sign=-1.0, sigma_score=False,
                   mu_score="eps/sigma", f_at_eps=False):
    sigma = log_sigma.exp()
    z = mu + sigma * eps
    weight = ((f(eps if f_at_eps else z) + b_sign * baseline) if fz else torch.ones(len(eps), dtype=eps.dtype))
    score_mu = {"eps/sigma": eps / sigma, "eps": eps, "eps*sigma": eps * sigma}[mu_score]
    score_ls = (eps.pow(2) - 1) / sigma if sigma_score else eps.pow(2) - 1
    return weight.unsqueeze(1) * torch.cat([score_mu, score_ls], dim=1)


def _reparam_instead(f, mu, log_sigma, eps, baseline):
    sigma = log_sigma.exp()
    z = (mu + sigma * eps).requires_grad_(True)
    with torch.enable_grad():
        (df_dz,) = torch.autograd.grad(f(z).sum(), z)
    return torch.cat([df_dz, df_dz * sigma * eps], dim=1)


check_score_function_gradient = Exercise(
    "Exercise 3.3, the score-function estimator",
    score_function_gradient,
    "course_lib.exercises.vae.score_function_gradient",
    _score_cases,
    mistakes=[
        Mistake("the baseline is missing: the estimator weighs the score by f(z) - b, not by f(z).",
                lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, b_sign=0.0)),
        Mistake("the baseline is subtracted, not added: the weight is f(z) - b.",
                lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, b_sign=1.0)),
        Mistake("a sign is flipped: the estimate is (f(z) - b) times the score, not minus it.",
                lambda f, mu, ls, eps, b: -score_function_gradient(f, mu, ls, eps, b)),
        Mistake("the score alone is not the estimate: multiply each row by its weight f(z) - b.",
                lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, fz=False)),
        Mistake("that is the reparameterized gradient (f'(z), f'(z) sigma eps), another estimator: the score "
                "function uses values of f only, never its gradient.", _reparam_instead),
        Mistake("f must be evaluated at z = mu + sigma * eps, not at the standard normal eps.",
                lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, f_at_eps=True)),
        Mistake("the derivative of log q with respect to mu is (z - mu) / sigma^2 = eps / sigma; you used eps.",
                lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, mu_score="eps")),
        Mistake("the derivative of log q with respect to mu is (z - mu) / sigma^2 = eps / sigma; you multiplied by "
                "sigma.", lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, mu_score="eps*sigma")),
        Mistake("the derivative with respect to log sigma is eps^2 - 1; dividing by sigma gives the derivative with "
                "respect to sigma.", lambda f, mu, ls, eps, b: _score_variant(f, mu, ls, eps, b, sigma_score=True)),
        Mistake("one row per draw: the result has shape (S, 2D), the single-sample estimates, not their mean.",
                lambda f, mu, ls, eps, b: score_function_gradient(f, mu, ls, eps, b).mean(0)),
    ],
    atol=1e-8, rtol=1e-6,
    output_names=None,
    accepts="a tensor or numpy array of shape (S, 2D) (any floating dtype): columns d/dmu, then d/dlog sigma",
)


# ----------------------------------------------- pen and paper: the reparameterization estimator's variance
# One dimension: q = N(mu, sigma^2), f(z) = (z - c)^2. One sample z = mu + sigma * eps gives the estimate
# d/dmu f(mu + sigma * eps) = 2 (mu + sigma * eps - c) of the gradient 2 (mu - c); its variance is 4 sigma^2.
VARIANCE_GIVEN = {"mu": 0.5, "sigma": 0.5, "c": 1.0}


def _reparam_variance(sigma: float) -> float:
    """Var_eps[2 (mu + sigma eps - c)] = 4 sigma^2, with eps ~ N(0, 1): only sigma * eps varies."""
    return 4.0 * sigma**2


_vs = VARIANCE_GIVEN["sigma"]
check_reparam_variance = NumericAnswer(
    "Exercise 3.4, the variance of one reparameterized gradient",
    _reparam_variance(_vs),
    "the exact variance",
    mistakes=[
        Mistake("the factor 2 of the derivative is squared in a variance: Var[2 X] = 4 Var[X].", 2.0 * _vs**2),
        Mistake("Var[sigma eps] is sigma^2 Var[eps] = sigma^2, not sigma: the scale enters squared.", 4.0 * _vs),
        Mistake("a single-sample estimate is random: eps changes from draw to draw, so its variance is not 0.", 0.0),
        Mistake("that is the variance of sigma eps alone; the estimate is 2 (mu + sigma eps - c).", _vs**2),
        Mistake("that is the exact gradient 2 (mu - c), not the variance of its estimate.",
                2.0 * (VARIANCE_GIVEN["mu"] - VARIANCE_GIVEN["c"])),
    ],
    atol=1e-3, rtol=0.0, given=VARIANCE_GIVEN,
    accepts="a number (a float, a numpy scalar or a 0-dim tensor; a Python expression is fine), within 0.001",
)


# ------------------------------------------------------------------ free bits
def free_bits_kl(kl_per_dim, lam):
    """The free-bits KL term, book equation (free-bits): sum_j max(lam, mean over the batch of KL_j).

    Equal to ``vae.ELBOObjective(free_bits=lam)``'s KL term; a dimension whose batch-mean KL is below lam
    contributes the constant lam and so gets no gradient.
    """
    return kl_per_dim.mean(dim=0).clamp(min=lam).sum()


def _free_bits_cases(g: torch.Generator):
    cases = []
    for n, d, lam in [(6, 5, 0.5), (10, 8, 0.25), (4, 3, 1.0), (7, 16, 0.5)]:
        # per-dimension scales on both sides of lam, so that some dimensions are clamped and some not
        scale = lam * torch.linspace(0.2, 2.0, d, dtype=torch.float64)[torch.randperm(d, generator=g)]
        kl = scale * 2 * torch.rand(n, d, generator=g, dtype=torch.float64)
        kl[:, 0] = 0.1 * lam  # one dimension clamped in every example: max per example would differ from max of mean
        kl[0, 0] = 3 * lam
        cases.append((kl, lam))
    return cases


check_free_bits_kl = Exercise(
    "Exercise 3.10, free bits",
    free_bits_kl,
    "course_lib.exercises.vae.free_bits_kl",
    _free_bits_cases,
    mistakes=[
        Mistake("the max comes after the mean over the batch: free bits clamp each dimension's average KL, not "
                "each example's KL.", lambda kl, lam: kl.clamp(min=lam).mean(0).sum()),
        Mistake("the max is taken per dimension, not on the total KL: each dimension gets its own lam nats, and a "
                "dimension above lam cannot lend its excess to one below.",
                lambda kl, lam: torch.clamp(kl.mean(0).sum(), min=lam * kl.shape[1])),
        Mistake("free bits puts a floor under each dimension's KL (max), not a ceiling (min).",
                lambda kl, lam: kl.mean(0).clamp(max=lam).sum()),
        Mistake("the values are right, but a dimension below lam still gets a gradient: its contribution must be the "
                "constant lam (torch.clamp or torch.maximum), not the KL plus a detached correction.",
                lambda kl, lam: (kl.mean(0) + (lam - kl.mean(0)).clamp(min=0).detach()).sum()),
        Mistake("average over the batch, do not sum: the KL term is per example.",
                lambda kl, lam: kl.sum(0).clamp(min=lam).sum()),
        Mistake("nothing is clamped: that is the plain KL; each dimension's average KL is replaced by "
                "max(lam, KL_j).", lambda kl, lam: kl.mean(0).sum()),
    ],
    grad_inputs=(0,),
    accepts="a 0-dim tensor connected to kl_per_dim by differentiable operations (any floating dtype); a float "
            "carries no gradient and is wrong",
)


# ------------------------------------------------------------------ predict, then run: which beta collapses?
class CollapsePrediction(NumericAnswer):
    """A predict-then-run question: the smallest beta of a sweep at which at most half the latent units stay active.

    The answer is not known in advance: the notebook measures it, then calls ``observe(active_by_beta, d)`` with the
    sweep's active-unit counts, which sets the right answer and one hint per other beta of the sweep (what was
    measured there). Until then the checker holds an illustrative sweep (``EXAMPLE``), used only by the tests.
    """

    value_word = "measured"
    EXAMPLE = {0.25: 16, 0.5: 15, 1.0: 12, 2.0: 9, 4.0: 6, 8.0: 4, 16.0: 2, 32.0: 1}

    def __init__(self, name: str, accepts: str):
        super().__init__(name, math.nan, "the β the sweep measured", atol=1e-9, rtol=0.0, accepts=accepts)
        self.observe(self.EXAMPLE, 16)

    def observe(self, active_by_beta: dict, latent_dim: int) -> float:
        """Record the sweep (beta -> active units out of ``latent_dim``); returns the right answer."""
        self.sweep = {float(b): int(a) for b, a in active_by_beta.items()}
        self.latent_dim = latent_dim
        collapsed = [b for b in sorted(self.sweep) if 2 * self.sweep[b] <= latent_dim]
        self.reference = collapsed[0] if collapsed else math.inf
        where = (f"β = {self.reference:g} is the first with at most {latent_dim // 2}" if collapsed
                 else f"no β of the sweep leaves {latent_dim // 2} or fewer")
        self.mistakes = tuple(
            Mistake(f"at β = {b:g} the sweep measured {a} active units of {latent_dim}: "
                    + ("not collapsed yet" if b < self.reference else "collapsed, but not the first") + f"; {where}.",
                    b) for b, a in self.sweep.items() if b != self.reference)
        if collapsed:
            self.mistakes += (Mistake(f"the sweep did collapse: {where} active units of {latent_dim}.", math.inf),)
        return self.reference

    def grade(self, answer, seed: int = 0) -> Verdict:
        verdict = super().grade(answer, seed)
        if verdict.status != "wrong" or callable(answer) or any(m.hint in verdict.message for m in self.mistakes):
            return verdict
        betas = ", ".join(f"{b:g}" for b in self.sweep)
        return Verdict("wrong", f"[wrong] {self.name}: choose one of the swept β ({betas}), or math.inf if you expect "
                                f"none to collapse. The notebook continues with {self.reference_name} = "
                                f"{self.reference:g}.")


check_collapse_prediction = CollapsePrediction(
    "Exercise 3.9, which β collapses?",
    accepts="one of the swept β as a number (a float, an int, a numpy scalar or a 0-dim tensor), or math.inf for "
            "'none of them'",
)
