"""Checkers for the generative-viewpoint chapter's exercises (notebook 02_generative_viewpoint)."""

from __future__ import annotations

import math

import torch

from course_lib.exercises import Exercise, Mistake, Probe
from course_lib.flows import coupling_log_density
from course_lib.toy_data import push_forward
from course_lib.validation import LOG_2PI


class _RandomConditioner:
    """A fixed random MLP conditioner: (N, D) masked input -> (log_scale, shift), each (N, D).

    Its log-scale is nonzero on every coordinate (masked ones included), so that summing it over
    the wrong coordinates gives a visibly wrong log-determinant.
    """

    def __init__(self, dim: int, g: torch.Generator, hidden: int = 16):
        self.w1 = torch.randn(dim, hidden, generator=g) / math.sqrt(dim)
        self.b1 = 0.3 * torch.randn(hidden, generator=g)
        self.w2 = 0.5 * torch.randn(hidden, 2 * dim, generator=g) / math.sqrt(hidden)
        self.b2 = 0.3 * torch.randn(2 * dim, generator=g)

    def __call__(self, x_masked: torch.Tensor):
        s, t = (torch.tanh(x_masked @ self.w1 + self.b1) @ self.w2 + self.b2).chunk(2, dim=1)
        return s, t

    def __repr__(self) -> str:
        return f"conditioner(D={self.w1.shape[0]})"


def _coupling_cases(g: torch.Generator):
    cases = []
    for n, mask in ((6, [1.0, 0.0]), (5, [0.0, 1.0]), (4, [1.0, 0.0, 1.0, 0.0]), (3, [0.0, 0.0, 1.0])):
        dim = len(mask)
        cases.append((1.5 * torch.randn(n, dim, generator=g), torch.tensor(mask), _RandomConditioner(dim, g)))
    return cases


def _forward_parts(x, mask, cond):
    s, t = cond(mask * x)
    z = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    return z, s, t


def _log_normal(z):
    return -0.5 * z.pow(2).sum(1) - 0.5 * z.shape[1] * LOG_2PI


def _wrong_logdet_sign_in_sum(x, mask, cond):
    z, s, _ = _forward_parts(x, mask, cond)
    log_det = ((1 - mask) * s).sum(1)
    return _log_normal(z) - log_det, log_det


def _wrong_logdet_negated(x, mask, cond):
    z, s, _ = _forward_parts(x, mask, cond)
    log_det = -((1 - mask) * s).sum(1)
    return _log_normal(z) + log_det, log_det


def _wrong_no_base_density(x, mask, cond):
    _, s, _ = _forward_parts(x, mask, cond)
    log_det = ((1 - mask) * s).sum(1)
    return log_det, log_det


def _wrong_no_normaliser(x, mask, cond):
    z, s, _ = _forward_parts(x, mask, cond)
    log_det = ((1 - mask) * s).sum(1)
    return -0.5 * z.pow(2).sum(1) + log_det, log_det


def _wrong_base_at_x(x, mask, cond):
    _, s, _ = _forward_parts(x, mask, cond)
    log_det = ((1 - mask) * s).sum(1)
    return _log_normal(x) + log_det, log_det


def _wrong_logdet_all_coordinates(x, mask, cond):
    z, s, _ = _forward_parts(x, mask, cond)
    log_det = s.sum(1)
    return _log_normal(z) + log_det, log_det


def _wrong_logdet_of_scale(x, mask, cond):
    z, s, _ = _forward_parts(x, mask, cond)
    log_det = ((1 - mask) * torch.exp(s)).sum(1)
    return _log_normal(z) + log_det, log_det


def _wrong_conditioner_sees_x(x, mask, cond):
    s, t = cond(x)
    z = mask * x + (1 - mask) * (x * torch.exp(s) + t)
    log_det = ((1 - mask) * s).sum(1)
    return _log_normal(z) + log_det, log_det


def _wrong_mask_swapped(x, mask, cond):
    return coupling_log_density(x, 1 - mask, cond)


