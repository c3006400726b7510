"""Improved precision and recall (Kynkaanniemi, Karras, Laine, Lehtinen and Aila 2019), and the
nearest-neighbour distances that catch a memorizing generator.

Each real feature x_i gets a ball whose radius is the distance to its k-th nearest other real
feature; the union of the balls estimates the support of the real distribution. Likewise for the
generated features. Then, book equation (precision-recall):

    precision = fraction of generated samples that fall in some real ball     (quality)
    recall    = fraction of real samples that fall in some generated ball     (coverage)

FID folds both into one number; precision and recall keep them apart, so that a model that
drops modes (recall falls) is told from one that draws poor samples (precision falls).
"""

from __future__ import annotations

import torch

from course_lib.validation import check_feature_pair, check_features, check_positive_int

BLOCK = 1024  # rows of a distance matrix held at once: 1024 x 60,000 float64 is 0.5 GB


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of a and b, shape (len(a), len(b)). In float64 the
    matrix-product route (|a|^2 + |b|^2 - 2ab, fast) loses only about 1e-8 to cancellation."""
    return torch.cdist(a, b)


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Distance from each row of ``features`` (N, d) to its k-th nearest *other* row, shape (N,).

    Example:
        >>> knn_radii(torch.tensor([[0.0], [1.0], [3.0]]), k=1)
        tensor([1., 1., 2.], dtype=torch.float64)
    """
    x = check_features(features, "features", min_samples=2)
    check_positive_int(k, "k")
    if k >= len(x):
        raise ValueError(f"k must be smaller than the number of samples ({len(x)}), got {k}")
    # the k+1-th smallest distance: the smallest is the sample's distance to itself, 0
    return torch.cat([_distances(block, x).kthvalue(k + 1, dim=1).values for block in x.split(BLOCK)])


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Fraction of ``points`` inside at least one ball (centre, radius); a point on a sphere counts."""
    inside = [(_distances(block, centres) <= radii).any(dim=1) for block in points.split(BLOCK)]
    return torch.cat(inside).to(torch.float64).mean()


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Improved precision and recall with k-nearest-neighbour balls, book equation (precision-recall).

    Equal to torch-fidelity's ``prc`` (``prc_neighborhood=k``) on the same features; mind that
    torch-fidelity takes the *generated* set first (``input1``), this function the real set first.

    Args:
        real_features: (N_r, d) features of real images, a tensor or numpy array.
        fake_features: (N_g, d) features of generated images, same width d.
        k: the neighbour whose distance sets each ball's radius (3 in the paper); k < N in each set.

    Returns:
        ``(precision, recall)``: 0-dim float64 CPU tensors in [0, 1].

    Raises:
        ValueError: for non-2-D inputs or different widths, NaN/inf, or ``k`` not in [1, N).

    Example:
        >>> real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
        >>> fake = torch.tensor([[0.5], [0.6], [10.0], [10.1]])  # half among the real ones, all bunched
        >>> p, r = precision_recall(real, fake, k=1)
        >>> float(p), float(r)
        (0.5, 0.0)
    """
    x, y = check_feature_pair(real_features, fake_features)
    check_positive_int(k, "k")
    for name, f in (("real_features", x), ("fake_features", y)):
        if k >= len(f):
            raise ValueError(f"k must be smaller than the number of samples in {name} ({len(f)}), got {k}")
    precision = _coverage(y, x, knn_radii(x, k))
    recall = _coverage(x, y, knn_radii(y, k))
    return precision, recall


def nearest_distances(samples, reference) -> torch.Tensor:
    """Distance from each sample to its nearest row of ``reference``, shape (N,), float64 on the CPU.

    A generator that returns training images has distance 0 to the training set: FID against
    the test set cannot see it, this can. Compare with the distances of held-out real images.

    Args:
        samples: (N, d) features or flattened images.
        reference: (M, d), e.g. the training set, same width d.

    Example:
        >>> nearest_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0]]))
        tensor([0., 5.], dtype=torch.float64)
    """
    x = check_features(samples, "samples", min_samples=1)
    ref = check_features(reference, "reference", min_samples=1)
    if x.shape[1] != ref.shape[1]:
        raise ValueError(f"samples and reference must have the same width d, got {x.shape[1]} and {ref.shape[1]}")
    return torch.cat([_distances(block, ref).min(dim=1).values for block in x.split(BLOCK)])
