"""Image-quality metrics, functional API in the style of torchmetrics.functional.

Inputs are batches (N, C, H, W) on any device; each metric gives one value per image pair with
``reduction="none"``, or their mean. PSNR and SSIM accumulate in float64, which happens on the CPU
(``course_lib.runtime.float64_cpu``; Apple's MPS has no float64): their results are float64 CPU
tensors, detached (these are measurements, not training losses). Inputs are checked by
``course_lib.validation.check_image_pair``: values within float round-off of [0, data_range] are
accepted as they are (nothing is clipped), and [0, 1] images passed with ``data_range=255`` warn.
"""

from __future__ import annotations

import torch

from course_lib.runtime import float64_cpu
from course_lib.validation import (
    check_choice,
    check_finite_pair,
    check_image_pair,
    check_positive,
    check_positive_int,
)

REDUCTIONS = ("mean", "none")


def psnr(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio, book equation (psnr): 10 log10(MAX^2 / MSE), per image.

    MSE is the mean of squared differences over each image's C*H*W values. The mean over the
    batch is taken of the per-image PSNRs (in dB), never of the MSEs, so one bad image does
    not hide behind good ones. An image equal to its target has MSE 0 and PSNR +inf.

    Args:
        preds: images, shape (N, C, H, W) with N >= 1, values in [0, data_range], on any device.
        target: reference images, same shape.
        data_range: MAX, the largest possible value (1.0 for [0, 1] images, 255 for uint8).
        reduction: ``"mean"`` (a scalar) or ``"none"`` (shape (N,)).

    Returns:
        PSNR in decibels, a float64 CPU tensor.

    Raises:
        ValueError: for different shapes, a non-4-D or empty input, NaN/inf values, values outside
            [0, data_range] (beyond float round-off), a non-positive ``data_range`` or an unknown
            ``reduction``.

    Warns:
        UserWarning: for images all in [0, 1] with ``data_range`` > 1 (the PSNR would be inflated
            by 20 log10(data_range)).

    Example:
        >>> target = torch.zeros(1, 1, 2, 2); preds = torch.full((1, 1, 2, 2), 0.1)
        >>> psnr(preds, target, data_range=1.0)  # MSE = 0.01 -> 20 dB
        tensor(20.0000, dtype=torch.float64)
    """
    check_image_pair(preds, target, data_range)
    _check_reduction(reduction)
    diff = float64_cpu(preds) - float64_cpu(target)
    mse = diff.pow(2).flatten(1).mean(dim=1)
    values = 10 * torch.log10(data_range**2 / mse)
    return values if reduction == "none" else values.mean()


def _check_reduction(reduction: str) -> None:
    check_choice(reduction, "reduction", REDUCTIONS)


# --------------------------------------------------------------------------------------------------
# SSIM, book equations (ssim-l), (ssim-c), (ssim-s), (ssim)
# --------------------------------------------------------------------------------------------------

SSIM_K1, SSIM_K2 = 0.01, 0.03


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64,
                    device: str | torch.device | None = None) -> torch.Tensor:
    """The 1-D Gaussian weights of SSIM's window, summing to 1 (as ``scipy.ndimage`` truncates them).

    The 2-D window is the outer product ``w[:, None] * w[None, :]``; SSIM filters with it separably.

    Args:
        size: odd number of taps (11 for the standard SSIM window).
        sigma: standard deviation in pixels (1.5).
        dtype, device: of the result (float64 on the CPU by default).

    Returns:
        Shape (size,), positive, sums to 1.

    Raises:
        ValueError: if ``size`` is not a positive odd int or ``sigma`` is not positive.

    Example:
        >>> w = gaussian_window(11, 1.5)
        >>> w.shape, round(float(w.sum()), 12), bool(w[5] == w.max())
        (torch.Size([11]), 1.0, True)
    """
    _check_odd(size, "size")
    check_positive(sigma, "sigma")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, weights: torch.Tensor | None = None,
    k1: float = SSIM_K1, k2: float = SSIM_K2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SSIM's luminance, contrast and structure terms on ONE window, book equations (ssim-l), (ssim-c), (ssim-s).

    With weights w (summing to 1; uniform by default): mu_x = sum w x, sigma_x^2 = sum w (x - mu_x)^2
    (a weighted *population* variance, no n - 1), sigma_xy = sum w (x - mu_x)(y - mu_y), and
    C1 = (k1 L)^2, C2 = (k2 L)^2, C3 = C2 / 2 with L = ``data_range``.

    Args:
        x, y: the pixels of one window, any equal shapes (all elements form the window).
        data_range: L, the dynamic range of the pixel values (1.0 or 255).
        weights: the window's weights, same shape, non-negative; normalised to sum to 1.
        k1, k2: the stabilising constants' factors.

    Returns:
        ``(l, c, s)``: 0-dim float64 CPU tensors; l, c in (0, 1], s in [-1, 1]; l * c * s is SSIM.

    Raises:
        ValueError: if shapes differ, values are not finite, or ``data_range`` is not positive.

    Example:
        >>> x = torch.tensor([0.2, 0.4, 0.6, 0.8]); l, c, s = ssim_terms(x, x)
        >>> [round(float(t), 12) for t in (l, c, s)]  # identical windows: every term is 1
        [1.0, 1.0, 1.0]
    """
    check_finite_pair(x, y)
    check_positive(data_range, "data_range")
    x, y = float64_cpu(x).flatten(), float64_cpu(y).flatten()
    if weights is None:
        w = torch.full_like(x, 1 / x.numel())
    else:
        if weights.shape != x.shape and weights.numel() != x.numel():
            raise ValueError(f"weights must have the window's shape, got {tuple(weights.shape)}")
        w = float64_cpu(weights).flatten()
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        w = w / w.sum()
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c3 = c2 / 2
    mu_x, mu_y = (w * x).sum(), (w * y).sum()
    var_x, var_y = (w * (x - mu_x) ** 2).sum(), (w * (y - mu_y) ** 2).sum()
    cov = (w * (x - mu_x) * (y - mu_y)).sum()
    sd_x, sd_y = var_x.sqrt(), var_y.sqrt()
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    con = (2 * sd_x * sd_y + c2) / (var_x + var_y + c2)
    struct = (cov + c3) / (sd_x * sd_y + c3)
    return lum, con, struct


def ssim_components(
    preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
    kernel_size: int = 11, sigma: float = 1.5, k1: float = SSIM_K1, k2: float = SSIM_K2,
) -> dict[str, torch.Tensor]:
    """SSIM's maps on every Gaussian window that fits inside the image (the *valid* region).

    Local statistics come from filtering with the Gaussian window (equation (ssim-stats)): mu = w * x,
    sigma_x^2 = w * x^2 - mu_x^2, sigma_xy = w * (x y) - mu_x mu_y, in float64 (the subtraction
    cancels badly in float32). The window centred on pixel (i, j) covers the image only when
    i, j are at least ``kernel_size // 2`` from the border, so the maps are smaller than the image.
    The 2-D window is separable: each statistic is filtered along W, then along H (two 1-D passes of
    ``kernel_size`` taps instead of ``kernel_size**2``), all five statistics of a group of image planes at once.

    Args:
        preds: images, shape (N, C, H, W), values in [0, data_range], with H, W >= ``kernel_size``.
        target: reference images, same shape.
        data_range: L (1.0 for [0, 1] images, 255 for uint8).
        kernel_size, sigma: the Gaussian window (11, 1.5 as in Wang et al. 2004).
        k1, k2: C1 = (k1 L)^2, C2 = (k2 L)^2, C3 = C2 / 2.

    Returns:
        A dict of float64 CPU maps, each of shape (N, C, H - kernel_size + 1, W - kernel_size + 1):
        ``"luminance"`` (ssim-l) in (0, 1], ``"contrast"`` (ssim-c) in (0, 1], ``"structure"``
        (ssim-s) in [-1, 1], and ``"ssim"`` = their product (ssim), in [-1, 1].

    Raises:
        ValueError: as ``course_lib.validation.check_image_pair``, or for an image smaller than the window.

    Example:
        >>> x = torch.rand(2, 3, 16, 20)
        >>> maps = ssim_components(x, x)
        >>> maps["ssim"].shape, bool(torch.allclose(maps["ssim"], torch.ones(1, dtype=torch.float64)))
        (torch.Size([2, 3, 6, 10]), True)
    """
    check_image_pair(preds, target, data_range)
    _check_window(preds, kernel_size)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c3 = c2 / 2
    n, c, h, w = preds.shape
    shape = (n * c, h - kernel_size + 1, w - kernel_size + 1)
    maps = {name: torch.empty(shape, dtype=torch.float64) for name in ("luminance", "contrast", "structure", "ssim")}
    for lo, hi, (mu_x, mu_y, e_xx, e_yy, e_xy) in _filtered_statistics(preds, target, kernel_size, sigma, True):
        var_x = (e_xx - mu_x**2).clamp_min(0)  # rounding can leave -1e-17 where a window is flat
        var_y = (e_yy - mu_y**2).clamp_min(0)
        cov = e_xy - mu_x * mu_y
        sd_xy = (var_x * var_y).sqrt()
        lum = torch.div(2 * mu_x * mu_y + c1, mu_x**2 + mu_y**2 + c1, out=maps["luminance"][lo:hi])
        torch.div(2 * sd_xy + c2, var_x + var_y + c2, out=maps["contrast"][lo:hi])
        torch.div(cov + c3, sd_xy + c3, out=maps["structure"][lo:hi])
        # With C3 = C2 / 2 the product c * s simplifies to (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2).
        torch.div(lum * (2 * cov + c2), var_x + var_y + c2, out=maps["ssim"][lo:hi])
    return {name: m.view(n, c, *shape[1:]) for name, m in maps.items()}


def ssim(
    preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean",
    kernel_size: int = 11, sigma: float = 1.5, k1: float = SSIM_K1, k2: float = SSIM_K2,
) -> torch.Tensor:
    """Structural similarity, book equation (ssim), averaged over the valid windows and the channels.

    Equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L, channel_axis=0)`` per image, and torchmetrics'
    ``structural_similarity_index_measure`` *once its border is cropped* (torchmetrics reflect-pads
    the image and also averages the windows that hang over the border). Unlike Wang et al.'s MATLAB
    code, large images are not downsampled first. Four statistics are filtered (separably, in float64):
    x, y, x^2 + y^2 and x y, since the formula needs sigma_x^2 + sigma_y^2 only as a sum.

    Args:
        preds: images, shape (N, C, H, W) (C = 1 grayscale, 3 colour), values in [0, data_range],
            H and W at least ``kernel_size``.
        target: reference images, same shape.
        data_range: L, the largest possible value (1.0 for [0, 1] images, 255 for uint8).
        reduction: ``"mean"`` (a scalar, the mean of the per-image values) or ``"none"`` (shape (N,)).
        kernel_size, sigma, k1, k2: see ``ssim_components``.

    Returns:
        SSIM in [-1, 1] (1 for identical images), a float64 CPU tensor.

    Raises:
        ValueError: for different shapes, a non-4-D or empty input, NaN/inf, values outside
            [0, data_range] (beyond float round-off), a non-positive ``data_range``, an image smaller
            than the window or an unknown ``reduction``.

    Warns:
        UserWarning: for images all in [0, 1] with ``data_range`` > 1 (the constants C1, C2 would
            then be far too large).

    Example:
        >>> target = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(0))
        >>> ssim(target, target)
        tensor(1., dtype=torch.float64)
        >>> ssim((target + 0.1).clamp(0, 1), target, reduction="none").shape
        torch.Size([4])
    """
    _check_reduction(reduction)
    check_image_pair(preds, target, data_range)
    _check_window(preds, kernel_size)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    n, c = preds.shape[:2]
    sums = torch.empty(n * c, dtype=torch.float64)  # one sum of the SSIM map per image plane
    for lo, hi, stats in _filtered_statistics(preds, target, kernel_size, sigma, False):
        sums[lo:hi] = _ssim_map_(*stats, c1, c2).sum(dim=(1, 2))
    windows = (preds.shape[-2] - kernel_size + 1) * (preds.shape[-1] - kernel_size + 1)
    values = sums.view(n, c).mean(dim=1) / windows
    return values if reduction == "none" else values.mean()


def _check_odd(value, name: str) -> None:
    check_positive_int(value, name)
    if value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int, got {value!r}")


def _check_window(preds, kernel_size) -> None:
    """The image pair is checked already; the window must be odd and fit inside the images."""
    _check_odd(kernel_size, "kernel_size")
    h, w = preds.shape[-2:]
    if h < kernel_size or w < kernel_size:
        raise ValueError(f"preds and target must be at least {kernel_size}x{kernel_size} pixels "
                         f"(the SSIM window), got {h}x{w}")


# About the four float64 statistics of one 256x256 plane: each of the filter's 2 k passes then runs
# over data in the CPU's cache, and small images are filtered many planes per step.
_CHUNK_BYTES = 2 * 2**20


def _correlate_valid(x: torch.Tensor, weights: list[float], dim: int, out: torch.Tensor) -> torch.Tensor:
    """Valid 1-D correlation of ``x`` with ``weights`` along ``dim``, written into ``out``.

    out[..., j, ...] = sum_i weights[i] x[..., j + i, ...]: one multiply-add per tap over shifted views
    of ``x`` (no copies, no banded matrix), in the dtype of ``out``.
    """
    n = out.shape[dim]
    torch.mul(x.narrow(dim, 0, n), weights[0], out=out)
    for i, w in enumerate(weights[1:], start=1):
        out.add_(x.narrow(dim, i, n), alpha=w)
    return out


def _filtered_statistics(preds, target, kernel_size, sigma, separate_squares):
    """Yield ``(lo, hi, stats)`` for consecutive groups of image planes: the Gaussian-weighted local means
    of x, y, then x^2 + y^2 and x y (``separate_squares=False``: all that SSIM needs) or x^2, y^2 and x y,
    on the valid windows, float64 on the CPU, of shape (S, hi - lo, H - k + 1, W - k + 1).

    The planes (image, channel) lo..hi - 1 are filtered at once by the separable window: along W, then
    along H. The buffers are reused from group to group, so each ``stats`` must be used before the next.
    """
    n, c, h, w = preds.shape
    k = kernel_size
    weights = gaussian_window(k, sigma).tolist()
    # One move to the CPU in the input dtype; the float64 copies are made there, group by group,
    # straight into the reused buffer (float64_cpu's rule: float64 only on the CPU).
    xs = preds.detach().to("cpu").reshape(n * c, h, w)
    ys = target.detach().to("cpu").reshape(n * c, h, w)
    s = 5 if separate_squares else 4
    group = max(1, min(n * c, _CHUNK_BYTES // (s * h * w * 8)))
    stack = torch.empty(s, group, h, w, dtype=torch.float64)
    rows = torch.empty(s, group, h, w - k + 1, dtype=torch.float64)  # after the pass along W
    out = torch.empty(s, group, h - k + 1, w - k + 1, dtype=torch.float64)
    for lo in range(0, n * c, group):
        hi = min(lo + group, n * c)
        st = stack[:, :hi - lo]
        x, y = st[0].copy_(xs[lo:hi]), st[1].copy_(ys[lo:hi])
        if separate_squares:
            torch.mul(x, x, out=st[2])
            torch.mul(y, y, out=st[3])
        else:
            torch.mul(x, x, out=st[2]).addcmul_(y, y)
        torch.mul(x, y, out=st[-1])
        _correlate_valid(st, weights, -1, rows[:, :hi - lo])
        yield lo, hi, _correlate_valid(rows[:, :hi - lo], weights, -2, out[:, :hi - lo])


def _ssim_map_(mu_x, mu_y, e_ss, e_xy, c1: float, c2: float) -> torch.Tensor:
    """Equation (ssim) with C3 = C2 / 2 from the filtered x, y, x^2 + y^2, x y; overwrites its arguments.

    (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)), in place:
    the maps are large and the filter's buffers are free again once this is computed.
    """
    sq = torch.mul(mu_y, mu_y).addcmul_(mu_x, mu_x)  # mu_x^2 + mu_y^2
    prod = mu_x.mul_(mu_y)  # mu_x mu_y
    num = e_xy.sub_(prod).mul_(2).add_(c2).mul_(prod.mul_(2).add_(c1))
    den = e_ss.sub_(sq).add_(c2).mul_(sq.add_(c1))
    return num.div_(den)
