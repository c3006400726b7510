"""Checkers for the FID and Inception Score chapter (notebook 06_fid_and_inception_score).

A number may come back as a Python float, a numpy scalar or a 0-dim tensor, float32 or float64;
a wrong answer gets a verdict, never an exception, and the FID's two terms are graded apart.

Example:
    >>> import numpy as np
    >>> from pytorch_fid.fid_score import calculate_frechet_distance
    >>> def pytorch_fid_way(real, fake):  # numpy float64 in and out
    ...     r, f = real.numpy(), fake.numpy()
    ...     return calculate_frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))
    >>> check_frechet_distance.grade(pytorch_fid_way).status
    'correct'
    >>> def plus_two_tr(real, fake):  # + 2 Tr instead of - 2 Tr, and the mean term not squared
    ...     return (real.mean(0) - fake.mean(0)).norm() + torch.cov(real.T).trace() + torch.cov(fake.T).trace() \\
    ...         + 2 * fid_lib.trace_sqrt_product(torch.cov(real.T), torch.cov(fake.T))
    >>> print(check_frechet_distance.grade(plus_two_tr).message)
    [wrong] ... Term by term: the mean term ||mu_r - mu_g||^2: off (...); the covariance terms ...: off (...). ...
"""

from __future__ import annotations

import torch

from course_lib import fid as fid_lib
from course_lib.exercises import Exercise, Mistake, Probe
from course_lib.resizing import resampling_matrix

# ------------------------------------------------------------------------------- Frechet distance


def _fd_cases(g: torch.Generator):
    """Few samples (N from 8 to 30) in 3 to 6 dimensions, correlated, so that N vs N - 1 shows."""
    cases = []
    for n, d, shift in [(12, 3, 0.5), (30, 5, 0.2), (8, 4, 1.0), (20, 6, 0.0)]:
        mixing = torch.randn(d, d, generator=g, dtype=torch.float64)
        real = torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing
        fake = torch.randn(n + 5, d, generator=g, dtype=torch.float64) @ (mixing + 0.5 * torch.eye(d)) + shift
        cases.append((real, fake))
    return cases


def _stats(x, ddof=1):
    mu = x.mean(0)
    c = x - mu
    return mu, c.T @ c / (x.shape[0] - ddof)


def _fd_reference(real, fake):
    return fid_lib.fid(real, fake)


def _fd_variant(real, fake, ddof=1, trace_terms=True, factor=2.0, cross="sqrt_product"):
    mu1, s1 = _stats(real.double(), ddof)
    mu2, s2 = _stats(fake.double(), ddof)
    if cross == "sqrt_product":
        tr = fid_lib.trace_sqrt_product(s1, s2)
    elif cross == "product_of_roots":
        tr = (fid_lib.sqrtm_psd(s1) @ fid_lib.sqrtm_psd(s2)).trace()
    else:  # element-wise square root of the product's entries
        tr = (s1 @ s2).abs().sqrt().trace()
    value = (mu1 - mu2).pow(2).sum()
    if trace_terms:
        value = value + s1.trace() + s2.trace() - factor * tr
    return value


def _shift(real, fake):
    """The difference of the means, as a shift of every sample of ``real``."""
    return fake.mean(0) - real.mean(0)


def _fd_complex(real, fake):
    value = _fd_reference(real, fake)
    return torch.complex(value, torch.tensor(1e-9, dtype=torch.float64))


