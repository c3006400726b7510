"""Checkers for the Autoencoder chapter's exercises (notebook 01_autoencoder)."""

from __future__ import annotations

import torch

from course_lib import autoencoder
from course_lib.exercises import Exercise, Mistake


def _image_pairs(g: torch.Generator):
    shapes = [(1, 1, 28, 28), (5, 1, 28, 28), (3, 3, 8, 6)]
    return [(torch.rand(s, generator=g), torch.rand(s, generator=g)) for s in shapes]


check_reconstruction_loss = Exercise(
    "Exercise 1.2, the reconstruction loss",
    autoencoder.reconstruction_loss,
    "course_lib.autoencoder.reconstruction_loss",
    _image_pairs,
    mistakes=[
        Mistake("you averaged over pixels too (F.mse_loss's default); sum over the pixels of each image, "
                "then average over the batch.", lambda a, b: (a - b).pow(2).mean()),
        Mistake("you summed over the batch; average the per-image sums over the N images.",
                lambda a, b: (a - b).pow(2).sum()),
        Mistake("the error is not squared: use (x_hat - x)**2, not |x_hat - x|.",
                lambda a, b: (a - b).abs().flatten(1).sum(1).mean()),
        Mistake("you took the Euclidean norm ||x - x_hat||, not its square.",
                lambda a, b: (a - b).flatten(1).norm(dim=1).mean()),
        Mistake("the values are right but x_hat receives no gradient (.detach(), .item(), float() or numpy on the "
                "way): the network could not learn from this loss. Keep it a torch tensor in the graph.",
                lambda a, b: (a - b).pow(2).flatten(1).sum(1).mean().detach()),
    ],
    grad_inputs=(0,),
    accepts="a 0-dim tensor (any floating dtype), differentiable with respect to x_hat",
)
"""Example:
    >>> import torch
    >>> check_reconstruction_loss.grade(lambda x_hat, x: ((x_hat - x) ** 2).mean()).status
    'wrong'
"""


def _conv_cases(g: torch.Generator):
    cases = [(28, 4, 2, 1), (14, 4, 2, 1), (28, 3, 1, 0), (28, 3, 2, 1), (7, 3, 1, 1), (32, 5, 3, 2)]
    extra = torch.randint(1, 4, (4, 3), generator=g)
    cases += [(int(20 + 3 * k), int(k + 1), int(s), int(p)) for k, s, p in extra.tolist()]
    return cases


check_conv_output_size = Exercise(
    "Exercise 1.1, the size of a convolution's output",
    autoencoder.conv_output_size,
    "course_lib.autoencoder.conv_output_size",
    _conv_cases,
    mistakes=[
        Mistake("you forgot the '+ 1': a kernel that fits once gives one output.",
                lambda n, k, s, p: (n + 2 * p - k) // s),
        Mistake("the padding is added on both sides: use n + 2p, not n + p.",
                lambda n, k, s, p: (n + p - k) // s + 1),
        Mistake("the result must be an int: use floor division //, not /.",
                lambda n, k, s, p: (n + 2 * p - k) / s + 1),
        Mistake("add 1 after the floor division: (n + 2p - k) // s + 1, not (n + 2p - k + 1) // s.",
                lambda n, k, s, p: (n + 2 * p - k + 1) // s),
        Mistake("the stride divides n + 2p - k, the distance the kernel can travel, not the whole expression: "
                "(n + 2p - k) // s + 1.",
                lambda n, k, s, p: n // s + 2 * p - k + 1),
    ],
    accepts="an integer: a Python int, a numpy integer or an integer tensor; a float such as 7.0 is wrong "
            "(a layer's size is a whole number, and torch.nn needs ints)",
)


def _code_pairs(g: torch.Generator):
    return [(torch.randn(d, generator=g), torch.randn(d, generator=g), steps) for d, steps in ((2, 5), (16, 8), (3, 2))]


check_interpolate_codes = Exercise(
    "Exercise 1.3, interpolating between two codes",
    autoencoder.interpolate_codes,
    "course_lib.autoencoder.interpolate_codes",
    _code_pairs,
    mistakes=[
        Mistake("the path runs backwards: t = 0 must give z0 and t = 1 must give z1.",
                lambda z0, z1, n: autoencoder.interpolate_codes(z1, z0, n)),
        Mistake("the last point must be z1 itself: use t = linspace(0, 1, steps), which includes 1.",
                lambda z0, z1, n: z0 + torch.arange(n).unsqueeze(1) / n * (z1 - z0)),
        Mistake("the first point must be z0 itself: t = linspace(0, 1, steps) starts at 0.",
                lambda z0, z1, n: z0 + torch.arange(1, n + 1).unsqueeze(1) / n * (z1 - z0)),
        Mistake("return one row per step, shape (steps, d): you returned the points as columns, (d, steps).",
                lambda z0, z1, n: autoencoder.interpolate_codes(z0, z1, n).T),
        Mistake("the direction from z0 to z1 is z1 - z0: z0 + t (z1 - z0), not z0 + t (z0 - z1).",
                lambda z0, z1, n: z0 + torch.linspace(0, 1, n).unsqueeze(1) * (z0 - z1)),
    ],
    accepts="a tensor of shape (steps, d) (any floating dtype) or a numpy array",
)
