"""Kernel Inception Distance (Binkowski, Sutherland, Arbel and Gretton 2018), book equation (kid).

KID is the squared maximum mean discrepancy (MMD) between the real and the generated feature
distributions, under the cubic polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/d.
Unlike FID, its estimator is unbiased: two samples of one distribution give KID 0 on average at
every sample size, so numbers computed with different N can be compared.

With m real features x_i and m generated features y_j (one subset), the unbiased estimator is

    MMD^2_u = sum_{i != i'} k(x_i, x_i') / (m (m-1)) + sum_{j != j'} k(y_j, y_j') / (m (m-1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2                                              (kid)

The diagonal terms k(x_i, x_i) are left out: they pair a sample with itself, and including them
(the biased V-statistic) adds a positive offset that shrinks only as 1/m. KID averages (kid) over
random subsets of ``subset_size`` samples from each set, as the paper and torch-fidelity do.
"""

from __future__ import annotations

import torch

from course_lib.validation import check_feature_pair, check_positive, check_positive_int


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> torch.Tensor:
    """The kernel matrix k(x_i, y_j) = (gamma <x_i, y_j> + coef0)^degree, shape (N, M).

    Args:
        x: (N, d) features; y: (M, d) features.
        degree, gamma, coef0: the kernel's parameters; ``gamma=None`` means 1/d.

    Example:
        >>> polynomial_kernel(torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]]))  # (1/2 * 2 + 1)^3
        tensor([[8.]])
    """
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> torch.Tensor:
    """Book equation (kid) from the three kernel matrices of m real and m generated samples.

    Example:
        >>> k = torch.ones(3, 3)  # a constant kernel cannot tell two samples apart
        >>> float(mmd2_unbiased(k, k, k))
        0.0
    """
    m = k_xx.shape[0]
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return off_diagonal / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kid(real_features, fake_features, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel Inception Distance: the mean and standard deviation of (kid) over random subsets.

    Args:
        real_features: (N_r, d) features of real images, a tensor or numpy array.
        fake_features: (N_g, d) features of generated images, same width d.
        subsets: number of random subsets (each draws ``subset_size`` samples from each set,
            without replacement).
        subset_size: m, samples per subset; at most min(N_r, N_g), at least 2.
        degree, gamma, coef0: the polynomial kernel's parameters (``gamma=None``: 1/d).
        seed: seeds the subsets' own generator (the global RNG is untouched).

    Returns:
        ``(mean, std)``: 0-dim float64 CPU tensors; ``std`` is the population standard deviation
        over subsets (as torch-fidelity reports it), 0 for one subset. KID can be slightly
        negative: an unbiased estimate of 0 scatters around 0.

    Raises:
        ValueError: for non-2-D inputs or different widths, NaN/inf, a ``subset_size`` below 2 or
            above either set's size, or a non-positive ``subsets`` or ``degree``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
        >>> same, _ = kid(x, y, subsets=10, subset_size=100)  # two samples of one distribution
        >>> shifted, _ = kid(x, y + 1, subsets=10, subset_size=100)  # the mean moved by 1 per coordinate
        >>> float(same) < 0.2 < 6 < float(shifted)
        True
    """
    x, y = check_feature_pair(real_features, fake_features)
    check_positive_int(subsets, "subsets")
    check_positive_int(degree, "degree")
    check_positive_int(subset_size, "subset_size", minimum=2)
    if subset_size > min(len(x), len(y)):
        raise ValueError(f"subset_size must be at most the number of samples in each set "
                         f"(real {len(x)}, fake {len(y)}), got {subset_size}; pass a smaller subset_size")
    if gamma is not None:
        check_positive(gamma, "gamma")
    generator = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        xs = x[torch.randperm(len(x), generator=generator)[:subset_size]]
        ys = y[torch.randperm(len(y), generator=generator)[:subset_size]]
        values[s] = mmd2_unbiased(polynomial_kernel(xs, xs, degree, gamma, coef0),
                                  polynomial_kernel(ys, ys, degree, gamma, coef0),
                                  polynomial_kernel(xs, ys, degree, gamma, coef0))
    return values.mean(), values.std(unbiased=False)
