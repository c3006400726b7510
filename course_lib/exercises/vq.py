"""Checkers for the VQ-VAE chapter's exercises (notebook 04_vqvae).

Two exercises are about gradients, not only values: the straight-through estimator and the VQ
loss. Their checkers list z_e and e as differentiable inputs (``grad_inputs``): the base
``Exercise`` back-propagates a fixed upstream gradient and compares the gradients with respect to
z_e and e with the reference's; every mistake goes through the same mechanism, so each mistake is
recognised by its gradients.
"""

from __future__ import annotations

import math

import torch

from course_lib import vq
from course_lib.exercises import Exercise, Mistake, NumericAnswer, Probe


# --------------------------------------------------------------------------- Exercise 4.1: nearest code
def _quantize_cases(g: torch.Generator):
    cases = []
    for shape, k in (((6, 2), 5), ((2, 7, 7, 4), 16), ((30, 3), 8), ((1, 8), 3)):
        d = shape[-1]
        # codes of very different lengths, so that dropping ||e||^2 changes the answer
        codebook = torch.randn(k, d, generator=g) * torch.rand(k, 1, generator=g).mul(3).add(0.2)
        cases.append((torch.randn(shape, generator=g) * 1.5, codebook))
    return cases


def _distances(z, codebook):
    flat = z.reshape(-1, z.shape[-1])
    return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.pow(2).sum(1)


check_quantize = Exercise(
    "Exercise 4.1, the nearest code",
    vq.nearest_code,
    "course_lib.vq.nearest_code",
    _quantize_cases,
    mistakes=[
        Mistake("you took the farthest code (argmax); the nearest code minimises the distance (argmin).",
                lambda z, c: _distances(z, c).argmax(1).reshape(z.shape[:-1])),
        Mistake("you picked the code with the largest dot product z.e_k: that ignores ||e_k||^2, so long codes "
                "win; minimise ||z||^2 - 2 z.e_k + ||e_k||^2.",
                lambda z, c: (z.reshape(-1, z.shape[-1]) @ c.T).argmax(1).reshape(z.shape[:-1])),
        Mistake("the cross term is -2 z.e_k: with -z.e_k the codes' lengths weigh twice as much as they should.",
                lambda z, c: (c.pow(2).sum(1) - z.reshape(-1, z.shape[-1]) @ c.T).argmin(1).reshape(z.shape[:-1])),
        Mistake("you measured the distance with absolute values (L1); the nearest code is by the squared Euclidean "
                "distance.",
                lambda z, c: (z.reshape(-1, 1, z.shape[-1]) - c).abs().sum(-1).argmin(1).reshape(z.shape[:-1])),
        Mistake("the result must have the shape of z_e without its last axis: reshape the (N*L,) indices back "
                "to z_e.shape[:-1].",
                lambda z, c: _distances(z, c).argmin(1)),
    ],
    accepts="an integer tensor (any integer dtype) or numpy array of shape z_e.shape[:-1]; float indices are wrong",
)
"""Example:
    >>> check_quantize.grade(lambda z, c: torch.cdist(z.reshape(-1, z.shape[-1]), c).argmin(1).reshape(z.shape[:-1])
    ...                      ).status  # the square root does not change the argmin
    'correct'
"""


# --------------------------------------------------------------------------- Exercise 4.2: straight-through
def _straight_through_cases(g: torch.Generator):
    cases = []
    for shape in ((4, 3), (2, 7, 7, 5), (1, 2)):
        z_e = torch.randn(shape, generator=g)
        cases.append((z_e, torch.randn(shape, generator=g)))
    return cases


