"""Checkers for the VAE chapter's exercises (notebooks 03_vae and 03b_elbo_check).

``reparameterize`` is random. Its checker makes the comparison deterministic: before each call,
of the reference, of the student's function and of each known mistake, it seeds torch's global
generator with the same seed, so a function that draws eps with ``torch.randn_like(mu)`` (or
``torch.randn(mu.shape)``) sees the same eps as the reference. Values alone cannot tell a
reparameterization from a sample that ignores the trick (``torch.normal(mu, std)`` draws the very
same numbers), so every checker here also compares the gradients with respect to its
differentiable inputs (``grad_inputs``).

Example:
    >>> print(check_reparameterize.grade(lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar))).message)
    [wrong] Exercise 3.1, the reparameterization trick: mu receives no gradient (nor does logvar): ...
    >>> check_reparameterize.grade(lambda mu, logvar: torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()
    ...                            ).status
    'correct'
    >>> print(check_gaussian_kl.grade(lambda mu, logvar: -(mu**2 + logvar.exp() - 1 - logvar).sum(1)).message)
    [wrong] Exercise 3.2, ...: on every test case your values are -2 times the reference's (a sign and a constant ...
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib import vae
from course_lib.exercises import Exercise, Mistake, Probe

# --------------------------------------------------------------------------- reparameterize

class _SeededExercise(Exercise):
    """An Exercise for a random function of (mu, logvar); its cases are (mu, logvar, seed).

    ``reference`` and every ``Mistake.wrong`` take (mu, logvar), like the student's function; each call
    is fn(mu, logvar) right after ``torch.manual_seed(seed)``. The gradients with respect to mu and
    logvar are compared too, so noise drawn by ``torch.normal(mu, std)`` or ``Normal(mu, std).sample()``
    (the same values, no gradient) is wrong.
    """

    def _invoke(self, fn, args):
        mu, logvar, seed = args
        torch.manual_seed(seed)
        return fn(mu, logvar)


def _mu_logvar_seed(g: torch.Generator):
    shapes = [(1, 2), (4, 3), (16, 8)]
    return [(torch.randn(s, generator=g), torch.randn(s, generator=g), i) for i, s in enumerate(shapes)]


def _eps(mu):
    return torch.randn_like(mu)


check_reparameterize = _SeededExercise(
    "Exercise 3.1, the reparameterization trick",
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
        Mistake("mu - sigma * eps has the right distribution, but write z = mu + sigma * eps as in (vae-reparam) "
                "so that the checker can compare your samples with the reference.",
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
    "Exercise 3.2, the KL divergence to the prior",
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
    "Exercise 3.3, the negative ELBO",
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
    "Exercise 3.4, the importance-weighted bound",
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
