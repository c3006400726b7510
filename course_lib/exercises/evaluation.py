"""Checkers for the chapter "Beyond FID" (notebook 07_beyond_fid).

Exercise 7.1 asks for KID's unbiased estimator of the squared MMD from the three kernel matrices of m real
and m generated samples (book equation (kid), ``course_lib.kid.mmd2_unbiased``). The answer is graded on its
values and on its gradients with respect to the kernel entries: the estimator is linear in them, so a
function that detaches, or returns a float, is wrong. The kernel matrices k_xx and k_yy are symmetric, so
only the symmetric part of their gradients is compared: summing the upper triangle twice is as right as
summing every off-diagonal entry.

Example:
    >>> import torch
    >>> def biased(k_xx, k_yy, k_xy):  # every entry, diagonals included
    ...     return k_xx.mean() + k_yy.mean() - 2 * k_xy.mean()
    >>> print(check_mmd2_unbiased.grade(biased).message)
    [wrong] Exercise 7.1, KID's unbiased estimator: that is the biased estimator: ...
    >>> def upper_triangle(k_xx, k_yy, k_xy):  # symmetric kernels: each pair once, counted twice
    ...     m = k_xx.shape[0]
    ...     pairs = 2 * (k_xx.triu(1).sum() + k_yy.triu(1).sum())
    ...     return pairs / (m * (m - 1)) - 2 * k_xy.mean()
    >>> check_mmd2_unbiased.grade(upper_triangle).status
    'correct'
"""

from __future__ import annotations

import torch

from course_lib import kid as kid_lib
from course_lib.exercises import Exercise, Mistake, Probe, _Answer

# ------------------------------------------------------------------------------- the unbiased MMD^2


def _mmd_cases(g: torch.Generator):
    """Kernel matrices of the cubic kernel for m from 3 to 12 samples in 2 to 16 dimensions.

    Real and generated features differ in mean or spread, so that every term matters; with few samples the
    diagonal (each sample with itself) weighs a lot, so that the biased estimator is far from the unbiased one.
    """
    cases = []
    for m, d, shift, spread in [(5, 4, 0.5, 1.0), (12, 16, 0.0, 1.5), (3, 2, 1.0, 0.7), (8, 8, 0.3, 1.0)]:
        x = torch.randn(m, d, generator=g, dtype=torch.float64)
        y = spread * torch.randn(m, d, generator=g, dtype=torch.float64) + shift
        k = kid_lib.polynomial_kernel
        cases.append((k(x, x), k(y, y), k(x, y)))
    return cases


def _off_diagonal_sum(k):
    return k.sum() - k.diagonal().sum()


def _variant(k_xx, k_yy, k_xy, *, diagonal=False, within="pairs", cross_factor=2.0, cross="all", with_yy=True):
    m = k_xx.shape[0]
    if diagonal:
        within_sum = k_xx.sum() + (k_yy.sum() if with_yy else 0.0)
    else:
        within_sum = _off_diagonal_sum(k_xx) + (_off_diagonal_sum(k_yy) if with_yy else 0.0)
    within_term = within_sum / (m * (m - 1) if within == "pairs" else m * m)
    if cross == "all":
        cross_term = k_xy.sum() / (m * m)
    else:  # torch-fidelity's "u-statistic": the cross matrix's diagonal left out too
        cross_term = _off_diagonal_sum(k_xy) / (m * (m - 1))
    return within_term - cross_factor * cross_term


class _SymmetricKernelExercise(Exercise):
    """Compares only the symmetric part of the gradients with respect to the symmetric inputs k_xx and k_yy.

    On symmetric matrices, sum_{i<j} 2 k_ij and sum_{i != j} k_ij are the same function, but their gradients
    as functions of every entry differ by an antisymmetric part, which no symmetric change of the input sees.
    """

    def _run(self, fn, args, index) -> _Answer:
        answer = super()._run(fn, args, index)
        if answer.grads is None:
            return answer
        grads = list(answer.grads)
        for position in (0, 1):  # k_xx and k_yy
            g = grads[position]
            if g is not None and g.ndim == 2 and g.shape[0] == g.shape[1]:
                grads[position] = (g + g.T) / 2
        return _Answer(answer.value, tuple(grads))


def _zero(k):
    return torch.zeros_like(k)


check_mmd2_unbiased = _SymmetricKernelExercise(
    "Exercise 7.1, KID's unbiased estimator",
    kid_lib.mmd2_unbiased,
    "course_lib.kid.mmd2_unbiased",
    _mmd_cases,
    mistakes=[
        Mistake("that is the biased estimator: the within-set averages include the diagonal terms k(x_i, x_i) and "
                "k(y_j, y_j), each sample paired with itself. Those are not pairs of independent samples, so the "
                "estimate stays above 0 even for two samples of one distribution.",
                lambda a, b, c: _variant(a, b, c, diagonal=True, within="all")),
        Mistake("the within-set sums still include the diagonal terms k(x_i, x_i) and k(y_j, y_j), each sample "
                "paired with itself: only pairs of different samples estimate the expectation over two "
                "independent draws.",
                lambda a, b, c: _variant(a, b, c, diagonal=True, within="pairs")),
        Mistake("the diagonal is left out of the within-set sums, but they are still divided by m^2: average over "
                "the pairs you actually add up.",
                lambda a, b, c: _variant(a, b, c, within="all")),
        Mistake("the cross term counts twice: expanding the squared distance between the two mean embeddings "
                "gives E k(x, x') + E k(y, y') minus twice E k(x, y).",
                lambda a, b, c: _variant(a, b, c, cross_factor=1.0)),
        Mistake("the cross term is subtracted: a real and a generated sample that look alike make MMD^2 smaller.",
                lambda a, b, c: _variant(a, b, c, cross_factor=-2.0)),
        Mistake("k_xy pairs a real with a generated sample, never a sample with itself: KID averages all of its "
                "m^2 entries (leaving its diagonal out is torch-fidelity's 'u-statistic' variant, not the KID "
                "estimator).",
                lambda a, b, c: _variant(a, b, c, cross="off_diagonal")),
        Mistake("the generated set's own term is missing: MMD^2 has a within-set average for each of the two sets.",
                lambda a, b, c: _variant(a, b, c, with_yy=False)),
    ],
    atol=1e-9, rtol=1e-7,
    grad_inputs=(0, 1, 2),
    probes=[
        Probe("the real set's within-set average", "with k_yy and k_xy set to 0", _mmd_cases,
              lambda fn, a, b, c: fn(a, _zero(b), _zero(c))),
        Probe("the generated set's within-set average", "with k_xx and k_xy set to 0", _mmd_cases,
              lambda fn, a, b, c: fn(_zero(a), b, _zero(c))),
        Probe("the cross term", "with k_xx and k_yy set to 0", _mmd_cases,
              lambda fn, a, b, c: fn(_zero(a), _zero(b), c)),
    ],
    accepts="a number as a 0-dim tensor (float32 or float64) computed from the kernel matrices by differentiable "
            "operations; a Python float, a numpy value or a detached tensor carries no gradient and is wrong",
)

__all__ = ["check_mmd2_unbiased"]