check_frechet_distance = Exercise(
    "Exercise 6.1, FID of two feature sets",
    _fd_reference,
    "course_lib.fid.fid",
    _fd_cases,
    mistakes=[
        Mistake("only the means are compared: FID also has the covariance terms "
                "Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^(1/2)).",
                lambda r, f: _fd_variant(r, f, trace_terms=False)),
        Mistake("the covariance must be the sample covariance, divided by N - 1 (numpy.cov, pytorch-fid, "
                "torchmetrics), not by N.",
                lambda r, f: _fd_variant(r, f, ddof=0)),
        Mistake("the cross term is -2 Tr((S_r S_g)^(1/2)): you forgot the factor 2.",
                lambda r, f: _fd_variant(r, f, factor=1.0)),
        Mistake("Tr((S_r S_g)^(1/2)) is not Tr(S_r^(1/2) S_g^(1/2)) unless the covariances commute: take the "
                "square root of the product (e.g. the eigenvalues of S_r^(1/2) S_g S_r^(1/2)).",
                lambda r, f: _fd_variant(r, f, cross="product_of_roots")),
        Mistake("torch.sqrt of a matrix is element-wise: the matrix square root is a matrix R with R @ R = S "
                "(use eigenvalues: Tr((S_r S_g)^(1/2)) = sum sqrt(eigenvalues)).",
                lambda r, f: _fd_variant(r, f, cross="elementwise")),
        Mistake("keep only the real part: the square root of S_r S_g (scipy.linalg.sqrtm, torch.linalg.eigvals) "
                "can carry an imaginary rounding error; FID is real.",
                _fd_complex),
        Mistake("the cross term is subtracted: + Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^(1/2)), not + 2 Tr(...).",
                lambda r, f: _fd_variant(r, f, factor=-2.0)),
        Mistake("the mean term is the squared distance ||mu_r - mu_g||^2, not the distance itself.",
                lambda r, f: _fd_variant(r, f) - (r.double().mean(0) - f.double().mean(0)).pow(2).sum()
                + (r.double().mean(0) - f.double().mean(0)).norm()),
    ],
    rtol=1e-6, atol=1e-8,
    probes=[
        Probe("the mean term ||mu_r - mu_g||^2", "isolated as FD(real, real + shift) - FD(real, real), equal "
              "covariances", _fd_cases, lambda fd, r, f: fd(r, r + _shift(r, f)) - fd(r, r.clone())),
        Probe("the covariance terms Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^(1/2))", "with equal means", _fd_cases,
              lambda fd, r, f: fd(r, f - f.mean(0) + r.mean(0))),
    ],
    accepts="a real number: a Python float, a numpy scalar (pytorch-fid's own code) or a 0-dim tensor, float32 "
            "or float64; a complex value is wrong, even with a tiny imaginary part",
)
"""Example:
    >>> check_frechet_distance.grade(lambda r, f: (r.mean(0) - f.mean(0)).pow(2).sum()).message[:7]
    '[wrong]'
"""


# ------------------------------------------------------------------------------- Inception Score


def _is_cases(g: torch.Generator):
    """Probabilities of varying sharpness and class balance; N divisible by the number of splits."""
    cases = []
    for n, k, splits, sharp in [(60, 10, 3, 3.0), (100, 5, 5, 1.0), (40, 8, 4, 6.0), (90, 3, 10, 2.0)]:
        bias = torch.linspace(0, 1.5, k, dtype=torch.float64)  # unbalanced classes
        logits = sharp * torch.randn(n, k, generator=g, dtype=torch.float64) + bias
        cases.append((torch.softmax(logits, dim=1), splits))
    return cases


def _is_reference(probs, splits):
    return fid_lib.inception_score(probs, splits)


def _is_variant(probs, splits, direction="forward", log=torch.log, combine="exp_then_mean", ddof=0,
                marginal="split"):
    p = probs.double()
    n = p.shape[0]
    kls, scores = [], []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = (p if marginal == "all" else part).mean(0, keepdim=True)
        if direction == "forward":
            kl = (part * (log(part) - log(py))).sum(1)
        else:
            kl = (py * (log(py) - log(part))).sum(1)
        kls.append(kl)
        scores.append(kl.exp().mean() if combine == "mean_of_exp" else kl.mean().exp())
    if combine == "mean_before_exp":
        scores = [torch.stack([k.mean() for k in kls]).mean().exp()]
        return float(scores[0]), 0.0
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(correction=ddof))


def _is_log_variant(probs, splits):
    p = probs.double()
    kls = torch.stack([(q * (q.log() - q.mean(0, keepdim=True).log())).sum(1).mean() for q in p.chunk(splits)])
    return float(kls.mean()), float(kls.std(correction=0))


