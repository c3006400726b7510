"""Two ways to fool FID without changing how a generator draws, used in the chapter "Beyond FID".

- ``match_moments``: an affine map that gives a feature set exactly the mean and covariance of
  another. FID (book equation (fid)) sees only those two statistics, so the mapped set scores
  FID 0 against the target however different its shape (a Gaussian cloud against the ReLU
  features of real images, three clusters against one Gaussian).
- ``match_class_histogram``: which generated samples to keep so that their class histogram,
  under a classifier, matches that of the real images (Kynkaanniemi et al. 2023). No image
  changes, yet FID drops, most with an extractor whose features encode those classes.

Both build their results on the CPU (``match_moments`` in float64, as ``course_lib.fid``);
seeded work uses the caller's ``torch.Generator``, never the global one.
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.fid import gaussian_statistics, sqrtm_psd
from course_lib.validation import check_features, check_positive_int

#: A covariance whose smallest eigenvalue is below this fraction of its largest cannot be whitened.
SINGULAR = 1e-12


def match_moments(samples, target) -> torch.Tensor:
    """``samples`` moved by an affine map so that their mean and sample covariance equal ``target``'s.

    With means mu_s, mu_t and sample covariances S_s, S_t (divided by N - 1), the map is
    x -> (x - mu_s) S_s^(-1/2) S_t^(1/2) + mu_t, whose sample covariance is
    S_t^(1/2) S_s^(-1/2) S_s S_s^(-1/2) S_t^(1/2) = S_t. The shape of the cloud (clusters, skew,
    bounds) is kept up to that linear change, and FID against ``target`` is 0 to rounding.

    Args:
        samples: (N, D) features, a tensor on any device or a numpy array; their covariance must be
            invertible (more samples than dimensions, no constant direction).
        target: (M, D) features whose mean and covariance are to be matched (may be singular).

    Returns:
        (N, D) float64 CPU tensor.

    Raises:
        ValueError: for non-2-D inputs, different widths, fewer than two rows, NaN/inf, or a
            singular covariance of ``samples``.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [5.0]])  # mean 2, sample variance 7
        >>> y = match_moments(x, torch.tensor([[10.0], [12.0]]))  # mean 11, sample variance 2
        >>> round(float(y.mean()), 12), round(float(y.var()), 12)
        (11.0, 2.0)
    """
    x = check_features(samples, "samples")
    t = check_features(target, "target")
    if x.shape[1] != t.shape[1]:
        raise ValueError(f"samples and target must have the same width D, got {x.shape[1]} and {t.shape[1]}")
    mu_s, sigma_s = gaussian_statistics(x)
    mu_t, sigma_t = gaussian_statistics(t)
    eigenvalues, vectors = torch.linalg.eigh(sigma_s)
    if eigenvalues.min() <= SINGULAR * max(float(eigenvalues.max()), 0.0):
        raise ValueError(f"samples' covariance is singular ({x.shape[0]} samples in {x.shape[1]} dimensions): "
                         "pass more samples than dimensions, with no constant direction")
    inverse_root = vectors @ torch.diag(eigenvalues.rsqrt()) @ vectors.T
    return (x - mu_s) @ inverse_root @ sqrtm_psd(sigma_t) + mu_t


def _labels(labels, name: str) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point() \
            or labels.is_complex() or labels.dtype == torch.bool:
        got = f"shape {tuple(labels.shape)}, {labels.dtype}" if isinstance(labels, torch.Tensor) \
            else type(labels).__name__
        raise ValueError(f"{name} must be a 1-D integer tensor of class indices, got {got}")
    if labels.numel() == 0:
        raise ValueError(f"{name} must hold at least one label, got an empty tensor")
    if bool((labels < 0).any()):
        raise ValueError(f"{name} must hold class indices >= 0, got {int(labels.min())}")
    return labels.detach().to("cpu", torch.int64)


def apportion(weights: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` items shared in proportion to ``weights`` (K,), as integers summing to ``n``.

    Each share is the floor of n w_k / sum(w); the items left go one each to the largest
    remainders, ties to the lower index (Hamilton's method).

    Example:
        >>> apportion(torch.tensor([1.0, 1.0, 1.0]), 10).tolist()  # 3.33 each: the first gets the extra one
        [4, 3, 3]
        >>> apportion(torch.tensor([5, 3, 0, 2]), 7).tolist()  # 3.5, 2.1, 0, 1.4
        [4, 2, 0, 1]
    """
    check_positive_int(n, "n")
    w = weights.to(torch.float64)
    if w.ndim != 1 or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("weights must be a 1-D tensor of non-negative numbers with a positive sum")
    quota = n * w / w.sum()
    counts = quota.floor().to(torch.int64)
    left = n - int(counts.sum())
    # stable sort: among equal remainders the lower index comes first
    order = torch.sort(-(quota - counts), stable=True).indices
    counts[order[:left]] += 1
    return counts


