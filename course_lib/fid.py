"""Frechet Inception Distance and Inception Score from scratch, and the feature extractors they need.

Book equations (fid) and (inception-score):

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))                      (fid)
    IS  = exp( E_x KL(p(y|x) || p(y)) ),  p(y) = E_x p(y|x)                          (inception-score)

``frechet_distance`` and ``fid`` equal pytorch-fid's ``calculate_frechet_distance`` and torchmetrics'
FID on the same features; ``inception_score`` equals the original code of Salimans et al. and
torch-fidelity (without its shuffle) on the same probabilities. Features come from an extractor
with the interface ``features(images) -> (N, D)``, ``probs(images) -> (N, K)``:

- ``course_lib.classifier.FashionClassifier`` (shipped, offline): a *domain* FID and IS;
- ``InceptionV3`` below: the network of pytorch-fid (TensorFlow's FID Inception), whose weights are
  read from the torch hub cache under pytorch-fid's file name, a file you pass, or downloaded and
  SHA-256-verified by ``course_lib.downloads``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import downloads
from course_lib.metrics import check_images
from course_lib.resizing import check_style, inception_input

# --------------------------------------------------------------------------------------------------
# Frechet distance, book equation (fid)
# --------------------------------------------------------------------------------------------------


def _as_float64(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got a complex tensor")
    x = x.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


SMALL_DIM = 1024  # below this width, the eigendecompositions run on one thread


@contextlib.contextmanager
def _single_thread_below(limit: int, d: int | None = None):
    old = torch.get_num_threads()
    if d is None or d < limit:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def sqrtm_psd(sigma: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix, by eigendecomposition.

    sigma = V diag(w) V^T, sigma^(1/2) = V diag(sqrt(max(w, 0))) V^T; the tiny negative eigenvalues
    that rounding gives a singular covariance are clamped to 0.

    Args:
        sigma: (D, D), symmetric (it is symmetrised first), float64.

    Returns:
        (D, D) float64 symmetric R with R @ R = sigma (up to rounding).

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
        sigma1, sigma2: (D, D) symmetric PSD float64 matrices.

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
    several times faster than ``scipy.linalg.sqrtm`` at D = 2048). Equals pytorch-fid's
    ``calculate_frechet_distance`` and torchmetrics' ``_compute_fid``. The result is clamped at 0
    (rounding can make the distance of a Gaussian to itself -1e-12).

    Args:
        mu1, mu2: means, shape (D,); torch tensors or numpy arrays.
        sigma1, sigma2: covariances, shape (D, D), symmetric positive semi-definite.

    Returns:
        0-dim float64 tensor >= 0 (the *squared* Frechet distance, as FID is reported).

    Raises:
        ValueError: for mismatched shapes, non-square or non-symmetric covariances, NaN/inf, or a
            covariance with clearly negative eigenvalues (not a covariance).

    Example:
        >>> mu, s1, s2 = torch.zeros(2), torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([4.0, 9.0]))
        >>> frechet_distance(mu, s1, mu + 1, s2)  # ||1||^2 = 2, plus (1-2)^2 + (2-3)^2 = 2
        tensor(4., dtype=torch.float64)
    """
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    sigma1, sigma2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
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
        with _single_thread_below(SMALL_DIM, d):
            info = torch.linalg.cholesky_ex((s + s.T) / 2 + jitter * torch.eye(d, dtype=s.dtype))[1]
        if info != 0:
            raise ValueError(f"{name} has a clearly negative eigenvalue: not a covariance matrix")
    diff = mu1 - mu2
    with _single_thread_below(SMALL_DIM, d):  # threaded LAPACK is slower on small matrices (much, on a busy CPU)
        tr = trace_sqrt_product(sigma1, sigma2)
    return (diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr).clamp_min(0)


def gaussian_statistics(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and *sample* covariance (divided by N - 1, as ``numpy.cov``) of features, float64.

    Args:
        features: (N, D) with N >= 2, finite.

    Returns:
        ``(mu, sigma)`` of shapes (D,) and (D, D).

    Raises:
        ValueError: for a non-2-D input, fewer than two rows, or NaN/inf.

    Example:
        >>> mu, sigma = gaussian_statistics(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
        >>> mu.tolist(), sigma.tolist()
        ([1.0, 2.0], [[2.0, 2.0], [2.0, 2.0]])
    """
    x = _check_features(features, "features")
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def _check_features(features, name: str) -> torch.Tensor:
    x = _as_float64(features, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} must hold at least two samples to estimate a covariance, got {x.shape[0]}")
    return x


def fid(real_features, fake_features) -> torch.Tensor:
    """FID between two feature sets, book equation (fid), from their means and sample covariances.

    Args:
        real_features: (N_r, D) features of real images (N_r >= 2).
        fake_features: (N_g, D) features of generated images, same width D.

    Returns:
        0-dim float64 tensor >= 0. It is biased upwards at small N (see the chapter): compare
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
    real = _check_features(real_features, "real_features")
    fake = _check_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features must have the same width D, "
                         f"got {real.shape[1]} and {fake.shape[1]}")
    for name, x in (("real_features", real), ("fake_features", fake)):
        if x.shape[0] < x.shape[1]:
            warnings.warn(f"{name} has {x.shape[0]} samples for {x.shape[1]} dimensions: its covariance is "
                          "singular and FID is strongly biased; use more samples than dimensions",
                          UserWarning, stacklevel=2)
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(fake))


