"""Frechet Inception Distance and Inception Score from scratch.

Book equations (fid) and (inception-score):

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))                      (fid)
    IS  = exp( E_x KL(p(y|x) || p(y)) ),  p(y) = E_x p(y|x)                          (inception-score)

``frechet_distance`` and ``fid`` equal pytorch-fid's ``calculate_frechet_distance`` and torchmetrics'
FID on the same features; ``inception_score`` equals the original code of Salimans et al. and
torch-fidelity (without its shuffle) on the same probabilities. Features come from an extractor
with the interface ``features(images) -> (N, F)``, ``probs(images) -> (N, K)``:

- ``course_lib.classifier.FashionClassifier`` (shipped, offline): a *domain* FID and IS;
- ``course_lib.inception.InceptionV3``: the network of pytorch-fid (TensorFlow's FID Inception), the
  FID and IS of papers.

Everything here computes in float64 on the CPU (``course_lib.runtime.float64_cpu``: Apple's MPS has
no float64): inputs on any device are accepted, and every result is a float64 CPU tensor.
"""

from __future__ import annotations

import warnings

import torch

from course_lib.runtime import num_threads
from course_lib.validation import as_float64, check_feature_pair, check_features, check_positive_int

# --------------------------------------------------------------------------------------------------
# Frechet distance, book equation (fid)
# --------------------------------------------------------------------------------------------------


SMALL_DIM = 1024  # below this width, the eigendecompositions run on one thread


def _threads_for(d: int):
    """One thread below ``SMALL_DIM`` (threaded LAPACK is slower on small matrices, much so on a busy
    CPU), the current count otherwise; the count is restored on exit, even on error."""
    return num_threads(1 if d < SMALL_DIM else None)


def sqrtm_psd(sigma: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix, by eigendecomposition.

    sigma = V diag(w) V^T, sigma^(1/2) = V diag(sqrt(max(w, 0))) V^T; the tiny negative eigenvalues
    that rounding gives a singular covariance are clamped to 0.

    Args:
        sigma: (F, F), symmetric (it is symmetrised first), float64.

    Returns:
        (F, F) float64 symmetric R with R @ R = sigma (up to rounding).

    Example:
        >>> sqrtm_psd(torch.diag(torch.tensor([4.0, 9.0, 0.0], dtype=torch.float64))).diagonal().tolist()
        [2.0, 3.0, 0.0]
    """
    sigma = (sigma + sigma.T) / 2
    w, v = torch.linalg.eigh(sigma)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """Tr (S1 S2)^(1/2) for symmetric PSD S1, S2, in float64, without a non-symmetric ``sqrtm``.

    For any factor S1 = A A^T, S1 S2 = A A^T S2 is similar to the symmetric PSD matrix M = A^T S2 A
    (conjugate by A), so both have the same non-negative eigenvalues lambda_i and
    Tr (S1 S2)^(1/2) = sum_i sqrt(lambda_i), book equation (fid-trace). A is the Cholesky factor when
    S1 is positive definite (cheap), else the symmetric square root ``sqrtm_psd(S1)`` (singular
    covariances: fewer samples than dimensions). One symmetric eigenvalue problem (``eigvalsh``)
    replaces scipy's Schur-based ``sqrtm`` of a non-symmetric matrix; no imaginary part can appear,
    tiny negative eigenvalues from rounding are clamped to 0, and no offset is added.

    Args:
        sigma1, sigma2: (F, F) symmetric PSD float64 matrices.

    Returns:
        0-dim float64, >= 0.

    Example:
        >>> a = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
        >>> float(trace_sqrt_product(a, a))  # sqrt of diag(1, 16): 1 + 4
        5.0
    """
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    factor, info = torch.linalg.cholesky_ex(sigma1)
    if int(info) != 0:  # singular (or nearly): the symmetric square root always exists
        factor = sqrtm_psd(sigma1)
    m = factor.T @ sigma2 @ factor
    lam = torch.linalg.eigvalsh((m + m.T) / 2)
    return lam.clamp_min(0).sqrt().sum()


def frechet_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), book equation (fid), in float64.

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr (sigma1 sigma2)^(1/2), the last trace from
    ``trace_sqrt_product`` (eigenvalues of a symmetric product: robust for singular covariances, and
    several times faster than ``scipy.linalg.sqrtm`` at F = 2048). Equals pytorch-fid's
    ``calculate_frechet_distance`` and torchmetrics' ``_compute_fid``. The result is clamped at 0
    (rounding can make the distance of a Gaussian to itself -1e-12).

    Args:
        mu1, mu2: means, shape (F,); torch tensors (on any device) or numpy arrays.
        sigma1, sigma2: covariances, shape (F, F), symmetric positive semi-definite.

    Returns:
        0-dim float64 CPU tensor >= 0 (the *squared* Frechet distance, as FID is reported).

    Raises:
        ValueError: for mismatched shapes, non-square or non-symmetric covariances, NaN/inf, or a
            covariance with clearly negative eigenvalues (not a covariance).

    Example:
        >>> mu, s1, s2 = torch.zeros(2), torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([4.0, 9.0]))
        >>> frechet_distance(mu, s1, mu + 1, s2)  # ||1||^2 = 2, plus (1-2)^2 + (2-3)^2 = 2
        tensor(4., dtype=torch.float64)
    """
    mu1, mu2 = as_float64(mu1, "mu1"), as_float64(mu2, "mu2")
    sigma1, sigma2 = as_float64(sigma1, "sigma1"), as_float64(sigma2, "sigma2")
    if mu1.ndim != 1 or mu2.ndim != 1:
        raise ValueError(f"mu1 and mu2 must be vectors (D,), got {tuple(mu1.shape)} and {tuple(mu2.shape)}")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same width, got {mu1.shape[0]} and {mu2.shape[0]}")
    d = mu1.shape[0]
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) to match the means, got {tuple(s.shape)}")
        scale = float(s.abs().max()) if s.numel() else 0.0
        if not torch.allclose(s, s.T, rtol=1e-6, atol=1e-9 * max(scale, 1e-300)):
            raise ValueError(f"{name} must be symmetric (a covariance matrix)")
        # A covariance is PSD: a Cholesky factorisation (cheap) of sigma + tiny * I must succeed.
        jitter = 1e-9 * max(scale, 1e-300) * max(d, 1)
        with _threads_for(d):
            info = torch.linalg.cholesky_ex((s + s.T) / 2 + jitter * torch.eye(d, dtype=s.dtype, device=s.device))[1]
        if info != 0:
            raise ValueError(f"{name} has a clearly negative eigenvalue: not a covariance matrix")
    diff = mu1 - mu2
    with _threads_for(d):
        tr = trace_sqrt_product(sigma1, sigma2)
    return (diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr).clamp_min(0)