check_coupling_log_density = Exercise(
    "Exercise 2.2, the log-density of one affine coupling layer",
    coupling_log_density,
    "course_lib.flows.coupling_log_density",
    _coupling_cases,
    mistakes=[
        Mistake("the log-determinant has the wrong sign: for the data-to-noise map z = f(x), "
                "log p(x) = log N(f(x)) + log|det df/dx|, and log|det df/dx| = +sum of s over the "
                "transformed coordinates (the layer multiplies them by exp(s)).", _wrong_logdet_sign_in_sum),
        Mistake("the log-determinant has the wrong sign: the layer multiplies the transformed "
                "coordinates by exp(s), so log|det df/dx| = +sum_j (1 - m_j) s_j.", _wrong_logdet_negated),
        Mistake("you forgot the base density's term: log p(x) = log N(z; 0, I) + log|det df/dx|, "
                "not the log-determinant alone.", _wrong_no_base_density),
        Mistake("you forgot the normaliser of the standard normal: log N(z; 0, I) = -||z||^2/2 "
                "- (D/2) log(2 pi), with D the number of coordinates.", _wrong_no_normaliser),
        Mistake("the base density is evaluated at z = f(x), not at x: transform x first.", _wrong_base_at_x),
        Mistake("the log-determinant sums s over every coordinate; only the transformed ones "
                "(mask 0) contribute: sum_j (1 - m_j) s_j.", _wrong_logdet_all_coordinates),
        Mistake("the log-determinant is the sum of the *log*-scales s, not of the scales exp(s).",
                _wrong_logdet_of_scale),
        Mistake("the conditioner must see only the unchanged coordinates: call it on mask * x, "
                "not on x (otherwise the Jacobian is not triangular).", _wrong_conditioner_sees_x),
        Mistake("the mask is the wrong way round: coordinates with mask 1 pass through unchanged, "
                "those with mask 0 are scaled and shifted.", _wrong_mask_swapped),
    ],
    grad_inputs=(0,),
    arg_names=("x", "mask", "conditioner"),
    output_names=("log_px (the first value)", "log_det (the second value)"),
    probes=[
        Probe("the base density term log N(z; 0, I)", "isolated as your log_px - your log_det", _coupling_cases,
              lambda f, x, mask, cond: (lambda out: out[0] - out[1])(f(x, mask, cond))),
        Probe("the log-determinant", "your log_det", _coupling_cases,
              lambda f, x, mask, cond: f(x, mask, cond)[1]),
    ],
    accepts="a tuple (log_px, log_det) of two tensors of shape (N,) (any floating dtype), differentiable with "
            "respect to x",
)
"""Example:
    >>> check_coupling_log_density.grade(_wrong_no_base_density).status
    'wrong'
"""


class _ShiftScale:
    """The map z -> loc + scale * z, a Gaussian's push-forward."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.loc, self.scale = loc, scale

    def __call__(self, z):
        return self.loc + self.scale * z

    def __repr__(self) -> str:
        return "shift-and-scale map"


class _Banana:
    """The map (z1, z2) -> (z1, z2 + c (z1^2 - 1)), a bent Gaussian."""

    def __init__(self, c: float):
        self.c = c

    def __call__(self, z):
        return torch.stack([z[:, 0], z[:, 1] + self.c * (z[:, 0] ** 2 - 1)], dim=1)

    def __repr__(self) -> str:
        return "banana map"


class _Tanh3D:
    """A map from 3-D noise to 2-D points, (z1, z2, z3) -> (tanh(z1) + z3, z2 z3)."""

    def __call__(self, z):
        return torch.stack([torch.tanh(z[:, 0]) + z[:, 2], z[:, 1] * z[:, 2]], dim=1)

    def __repr__(self) -> str:
        return "tanh map"


def _push_forward_cases(g: torch.Generator):
    seeds = torch.randint(0, 10_000, (3,), generator=g).tolist()
    loc, scale = torch.randn(2, generator=g), 0.5 + torch.rand(2, generator=g)
    return [
        (_ShiftScale(loc, scale), 7, 2, int(seeds[0])),
        (_Banana(0.8), 11, 2, int(seeds[1])),
        (_Tanh3D(), 5, 3, int(seeds[2])),
    ]


def _noise(n, dim, seed):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


check_push_forward = Exercise(
    "Exercise 2.1, sampling by pushing normal noise through a map",
    push_forward,
    "course_lib.toy_data.push_forward",
    _push_forward_cases,
    mistakes=[
        Mistake("you returned the noise z itself; the samples are x = g(z).",
                lambda g, n, dim, seed: _noise(n, dim, seed)),
        Mistake("the noise must be a standard *normal* (torch.randn), not uniform on [0, 1] (torch.rand).",
                lambda g, n, dim, seed: g(torch.rand(n, dim, generator=torch.Generator().manual_seed(seed)))),
        Mistake("draw the noise with shape (n, dim), one row per sample, not (dim, n) transposed: "
                "the same seed then gives different numbers.",
                lambda g, n, dim, seed: g(_noise(dim, n, seed).T)),
        Mistake("push every sample through g: g takes the whole (n, dim) batch; you returned g of one row.",
                lambda g, n, dim, seed: g(_noise(n, dim, seed)[:1])),
    ],
    accepts="a tensor of shape (n, output dim) (any floating dtype) or a numpy array",
)
"""Example:
    >>> check_push_forward.grade(lambda g, n, dim, seed: torch.randn(n, dim)).status
    'wrong'
"""