# --------------------------------------------------------------------------------------------------
# Inception Score, book equation (inception-score)
# --------------------------------------------------------------------------------------------------


def probs_from_logits(logits) -> torch.Tensor:
    """Class probabilities p(y|x) = softmax(logits) in float64.

    Args:
        logits: (N, K) finite.

    Returns:
        (N, K) float64, rows summing to 1.

    Raises:
        ValueError: for a non-2-D input or NaN/inf.

    Example:
        >>> probs_from_logits(torch.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    x = _as_float64(logits, "logits")
    if x.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {tuple(x.shape)}")
    return torch.softmax(x, dim=1)


def _check_probs(probs, splits) -> torch.Tensor:
    p = _as_float64(probs, "probs")
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {tuple(p.shape)}")
    if p.shape[0] < 2:
        raise ValueError(f"probs must hold at least two samples, got {p.shape[0]}")
    if (p < 0).any():
        raise ValueError("probs has negative entries; pass probabilities (probs_from_logits turns logits into them)")
    sums = p.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4, rtol=0):
        raise ValueError(f"probs rows must sum to 1 (got sums from {float(sums.min()):.4g} to "
                         f"{float(sums.max()):.4g}); "
                         "pass softmax probabilities, e.g. probs_from_logits(logits)")
    if not isinstance(splits, int) or isinstance(splits, bool) or not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be an int from 1 to N = {p.shape[0]}, got {splits!r}")
    return p


def inception_score_splits(probs, splits: int = 10) -> torch.Tensor:
    """The Inception Score of each split: exp(mean_x KL(p(y|x) || p_split(y))), shape (splits,).

    Split i holds rows ``i * N // splits`` to ``(i + 1) * N // splits`` in the given order (the
    original code of Salimans et al. and torch-fidelity; torch-fidelity shuffles first, torchmetrics
    shuffles and uses ``torch.chunk``). 0 log 0 is taken as 0.
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


# --------------------------------------------------------------------------------------------------
# InceptionV3 of pytorch-fid (TensorFlow's FID Inception)
# --------------------------------------------------------------------------------------------------

FID_WEIGHTS_FILE = downloads.FID_INCEPTION  # "pt_inception-2015-12-05-6726825d.pth", pytorch-fid's release
FID_WEIGHTS_URL = downloads.PINNED[FID_WEIGHTS_FILE].url
INCEPTION_SIZE = 299


class InceptionWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights are not on this machine and could not be downloaded."""


def inception_weights_path() -> Path:
    """Where the FID Inception weights are expected: ``torch.hub.get_dir()/checkpoints/<pytorch-fid's file>``.

    Example:
        >>> inception_weights_path().name
        'pt_inception-2015-12-05-6726825d.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def inception_available() -> bool:
    """True when ``inception_weights_path()`` exists, i.e. ``InceptionV3()`` works offline."""
    return inception_weights_path().is_file()


def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    # TensorFlow's average pool ignores the zero padding (torchvision's counts it).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _make_blocks():
    from torchvision.models import inception as tv

    class FIDInceptionA(tv.InceptionA):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return torch.cat([b1, b5, b3, self.branch_pool(_pool(x, "avg"))], 1)

    class FIDInceptionC(tv.InceptionC):
        def forward(self, x):
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                          self.branch7x7dbl_5):
                d = layer(d)
            return torch.cat([b1, b7, d, self.branch_pool(_pool(x, "avg"))], 1)

    class FIDInceptionE(tv.InceptionE):
        def __init__(self, in_channels, pool_kind):
            super().__init__(in_channels)
            self.pool_kind = pool_kind

        def forward(self, x):
            b1 = self.branch1x1(x)
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            # The FID Inception max-pools in its last block (the paper and torchvision average).
            return torch.cat([b1, b3, d, self.branch_pool(_pool(x, self.pool_kind))], 1)

    return FIDInceptionA, FIDInceptionC, FIDInceptionE