def gaussian_statistics(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and *sample* covariance (divided by N - 1, as ``numpy.cov``) of features, in float64.

    Args:
        features: (N, F) with N >= 2, finite; a tensor on any device or a numpy array.

    Returns:
        ``(mu, sigma)`` of shapes (F,) and (F, F), float64 CPU tensors.

    Raises:
        ValueError: for a non-2-D input, fewer than two rows, or NaN/inf.

    Example:
        >>> mu, sigma = gaussian_statistics(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
        >>> mu.tolist(), sigma.tolist()
        ([1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """
    x = check_features(features, "features")
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def fid(real_features, fake_features) -> torch.Tensor:
    """FID between two feature sets, book equation (fid), from their means and sample covariances.

    Args:
        real_features: (N_r, F) features of real images (N_r >= 2), a tensor on any device or a numpy array.
        fake_features: (N_g, F) features of generated images, same width F.

    Returns:
        0-dim float64 CPU tensor >= 0. It is biased upwards at small N (see the chapter): compare
        numbers only at equal sample sizes and with the same extractor.

    Raises:
        ValueError: for different widths, non-2-D inputs, fewer than two samples, or NaN/inf.

    Warns:
        UserWarning: when a set has fewer samples than dimensions (its covariance is singular; the
            value is still computed exactly, but it is dominated by the small-N bias).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(500, 3, generator=g), torch.randn(500, 3, generator=g) + 2
        >>> round(float(fid(a, b)), 1)  # ~ ||(2, 2, 2)||^2 = 12
        11.2
    """
    real, fake = _feature_pair(real_features, fake_features)
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


def fid_terms(real_features, fake_features) -> tuple[torch.Tensor, torch.Tensor]:
    """FID's two terms, book equation (fid): the mean term and the covariance term, which sum to FID.

    mean term = ||mu_r - mu_g||^2 (where the features sit), covariance term =
    Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) (how they spread); the Beyond FID chapter measures what each
    one responds to.

    Args:
        real_features: (N_r, F) features of real images (N_r >= 2), a tensor on any device or a numpy array.
        fake_features: (N_g, F) features of generated images, same width F.

    Returns:
        ``(mean_term, covariance_term)``: 0-dim float64 CPU tensors >= 0.

    Raises:
        ValueError: as :func:`fid`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(500, 3, generator=g), 2 * torch.randn(500, 3, generator=g) + 1
        >>> mean_term, cov_term = fid_terms(a, b)
        >>> round(float(mean_term), 1), round(float(cov_term), 1)  # 3 * 1^2 and 3 * (2 - 1)^2 as N grows
        (2.5, 2.6)
        >>> bool(torch.isclose(mean_term + cov_term, fid(a, b)))
        True
    """
    real, fake = _feature_pair(real_features, fake_features)
    (mu_r, sigma_r), (mu_g, sigma_g) = gaussian_statistics(real), gaussian_statistics(fake)
    # with equal means, the Frechet distance is the covariance term alone
    return (mu_r - mu_g).pow(2).sum(), frechet_distance(mu_r, sigma_r, mu_r, sigma_g)


def _feature_pair(real_features, fake_features) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets checked (as float64 CPU tensors of one width), with the small-N warning."""
    real, fake = check_feature_pair(real_features, fake_features)
    for name, x in (("real_features", real), ("fake_features", fake)):
        if x.shape[0] < x.shape[1]:
            warnings.warn(f"{name} has {x.shape[0]} samples for {x.shape[1]} dimensions: its covariance is "
                          "singular and FID is strongly biased; use more samples than dimensions",
                          UserWarning, stacklevel=3)
    return real, fake


# --------------------------------------------------------------------------------------------------
# Inception Score, book equation (inception-score)
# --------------------------------------------------------------------------------------------------


def probs_from_logits(logits) -> torch.Tensor:
    """Class probabilities p(y|x) = softmax(logits) in float64.

    Args:
        logits: (N, K) finite, a tensor on any device or a numpy array.

    Returns:
        (N, K) float64 CPU tensor, rows summing to 1.

    Raises:
        ValueError: for a non-2-D input or NaN/inf.

    Example:
        >>> probs_from_logits(torch.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    return torch.softmax(check_features(logits, "logits", min_samples=1), dim=1)


def _check_probs(probs, splits) -> torch.Tensor:
    p = check_features(probs, "probs", min_samples=2)
    if (p < 0).any():
        raise ValueError("probs has negative entries; pass probabilities (probs_from_logits turns logits into them)")
    sums = p.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4, rtol=0):
        raise ValueError(f"probs rows must sum to 1 (got sums from {float(sums.min()):.4g} to "
                         f"{float(sums.max()):.4g}); "
                         "pass softmax probabilities, e.g. probs_from_logits(logits)")
    check_positive_int(splits, "splits")
    if splits > p.shape[0]:
        raise ValueError(f"splits must be an int from 1 to N = {p.shape[0]}, got {splits!r}")
    return p


def inception_score_splits(probs, splits: int = 10) -> torch.Tensor:
    """The Inception Score of each split: exp(mean_x KL(p(y|x) || p_split(y))), shape (splits,).

    Split i holds rows ``i * N // splits`` to ``(i + 1) * N // splits`` in the given order (the
    original code of Salimans et al. and torch-fidelity; torch-fidelity shuffles first, torchmetrics
    shuffles and uses ``torch.chunk``). 0 log 0 is taken as 0.

    Args:
        probs, splits: as ``inception_score``.

    Returns:
        (splits,) float64 CPU tensor, each score in [1, K].

    Raises:
        ValueError: as ``inception_score``.

    Example:
        >>> sure = torch.eye(2).repeat(2, 1)  # 4 images, each sure of its class
        >>> inception_score_splits(torch.cat([sure, torch.full((4, 2), 0.5)]), splits=2).tolist()
        [2.0, 1.0]
    """
    p = _check_probs(probs, splits)
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(dim=0, keepdim=True)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal.expand_as(part))).sum(dim=1)
        scores.append(kl.mean().exp())
    return torch.stack(scores)


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score, book equation (inception-score): mean and std over ``splits`` splits.

    In each split, p(y) is the split's mean of p(y|x), the score exp(E_x KL(p(y|x) || p(y)))
    (natural log; the exponential is taken per split, then the scores are averaged). Between
    1 (every image gets the same distribution) and K (each image sure of its class, classes
    used equally). It never looks at real images.

    Args:
        probs: (N, K) class probabilities, non-negative, rows summing to 1 (within 1e-4).
        splits: number of consecutive, equal-as-possible splits (10 as in Salimans et al.).

    Returns:
        ``(mean, std)`` as floats; std with ddof 0 (``numpy.std``, as the original code and
        torch-fidelity; torchmetrics uses ddof 1).

    Raises:
        ValueError: for a non-2-D input, fewer than two rows, negative entries, rows not summing
            to 1, NaN/inf, or ``splits`` not in 1..N.

    Example:
        >>> inception_score(torch.eye(4).repeat(6, 1), splits=2)  # sure and balanced: IS = K = 4
        (4.0, 0.0)
    """
    scores = inception_score_splits(probs, splits)
    return float(scores.mean()), float(scores.std(correction=0))


__all__ = ["frechet_distance", "fid", "gaussian_statistics", "inception_score", "inception_score_splits",
           "probs_from_logits", "sqrtm_psd", "trace_sqrt_product"]