check_inception_score = Exercise(
    "Exercise 6.3, the Inception Score over splits",
    _is_reference,
    "course_lib.fid.inception_score",
    _is_cases,
    mistakes=[
        Mistake("the KL divergence is KL(p(y|x) || p(y)) = sum_y p(y|x) (log p(y|x) - log p(y)), not the reverse.",
                lambda p, s: _is_variant(p, s, direction="reverse")),
        Mistake("use the natural log: with log2 the KL is in bits, and exp of bits is not the Inception Score.",
                lambda p, s: _is_variant(p, s, log=torch.log2)),
        Mistake("take the exponential per split, then average the split scores (and their std): you averaged "
                "the KL over all splits before the exponential.",
                lambda p, s: _is_variant(p, s, combine="mean_before_exp")),
        Mistake("the score is exp of the mean KL over the split, not the mean of exp(KL) per image.",
                lambda p, s: _is_variant(p, s, combine="mean_of_exp")),
        Mistake("p(y) is the mean of p(y|x) over the split's images, not over the whole set.",
                lambda p, s: _is_variant(p, s, marginal="all")),
        Mistake("the std is numpy's (ddof 0), as the original code and torch-fidelity, not ddof 1.",
                lambda p, s: _is_variant(p, s, ddof=1)),
        Mistake("the split scores are exp(mean KL) of each split; you returned the mean KL without the exponential.",
                lambda p, s: _is_log_variant(p, s)),
        Mistake("split i holds rows i N / s to (i + 1) N / s, contiguous blocks: you took every s-th row.",
                lambda p, s: _is_variant(p[torch.arange(p.shape[0]).reshape(-1, s).T.reshape(-1)], s)),
    ],
    rtol=1e-6, atol=1e-9,
    output_names=("the mean (the first value)", "the std (the second value)"),
    accepts="a tuple (mean, std) of two numbers, each a Python float, a numpy scalar (the original code's) or a "
            "0-dim tensor",
)
"""Example:
    >>> check_inception_score.grade(lambda p, s: _is_variant(p, s, log=torch.log2)).status
    'wrong'
"""

# ------------------------------------------------------------------------------- resizing


def _resize_cases(g: torch.Generator):
    """Upsampling as for 28x28 clothes, shrinking as for large images, odd ratios, and a few random sizes."""
    sizes = [(28, 299), (512, 64), (7, 3), (4, 2), (5, 5), (3, 11)]
    for _ in range(3):
        n_in, n_out = (int(v) for v in torch.randint(2, 40, (2,), generator=g))
        sizes.append((n_in, n_out))
    return sizes


def _resize_reference(n_in, n_out):
    return resampling_matrix(n_in, n_out, "pytorch-fid")


def _resize_variant(n_in, n_out, centre="half_pixel", normalise=True, stretch=False):
    i = torch.arange(n_out, dtype=torch.float64)[:, None]
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    if centre == "half_pixel":
        t = j + 0.5 - (i + 0.5) * n_in / n_out
    else:  # align_corners=True: the corner pixels' centres coincide
        t = j - i * (n_in - 1) / max(n_out - 1, 1)
    s = max(n_in / n_out, 1.0) if stretch else 1.0
    w = (1 - (t / s).abs()).clamp_min(0)
    return w / w.sum(1, keepdim=True) if normalise else w


check_resampling_matrix = Exercise(
    "Exercise 6.4, one axis of pytorch-fid's resize",
    _resize_reference,
    "course_lib.resizing.resampling_matrix(n_in, n_out, 'pytorch-fid')",
    _resize_cases,
    mistakes=[
        Mistake("output pixel i is centred at (i + 1/2) n_in / n_out and input pixel j at j + 1/2: without the "
                "half pixels the picture moves towards the top-left (that is TensorFlow 1's resize, torch-fidelity).",
                lambda a, b: resampling_matrix(a, b, "torch-fidelity")),
        Mistake("divide each row by its sum: near the border part of the triangle falls outside the image, and "
                "the weights that remain must still add up to 1.",
                lambda a, b: _resize_variant(a, b, normalise=False)),
        Mistake("pytorch-fid does not widen the kernel when it shrinks an image (no antialiasing): the "
                "triangle always has half-width 1 input pixel.",
                lambda a, b: _resize_variant(a, b, stretch=True)),
        Mistake("that is align_corners=True (the first and last pixel centres coincide); pytorch-fid uses "
                "align_corners=False: centres at (i + 1/2) n_in / n_out.",
                lambda a, b: _resize_variant(a, b, centre="corners")),
        Mistake("the matrix maps the n_in input pixels to the n_out output pixels: its shape is (n_out, n_in), "
                "one row per output pixel; you returned its transpose.",
                lambda a, b: _resize_reference(a, b).T),
    ],
    rtol=1e-6, atol=1e-9,
    accepts="a tensor (or numpy array) of shape (n_out, n_in), float32 or float64",
)
"""Example:
    >>> check_resampling_matrix.grade(lambda a, b: resampling_matrix(a, b, "clean-fid")).status
    'wrong'
"""