def match_class_histogram(labels_fake, labels_real, n: int, *, num_classes: int | None = None,
                          replacement: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``n`` generated samples whose class histogram matches the real one.

    The real histogram (the fraction of ``labels_real`` in each class) is turned into ``n``
    integer counts (``apportion``); each class's count is drawn at random among the generated
    samples of that class, and the indices are returned in random order (so that splits, as
    the Inception Score's, do not see the classes in blocks). No image is changed: this only
    chooses which ones to report, the attack of Kynkaanniemi et al. (2023).

    Args:
        labels_fake: (N_g,) class of each generated sample (e.g. the classifier's argmax), integers >= 0.
        labels_real: (N_r,) class of each real sample, by the same classifier.
        n: how many indices to return.
        num_classes: K; default: the largest label of either set + 1.
        replacement: draw with replacement (a sample may be reported several times); without it,
            a class needs at least its count of generated samples.
        generator: a ``torch.Generator`` for the draws (default: the global one).

    Returns:
        (n,) int64 indices into ``labels_fake``, on ``labels_fake``'s device.

    Raises:
        ValueError: for labels that are not 1-D non-negative integers, a non-positive ``n``, a
            label >= ``num_classes``, a class that the real set holds and the generated set lacks,
            or, without ``replacement``, a class with fewer generated samples than its count.

    Example:
        >>> fake = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])  # 60% class 0
        >>> real = torch.tensor([0, 1, 2])  # a third each
        >>> picked = match_class_histogram(fake, real, 6, generator=torch.Generator().manual_seed(0))
        >>> torch.bincount(fake[picked]).tolist()
        [2, 2, 2]
    """
    fake = _labels(labels_fake, "labels_fake")
    real = _labels(labels_real, "labels_real")
    check_positive_int(n, "n")
    if not isinstance(replacement, bool):
        raise ValueError(f"replacement must be True or False, got {replacement!r}")
    largest = int(max(fake.max(), real.max()))
    if num_classes is None:
        num_classes = largest + 1
    check_positive_int(num_classes, "num_classes")
    if largest >= num_classes:
        raise ValueError(f"labels must be smaller than num_classes = {num_classes}, got {largest}")
    counts = apportion(torch.bincount(real, minlength=num_classes), n)
    available = torch.bincount(fake, minlength=num_classes)
    picked = []
    for c in range(num_classes):
        want = int(counts[c])
        if want == 0:
            continue
        pool = torch.nonzero(fake == c).flatten()
        if len(pool) == 0:
            raise ValueError(f"labels_fake has no sample of class {c}, which labels_real holds: the histograms "
                             "cannot be matched; draw more samples")
        if replacement:
            picked.append(pool[torch.randint(len(pool), (want,), generator=generator)])
        elif len(pool) < want:
            raise ValueError(f"class {c} needs {want} samples but labels_fake holds {int(available[c])}: "
                             "pass replacement=True, a smaller n, or more generated samples")
        else:
            picked.append(pool[torch.randperm(len(pool), generator=generator)[:want]])
    indices = torch.cat(picked)
    indices = indices[torch.randperm(len(indices), generator=generator)]
    device = labels_fake.device if isinstance(labels_fake, torch.Tensor) else torch.device("cpu")
    return indices.to(device)


__all__ = ["apportion", "match_class_histogram", "match_moments"]