check_straight_through = Exercise(
    "Exercise 4.2, the straight-through estimator",
    vq.straight_through,
    "course_lib.vq.straight_through",
    _straight_through_cases,
    mistakes=[
        Mistake("the forward value is right but the encoder gets no gradient: returning e (or z_e + (e - z_e) "
                "without detach) sends the decoder's gradient to the codebook instead. Use z_e + (e - z_e).detach().",
                lambda z_e, e: e),
        Mistake("the stop-gradient is on the wrong side: e + (z_e - e).detach() outputs z_e, not the code, and "
                "sends the gradient to the codebook. Use z_e + (e - z_e).detach().",
                lambda z_e, e: e + (z_e - e).detach()),
        Mistake("you returned z_e: the gradient is right but the decoder never sees the quantized code e.",
                lambda z_e, e: z_e),
        Mistake("e.detach() has the right value but no gradient at all: the encoder would never learn (the same "
                "for a result computed under torch.no_grad() or detached at the end: z_e receives no gradient).",
                lambda z_e, e: e.detach()),
        Mistake("the values are right but the gradient reaching z_e is scaled: the straight-through estimator "
                "passes the decoder's gradient to z_e unchanged (z_e + (e - z_e).detach(), with no factor on z_e).",
                lambda z_e, e: 2 * z_e - (z_e - e + z_e).detach()),
    ],
    grad_inputs=(0, 1),
    accepts="a tensor shaped like z_e (any floating dtype) whose value is e and whose gradient flows to z_e",
)
"""Checks the output *and* where the decoder's gradient goes: the checker multiplies the output by a
fixed random upstream gradient, back-propagates, and compares (z_q, dz_e, de) with the reference.
The student's function is called as ``fn(z_e, e)``.

Example:
    >>> check_straight_through.grade(lambda z_e, e: e).status
    'wrong'
"""


# --------------------------------------------------------------------------- Exercise 4.3: the VQ loss
def _vq_loss_cases(g: torch.Generator):
    return [
        (torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), 0.25),
        (torch.randn(2, 7, 7, 4, generator=g), torch.randn(2, 7, 7, 4, generator=g), 0.25),
        (torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g), 0.5),
    ]


def _sq(a, b):
    return (a - b).pow(2).flatten(1).sum(1).mean()


def _norm(a, b):
    return (a - b).norm(dim=-1).reshape(len(a), -1).sum(1).mean()


check_vq_loss = Exercise(
    "Exercise 4.3, the VQ loss with its two stop-gradients",
    vq.vq_loss,
    "course_lib.vq.vq_loss",
    _vq_loss_cases,
    mistakes=[
        Mistake("the stop-gradients are swapped (equivalently, beta multiplies the codebook term): the encoder gets "
                "the full pull and the codebook only beta of it. Write ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2.",
                lambda z, e, b: _sq(z, e.detach()) + b * _sq(z.detach(), e)),
        Mistake("without stop-gradients both terms are the same function, and both z_e and e get (1 + beta) times "
                "the gradient: detach z_e in the codebook term and e in the commitment term.",
                lambda z, e, b: (1 + b) * _sq(z, e)),
        Mistake("both terms stop the gradient of z_e, so the encoder is never pulled towards its code: the "
                "commitment term must detach e, not z_e.",
                lambda z, e, b: (1 + b) * _sq(z.detach(), e)),
        Mistake("the commitment term beta ||z_e - sg[e]||^2 is missing: the encoder gets no gradient from the loss.",
                lambda z, e, b: _sq(z.detach(), e)),
        Mistake("you averaged over every number (F.mse_loss's default); sum over all but the batch axis, then "
                "average over the batch, as the autoencoder's loss does.",
                lambda z, e, b: (z.detach() - e).pow(2).mean() + b * (z - e.detach()).pow(2).mean()),
        Mistake("the distance is not squared: use ||z_e - e||^2, not ||z_e - e||.",
                lambda z, e, b: _norm(z.detach(), e) + b * _norm(z, e.detach())),
        Mistake("beta weighs the commitment term only: codebook term + beta * commitment term, not "
                "beta * (codebook term + commitment term).",
                lambda z, e, b: b * (_sq(z.detach(), e) + _sq(z, e.detach()))),
    ],
    grad_inputs=(0, 1),
    probes=[
        Probe("the codebook term ||sg[z_e] - e||^2", "with beta = 0", _vq_loss_cases,
              lambda f, z, e, b: f(z, e, 0.0)),
        Probe("the commitment term ||z_e - sg[e]||^2", "isolated as (loss(beta) - loss(0)) / beta", _vq_loss_cases,
              lambda f, z, e, b: (f(z, e, b) - f(z, e, 0.0)) / b),
    ],
    accepts="a 0-dim tensor (any floating dtype); its gradients with respect to z_e and e are compared too",
)
"""The checker back-propagates the loss and compares (loss, dloss/dz_e, dloss/de) with the reference.
The student's function is called as ``fn(z_e, e, beta)``.

Example:
    >>> check_vq_loss.grade(lambda z, e, b: (1 + b) * ((z - e) ** 2).flatten(1).sum(1).mean()).status
    'wrong'
"""