__all__ = ["check_frechet_distance", "check_inception_score", "check_resampling_matrix", "check_fid_terms"]


# ------------------------------------------------------------------------------- FID's two terms


def fid_terms(mu1, sigma1, mu2, sigma2):
    """FID's two terms, book equation (fid): (||mu1 - mu2||^2, Tr(S1) + Tr(S2) - 2 Tr (S1 S2)^(1/2)).

    Their sum is ``course_lib.fid.frechet_distance``; the trace of the square root comes from
    ``course_lib.fid.trace_sqrt_product``.
    """
    mean_term = (mu1 - mu2).pow(2).sum()
    covariance_term = sigma1.trace() + sigma2.trace() - 2 * fid_lib.trace_sqrt_product(sigma1, sigma2)
    return mean_term, covariance_term


def _terms_cases(g: torch.Generator):
    cases = []
    for d, shift in [(3, 0.7), (5, 0.3), (2, 1.5), (6, 0.0)]:
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        b = torch.randn(d, d, generator=g, dtype=torch.float64)  # a different shape: S1 and S2 do not commute
        s1, s2 = a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(d, dtype=torch.float64)
        mu1 = torch.randn(d, generator=g, dtype=torch.float64)
        mu2 = mu1 + shift + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
        cases.append((mu1, s1, mu2, s2))
    return cases


def _terms_variant(mu1, s1, mu2, s2, *, squared=True, sign=-2.0, cross="sqrt_product"):
    mean_term = (mu1 - mu2).pow(2).sum() if squared else (mu1 - mu2).norm()
    if cross == "sqrt_product":
        tr = fid_lib.trace_sqrt_product(s1, s2)
    elif cross == "no_sqrt":
        tr = (s1 @ s2).trace()
    elif cross == "product_of_roots":
        tr = (fid_lib.sqrtm_psd(s1) @ fid_lib.sqrtm_psd(s2)).trace()
    else:  # the square root of the trace of the product
        tr = (s1 @ s2).trace().sqrt()
    return mean_term, s1.trace() + s2.trace() + sign * tr


check_fid_terms = Exercise(
    "Exercise 6.2, FID's two terms",
    fid_terms,
    "course_lib.exercises.fid.fid_terms",
    _terms_cases,
    mistakes=[
        Mistake("the mean term is the squared distance ||mu1 - mu2||^2, not the distance itself.",
                lambda m1, s1, m2, s2: _terms_variant(m1, s1, m2, s2, squared=False)),
        Mistake("the cross term is subtracted: Tr(S1) + Tr(S2) - 2 Tr (S1 S2)^(1/2).",
                lambda m1, s1, m2, s2: _terms_variant(m1, s1, m2, s2, sign=2.0)),
        Mistake("the square root is missing: the covariance term has Tr (S1 S2)^(1/2), the trace of the matrix square "
                "root of the product.", lambda m1, s1, m2, s2: _terms_variant(m1, s1, m2, s2, cross="no_sqrt")),
        Mistake("Tr(S1^(1/2) S2^(1/2)) is not Tr (S1 S2)^(1/2) unless the covariances commute: take the square root "
                "of the product, as in FID's trace term.",
                lambda m1, s1, m2, s2: _terms_variant(m1, s1, m2, s2, cross="product_of_roots")),
        Mistake("the square root belongs to the matrix S1 S2 (the sum of the square roots of its eigenvalues), not "
                "to its trace.", lambda m1, s1, m2, s2: _terms_variant(m1, s1, m2, s2, cross="sqrt_of_trace")),
        Mistake("the order is (mean_term, covariance_term): yours are swapped.",
                lambda m1, s1, m2, s2: fid_terms(m1, s1, m2, s2)[::-1]),
    ],
    atol=1e-8, rtol=1e-6,
    output_names=("the mean term", "the covariance term"),
    accepts="a tuple (mean_term, covariance_term) of two numbers (floats, numpy scalars or 0-dim tensors, float32 "
            "or float64); the covariance term must be real",
)
