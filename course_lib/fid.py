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

    sigma = V diag(w) V^T, sigma^(1/2) = V diag(sqrt(w)) V^T; the tiny eigenvalues (of either sign)
    that rounding gives a singular covariance's zero eigenvalues are set to 0.

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
    return (v * _zero_rounding_noise(w).sqrt()) @ v.T


def _zero_rounding_noise(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a PSD matrix with those below F eps max|lambda| set to 0 (numpy's ``matrix_rank``
    tolerance): a singular matrix's zero eigenvalues come out as +-1e-14, and their square roots (1e-7)
    would put noise into the square root's null directions."""
    if eigenvalues.numel() == 0:
        return eigenvalues
    tol = eigenvalues.numel() * torch.finfo(eigenvalues.dtype).eps * eigenvalues.abs().max()
    return torch.where(eigenvalues > tol, eigenvalues, 0.0)


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor, *, check_psd: bool = False) -> torch.Tensor:
    """Tr (S1 S2)^(1/2) for symmetric PSD S1, S2, in float64, without a non-symmetric ``sqrtm``.

    For the Cholesky factor S1 = L L^T (S1 positive definite), S1 S2 = L L^T S2 is similar to the
    symmetric PSD matrix M = L^T S2 L (conjugate by L), so both have the same non-negative eigenvalues
    lambda_i and Tr (S1 S2)^(1/2) = sum_i sqrt(lambda_i), book equation (fid-trace). One symmetric
    eigenvalue problem (``eigvalsh``) replaces scipy's Schur-based ``sqrtm`` of a non-symmetric matrix;
    no imaginary part can appear, tiny negative eigenvalues from rounding are clamped to 0, and no offset
    is added. A singular S1 (fewer samples than dimensions) has no Cholesky factor; with the symmetric
    roots S1 = R1^2, S2 = R2^2 the trace is the sum of the singular values of R1 R2, which a zero
    eigenvalue's rounding noise does not enter squared, then rooted (1e-12 would become 1e-6).

    Args:
        sigma1, sigma2: (F, F) symmetric PSD float64 matrices. Like LAPACK, the factorisation reads
            sigma1's lower triangle, and the product reads sigma2's lower triangle and diagonal blocks.
        check_psd: raise ``ValueError`` for a matrix with a clearly negative eigenvalue (a Cholesky
            factorisation of it plus a tiny multiple of I fails); ``frechet_distance`` checks this way.

    Memory: besides the arguments, about 1.5 F x F matrices at most: M is built in the factor's own
    storage (``_congruence_lower_``) and, from F = ``SMALL_DIM``, its eigenvalues are computed in place
    (``_eigvalsh_lower_``), where ``torch.linalg.eigvalsh`` would copy it.

    Returns:
        0-dim float64, >= 0.

    Example:
        >>> a = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
        >>> float(trace_sqrt_product(a, a))  # sqrt of diag(1, 16): 1 + 4
        5.0
    """
    if check_psd:  # first, while nothing else is held: its factor is not needed afterwards
        _check_psd(sigma2, "sigma2")
    factor, info = torch.linalg.cholesky_ex(sigma1)
    if int(info) == 0:
        m = _congruence_lower_(factor, sigma2)
        return _eigvalsh_lower_(m).clamp_min(0).sqrt().sum()
    # Singular (or nearly): with the symmetric roots S1 = R1^2, S2 = R2^2, S1 S2 is similar to
    # (R1 R2)(R1 R2)^T, so the trace is the sum of the singular values of R1 R2. Unlike the eigenvalues
    # of a product, they are not squared: a zero one comes out as 1e-14, not as a square root of 1e-12.
    del factor
    if check_psd:
        _check_psd(sigma1, "sigma1")
    return torch.linalg.svdvals(sqrtm_psd(sigma1) @ sqrtm_psd(sigma2)).sum()


def _symmetrised(s: torch.Tensor) -> torch.Tensor:
    """(s + s^T) / 2 in one new matrix (no second temporary)."""
    return torch.add(s, s.T).mul_(0.5)


