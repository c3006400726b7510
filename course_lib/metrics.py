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
import torch.nn.functional as F

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
    The whole batch is filtered at once (no loop over images).

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
    mu_x, mu_y, var_x, var_y, cov = _local_statistics(preds, target, kernel_size, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c3 = c2 / 2
    sd_xy = (var_x * var_y).sqrt()
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    con = (2 * sd_xy + c2) / (var_x + var_y + c2)
    struct = (cov + c3) / (sd_xy + c3)
    # With C3 = C2 / 2 the product c * s simplifies to (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2).
    ssim_map = lum * (2 * cov + c2) / (var_x + var_y + c2)
    return {"luminance": lum, "contrast": con, "structure": struct, "ssim": ssim_map}


def ssim(
    preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean",
    kernel_size: int = 11, sigma: float = 1.5, k1: float = SSIM_K1, k2: float = SSIM_K2,
) -> torch.Tensor:
    """Structural similarity, book equation (ssim), averaged over the valid windows and the channels.

    Equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=L, channel_axis=0)`` per image, and torchmetrics'
    ``structural_similarity_index_measure`` *once its border is cropped* (torchmetrics reflect-pads
    the image and also averages the windows that hang over the border). Unlike Wang et al.'s MATLAB
    code, large images are not downsampled first.

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
    values = []
    for mu_x, mu_y, var_x, var_y, cov in _local_statistics_chunks(preds, target, kernel_size, sigma):
        ssim_map = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        values.append(ssim_map.mean(dim=(1, 2, 3)))
    values = torch.cat(values)
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


_CHUNK_BYTES = 8 * 2**20
_TILE = 16  # output columns per banded-matrix product: BLAS speed without the full matrix's wasted zeros


def _toeplitz(win: torch.Tensor, size: int) -> torch.Tensor:
    """The (size, size - k + 1) matrix T with T[j + i, j] = win[i]: ``row @ T`` is the valid filtering."""
    k = win.numel()
    band = torch.zeros(size, size - k + 1, dtype=win.dtype, device=win.device)
    cols = torch.arange(size - k + 1, device=win.device)
    for i in range(k):
        band[cols + i, cols] = win[i]
    return band


def _filter_last_dim(stack: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Valid 1-D filtering of the last dimension with ``win``, tile by tile.

    The row is cut into overlapping tiles of ``_TILE + k - 1`` values (``unfold``), each multiplied by
    one small banded matrix: float64 matrix products are fast BLAS calls, while PyTorch's float64
    convolution on the CPU has no fast kernel; tiles keep the matrix's zeros few.
    """
    k, size = win.numel(), stack.shape[-1]
    out_size = size - k + 1
    tile = min(_TILE, out_size)
    n_tiles = -(-out_size // tile)
    padded = F.pad(stack, (0, n_tiles * tile + k - 1 - size))  # zeros only feed outputs we crop
    # (..., n_tiles, tile + k - 1); contiguous, since a matmul on the strided view takes a very slow path
    windows = padded.unfold(-1, tile + k - 1, tile).contiguous()
    return (windows @ _toeplitz(win, tile + k - 1)).flatten(-2)[..., :out_size]


def _local_statistics_chunks(preds, target, kernel_size, sigma):
    """Yield, chunk of images by chunk, the Gaussian-weighted local mu_x, mu_y, sigma_x^2, sigma_y^2,
    sigma_xy on the valid windows, float64 on the CPU, each of shape (n, C, H - k + 1, W - k + 1).

    The separable filter is applied along W, then along H, to a chunk of about ``_CHUNK_BYTES`` of
    statistics at once, so that the work stays in the CPU's cache (on 32 colour 256x256 images, about
    twice as fast as the whole batch at once).
    """
    win = gaussian_window(kernel_size, sigma)  # float64 on the CPU, where the statistics are computed
    chunk = max(1, _CHUNK_BYTES // (5 * preds[0].numel() * 8))
    for start in range(0, len(preds), chunk):
        x, y = float64_cpu(preds[start:start + chunk]), float64_cpu(target[start:start + chunk])
        stack = torch.stack([x, y, x * x, y * y, x * y])  # (5, n, C, H, W): one pass filters all five
        stack = _filter_last_dim(stack, win)
        mu_x, mu_y, e_xx, e_yy, e_xy = _filter_last_dim(stack.transpose(-1, -2), win).transpose(-1, -2)
        var_x = (e_xx - mu_x**2).clamp_min(0)
        var_y = (e_yy - mu_y**2).clamp_min(0)
        yield mu_x, mu_y, var_x, var_y, e_xy - mu_x * mu_y


def _local_statistics(preds, target, kernel_size, sigma):
    """The statistics of ``_local_statistics_chunks`` for the whole batch."""
    chunks = list(_local_statistics_chunks(preds, target, kernel_size, sigma))
    return tuple(torch.cat(parts) for parts in zip(*chunks, strict=True))