class InceptionV3(nn.Module):
    """The FID InceptionV3 of pytorch-fid: pool3 features (2048-d) for FID, 1008-way logits for IS.

    Layers and state-dict keys are those of ``pytorch_fid.inception.fid_inception_v3()`` (torchvision's
    ``Inception3`` with the blocks patched as TensorFlow computes them), so pytorch-fid's weight file
    loads as is. Inputs in [0, 1], (N, 1 or 3, H, W): a grayscale image is repeated to 3 channels,
    every image is resized to 299x299 bilinearly (``align_corners=False``, no antialiasing, as
    pytorch-fid) and scaled to [-1, 1].

    Args:
        weights: a state-dict file; default: ``inception_weights_path()`` (the torch hub cache under
            ``$TORCH_HOME``), then a download from pytorch-fid's release when ``download``.
        download: allow the download when the file is not cached: ``course_lib.downloads.ensure``, which
            checks the pinned SHA-256 and size and never leaves a partial file in the cache
            (``$COURSE_WEIGHTS_MIRROR`` selects a mirror).
        style: the input resizing and scaling, ``"pytorch-fid"`` (default, that of the reference
            features) or another of ``course_lib.resizing.RESIZE_STYLES`` to measure what it changes.

    Raises:
        InceptionWeightsNotFoundError: when the weights are absent and cannot be downloaded, or the
            download is refused (wrong hash, truncated); the message names the expected file (and
            hash). Random weights are never used in their place.
        ValueError: for a ``style`` not in ``RESIZE_STYLES``.

    Example:
        >>> InceptionV3(weights="/nonexistent.pth")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        course_lib.fid.InceptionWeightsNotFoundError: weights='/nonexistent.pth' does not exist
    """

    feature_dim, num_classes = 2048, 1008

    def __init__(self, weights: str | os.PathLike | None = None, download: bool = True, style: str = "pytorch-fid"):
        super().__init__()
        check_style(style)  # before the weights are read: a typo should not cost a download
        self.style = style
        state = _load_inception_state(weights, download)
        self._build()
        self.load_state_dict(state)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _build(self):
        from torchvision.models.inception import BasicConv2d, InceptionB, InceptionD

        fid_a, fid_c, fid_e = _make_blocks()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = fid_a(192, pool_features=32)
        self.Mixed_5c = fid_a(256, pool_features=64)
        self.Mixed_5d = fid_a(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = fid_c(768, channels_7x7=128)
        self.Mixed_6c = fid_c(768, channels_7x7=160)
        self.Mixed_6d = fid_c(768, channels_7x7=160)
        self.Mixed_6e = fid_c(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = fid_e(1280, "avg")
        self.Mixed_7c = fid_e(2048, "max")
        self.fc = nn.Linear(2048, self.num_classes)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) in [0, 1] -> (N, 3, 299, 299) network input, resized as ``self.style``."""
        return inception_input(images, self.style, INCEPTION_SIZE)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """pool3 features (N, 2048) of preprocessed inputs (N, 3, 299, 299) in [-1, 1]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1008) of images in [0, 1]."""
        return self.fc(self.pool3(self.preprocess(images)))

    @torch.no_grad()
    def _run(self, images: torch.Tensor, what: str, batch_size: int) -> torch.Tensor:
        check_images(images, "images")
        device = self.fc.weight.device
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = self.preprocess(images[start:start + batch_size].to(device, torch.float32))
            h = self.pool3(x)
            if what == "probs":
                h = torch.softmax(self.fc(h).double(), dim=1)
            out.append(h.double().cpu())
        return torch.cat(out)

    def features(self, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
        """pool3 features (N, 2048) float64 of images (N, 1 or 3, H, W) in [0, 1]."""
        return self._run(images, "features", batch_size)

    def probs(self, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
        """Softmax of the 1008 logits (N, 1008) float64, for the Inception Score."""
        return self._run(images, "probs", batch_size)


def _load_inception_state(weights, download: bool) -> dict:
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InceptionWeightsNotFoundError(f"weights={str(path)!r} does not exist")
        return torch.load(path, map_location="cpu", weights_only=True)
    path = inception_weights_path()
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    how = (f"the FID Inception weights are expected at {path} (torch hub cache; set TORCH_HOME to look "
           f"elsewhere). Download {FID_WEIGHTS_URL} on a machine with internet and copy it there, or pass "
           f"weights=<path to the file>, or set {downloads.MIRROR_ENV} to a server or folder that holds it.")
    if not download:
        raise InceptionWeightsNotFoundError(how)
    try:
        path = downloads.ensure(FID_WEIGHTS_FILE, progress=True)  # pinned SHA-256 and size, verified
    except downloads.WeightsDownloadError as err:  # offline (URLError), HTTP error, truncated, wrong hash
        raise InceptionWeightsNotFoundError(f"{how} (download failed: {err})") from err
    return torch.load(path, map_location="cpu", weights_only=True)


def domain_extractor(device: torch.device | str = "cpu"):
    """The shipped Fashion-MNIST classifier (``fashion_classifier``), the offline extractor."""
    from course_lib.classifier import load_fashion_classifier

    return load_fashion_classifier(device)


__all__ = ["frechet_distance", "fid", "gaussian_statistics", "inception_score", "inception_score_splits",
           "probs_from_logits", "sqrtm_psd", "trace_sqrt_product", "InceptionV3", "InceptionWeightsNotFoundError",
           "inception_weights_path", "inception_available", "domain_extractor"]