def _check_psd(s: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``s`` is PSD up to rounding: a Cholesky factorisation of it (positive
    definite), or else of its symmetric part plus 1e-9 F max|s| I, must succeed."""
    if int(torch.linalg.cholesky_ex(s)[1]) == 0:
        return
    lo, hi = torch.aminmax(s)
    sym = _symmetrised(s)
    sym.diagonal().add_(1e-9 * max(-float(lo), float(hi), 1e-300) * max(s.shape[0], 1))
    if int(torch.linalg.cholesky_ex(sym)[1]) != 0:
        raise ValueError(f"{name} has a clearly negative eigenvalue: not a covariance matrix")


def _congruence_lower_(factor: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """M = L^T S L for a lower-triangular L = ``factor``, correct in its lower triangle, written over L.

    In 2 x 2 blocks (L12 = 0, and S12 taken as S21^T), only the blocks of Y = S L and M = L^T Y that the
    lower triangle needs are formed: 9/8 F^3 multiply-adds instead of the 2 F^3 of two full products.
    Y21^T, then Y22, live in L's zero upper block; M11, M21, M22 replace L11, L21, L22 once these are
    used up; a left product overwrites its right factor panel by panel. One block (Y11, a quarter of
    an F x F matrix) and one panel of temporaries.
    """
    d = factor.shape[0]
    if d < 256:  # small: the blocks' bookkeeping costs more than it saves
        return factor.T @ sigma @ factor
    h = d // 2  # L11 is h x h, L22 is (d - h) x (d - h), d - h >= h
    l11, l21, l22, upper = factor[:h, :h], factor[h:, :h], factor[h:, h:], factor[:h, h:]
    s11, s21, s22 = sigma[:h, :h], sigma[h:, :h], sigma[h:, h:]
    # Y21 = S21 L11 + S22 L21, kept transposed in the upper block
    torch.matmul(l11.T, s21.T, out=upper).addmm_(l21.T, s22.T)
    y21 = upper.T
    y11 = torch.matmul(s11, l11).addmm_(s21.T, l21)  # Y11 = S11 L11 + S12 L21
    _left_product_(l11.T, y11, l21.T, y21)  # M11 = L11^T Y11 + L21^T Y21, over Y11
    l11.copy_(y11)  # L11 and L21 are used up
    del y11
    torch.matmul(l22.T, y21, out=l21)  # M21 = L22^T Y21
    y22 = upper if d - h == h else torch.empty_like(l22)  # Y21 is used up
    torch.matmul(s22, l22, out=y22)  # Y22 = S22 L22
    _left_product_(l22.T, y22)  # M22 = L22^T Y22, over Y22
    l22.copy_(y22)
    return factor


def _left_product_(a: torch.Tensor, b: torch.Tensor, a2: torch.Tensor | None = None,
                   b2: torch.Tensor | None = None, panel: int = 128) -> None:
    """b <- a b (+ a2 b2), column panel by column panel: column j of the result needs column j of b only."""
    for j in range(0, b.shape[1], panel):
        t = a @ b[:, j:j + panel]
        if a2 is not None:
            t.addmm_(a2, b2[:, j:j + panel])
        b[:, j:j + panel] = t


def _eigvalsh_lower_(m: torch.Tensor) -> torch.Tensor:
    """The eigenvalues of the symmetric matrix whose lower triangle ``m`` holds; ``m`` may be overwritten.

    From F = ``SMALL_DIM`` on, LAPACK's ``syevd`` runs in place through scipy (``torch.linalg.eigvalsh``
    would first copy the F x F matrix: 32 MB at F = 2048), with scipy's BLAS on one thread meanwhile
    (threadpoolctl): OpenBLAS's threads waiting on a busy CPU made ``syevd`` 50 times slower at F = 1024.
    """
    if m.shape[0] >= SMALL_DIM:
        import scipy.linalg
        from threadpoolctl import threadpool_limits

        # The lower triangle of a row-major m is the upper one of the same memory read column-major.
        a, lower = (m.numpy().T, False) if m.is_contiguous() else (m.numpy(), True)
        if a.flags.f_contiguous:
            with threadpool_limits(limits=1, user_api="blas"):
                return torch.from_numpy(scipy.linalg.eigh(a, lower=lower, eigvals_only=True, overwrite_a=True,
                                                          check_finite=False, driver="evd"))
    return torch.linalg.eigvalsh(m, UPLO="L")


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
    with _threads_for(d):
        for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
            _check_symmetric(s, name, d)
        # positive semi-definite: checked by the Cholesky factorisations the trace needs anyway
        tr = trace_sqrt_product(sigma1, sigma2, check_psd=True)
    diff = mu1 - mu2
    return (diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr).clamp_min(0)


def _check_symmetric(s: torch.Tensor, name: str, d: int) -> None:
    """Raise ValueError unless ``s`` has shape (d, d) and equals s^T up to rounding.

    The test is ``torch.allclose(s, s.T, rtol=1e-6, atol=1e-9 max|s|)``, which holds whenever
    max|s - s^T| <= 1e-9 max|s|; that is checked first, row block by row block (no F x F temporary).
    """
    if s.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the means, got {tuple(s.shape)}")
    if s.numel() == 0:
        return
    lo, hi = torch.aminmax(s)
    scale = max(-float(lo), float(hi), 1e-300)
    step = max(1, 2**17 // d)  # blocks of about 1 MB
    asymmetry = max(float((s[i:i + step] - s[:, i:i + step].T).abs().max()) for i in range(0, d, step))
    if asymmetry > 1e-9 * scale and not torch.allclose(s, s.T, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError(f"{name} must be symmetric (a covariance matrix)")


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

    The route follows the shapes: with many samples, ``frechet_distance`` of the F x F statistics; with
    few (e.g. N = 1024 Inception features of width F = 2048, whose covariances are singular), the same
    number from the N-dimensional sample space: Tr (S_r S_g)^(1/2) is the sum of the singular values of
    A B^T / sqrt((N_r - 1)(N_g - 1)) for the centred features A, B, and no F x F matrix is formed.

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
    mean_term, cov_term = _terms(*_feature_pair(real_features, fake_features))
    return mean_term + cov_term


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
    return _terms(*_feature_pair(real_features, fake_features))


def _terms(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and covariance terms of checked features, by the route their shapes make cheaper."""
    if _sample_space_is_cheaper(real.shape[0], fake.shape[0], real.shape[1]):
        return _terms_in_sample_space(real, fake)
    (mu_r, sigma_r), (mu_g, sigma_g) = gaussian_statistics(real), gaussian_statistics(fake)
    # with equal means, the Frechet distance is the covariance term alone
    return (mu_r - mu_g).pow(2).sum(), frechet_distance(mu_r, sigma_r, mu_r, sigma_g)