# --------------------------------------------------------------------------- Exercise 4.4: perplexity
def _perplexity_cases(g: torch.Generator):
    cases = []
    for n, k in ((50, 8), (30, 64), (200, 16), (7, 5)):
        # skewed usage: squares of uniform numbers favour the first codes
        idx = (torch.rand(n, generator=g).pow(2) * k).long().clamp(max=k - 1)
        cases.append((idx, k))
    cases.append((torch.randint(0, 10, (4, 7, 7), generator=g), 32))
    return cases


def _entropy_of(p):
    return -torch.special.xlogy(p, p).sum()


def _entropy_nats(idx, k):
    counts = torch.bincount(idx.reshape(-1), minlength=k).float()
    return _entropy_of(counts / counts.sum())


def _nan_if_unused(idx, k):
    return torch.tensor(float("nan")) if (torch.bincount(idx.reshape(-1), minlength=k) == 0).any() else 1.0


check_perplexity = Exercise(
    "Exercise 4.4, the codebook's perplexity",
    vq.perplexity,
    "course_lib.vq.perplexity",
    _perplexity_cases,
    mistakes=[
        Mistake("you returned the entropy itself; the perplexity is its exponential, exp(H).",
                lambda i, k: _entropy_nats(i, k)),
        Mistake("the bases do not match: an entropy computed with log2 must be raised as 2**H, not exp(H).",
                lambda i, k: torch.exp(_entropy_nats(i, k) / math.log(2))),
        Mistake("unused codes give 0 * log 0 = nan: count them as 0 (torch.special.xlogy(p, p), or keep only p > 0).",
                lambda i, k: _entropy_nats(i, k).exp() * _nan_if_unused(i, k)),
        Mistake("you counted the codes that are used; the perplexity weighs them by their frequencies p_k.",
                lambda i, k: torch.tensor(float(torch.unique(i).numel()))),
        Mistake("use frequencies p_k = n_k / N, not the counts n_k, in -sum p log p.",
                lambda i, k: _entropy_of(torch.bincount(i.reshape(-1), minlength=k).float()).exp()),
    ],
    atol=1e-4,
    accepts="a number: a Python float, a numpy scalar or a 0-dim tensor",
)
"""Example:
    >>> check_perplexity.grade(lambda i, k: torch.tensor(float(torch.unique(i).numel()))).status
    'wrong'
"""


# --------------------------------------------------------------------------- pen and paper: perplexity of a histogram
#: How often each of K = 8 codes was used on a batch (N = 100 code positions).
HISTOGRAM_GIVEN = {"counts": [50, 30, 15, 5, 0, 0, 0, 0]}
_COUNTS = torch.tensor(HISTOGRAM_GIVEN["counts"])


def _histogram_indices() -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(_COUNTS)), _COUNTS)


def _histogram_entropy(log=math.log) -> float:
    total = int(_COUNTS.sum())
    return -sum(n / total * log(n / total) for n in HISTOGRAM_GIVEN["counts"] if n)


check_perplexity_answer = NumericAnswer(
    "Exercise 4.5, the perplexity of a code histogram",
    float(vq.perplexity(_histogram_indices(), len(_COUNTS))),
    "the exact perplexity (course_lib.vq.perplexity)",
    mistakes=[
        Mistake("that is the entropy H in nats; the perplexity is exp(H).", _histogram_entropy()),
        Mistake("that is the entropy in bits; the perplexity is 2**H_bits = exp(H_nats).",
                _histogram_entropy(math.log2)),
        Mistake("the bases do not match: an entropy in bits must be raised as 2**H, not exp(H).",
                math.exp(_histogram_entropy(math.log2))),
        Mistake("an entropy in nats must be raised as exp(H), not 2**H.", 2 ** _histogram_entropy()),
        Mistake("the entropy is -sum p log p, with a minus sign: exp(+H), not exp(-H).",
                math.exp(-_histogram_entropy())),
        Mistake("that is the number of codes used; the perplexity weighs the codes by their frequencies, and is "
                "smaller than that unless the used codes are equally frequent.", float((_COUNTS > 0).sum())),
        Mistake("that is the codebook size K; unused codes add nothing to the entropy.", float(len(_COUNTS))),
    ],
    atol=1e-3, rtol=0.0, given=HISTOGRAM_GIVEN,
    accepts="a number (a float, a numpy scalar or a 0-dim tensor; a Python expression such as math.exp(...) is "
            "fine), within 0.001 of the exact value",
)