def _sample_space_is_cheaper(n1: int, n2: int, d: int) -> bool:
    """Whether FID from features is cheaper in the N-dimensional sample space than with F x F covariances.

    Costs in matrix-product multiply-adds, roughly (measured on one CPU core at F = 2048): the sample
    space costs A B^T (N1 N2 F) and its singular values (about 4 n^2 N for an n x N matrix, n <= N); the
    covariances cost their two products (F^2 (N1 + N2)) and ``frechet_distance`` (about 4 F^3). Both
    routes are exact. With N1 = N2 < F the sample space wins (7 times fewer operations at N = F / 2);
    at N = 2 F the covariances do.
    """
    small, large = sorted((n1, n2))
    return n1 * n2 * d + 4 * small**2 * large < d**2 * (n1 + n2) + 4 * d**3


def _terms_in_sample_space(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FID's mean and covariance terms from the centred features A (N1, F), B (N2, F), never forming F x F.

    With S1 = A^T A / (N1 - 1) and S2 = B^T B / (N2 - 1), the nonzero eigenvalues of S1 S2 are those of
    (A B^T)(B A^T) / ((N1 - 1)(N2 - 1)), the squared singular values of C = A B^T / sqrt((N1 - 1)(N2 - 1)):
    Tr (S1 S2)^(1/2) = sum of the singular values of C, an N1 x N2 matrix; Tr S1 = ||A||_F^2 / (N1 - 1).
    """
    mu_r, mu_g = real.mean(dim=0), fake.mean(dim=0)
    a, b = real - mu_r, fake - mu_g
    n1, n2 = a.shape[0] - 1, b.shape[0] - 1
    with _threads_for(min(a.shape[0], b.shape[0])):
        tr = torch.linalg.svdvals(a @ b.T).sum() / (n1 * n2) ** 0.5
    cov_term = (a.pow(2).sum() / n1 + b.pow(2).sum() / n2 - 2 * tr).clamp_min(0)
    return (mu_r - mu_g).pow(2).sum(), cov_term


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
