"""Image-quality metrics, functional API in the style of torchmetrics.functional.

Inputs are batches (N, C, H, W); each metric gives one value per image pair with
``reduction="none"``, or their mean.
"""

from __future__ import annotations

import math

import torch

REDUCTIONS = ("mean", "none")


def psnr(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio, book equation (psnr): 10 log10(MAX^2 / MSE), per image.

    MSE is the mean of squared differences over each image's C*H*W values. The mean over the
    batch is taken of the per-image PSNRs (in dB), never of the MSEs, so one bad image does
    not hide behind good ones. An image equal to its target has MSE 0 and PSNR +inf.

    Args:
        preds: images, shape (N, C, H, W), values in [0, data_range].
        target: reference images, same shape.
        data_range: MAX, the largest possible value (1.0 for [0, 1] images, 255 for uint8).
        reduction: ``"mean"`` (a scalar) or ``"none"`` (shape (N,)).

    Returns:
        PSNR in decibels, float64.

    Raises:
        ValueError: for different shapes, a non-4-D input, NaN/inf values, values outside
            [0, data_range], a non-positive ``data_range`` or an unknown ``reduction``.

    Example:
        >>> target = torch.zeros(1, 1, 2, 2); preds = torch.full((1, 1, 2, 2), 0.1)
        >>> psnr(preds, target, data_range=1.0)  # MSE = 0.01 -> 20 dB
        tensor(20.0000, dtype=torch.float64)
    """
    check_image_pair(preds, target, data_range)
    _check_reduction(reduction)
    diff = preds.double() - target.double()
    mse = diff.pow(2).flatten(1).mean(dim=1)
    values = 10 * torch.log10(data_range**2 / mse)
    return values if reduction == "none" else values.mean()


def check_image_pair(preds: torch.Tensor, target: torch.Tensor, data_range: float) -> None:
    """Raise ValueError unless ``preds`` and ``target`` are equal-shape finite (N, C, H, W)
    batches with values in [0, data_range]."""
    for name, x in (("preds", preds), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    for name, x in (("preds", preds), ("target", target)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > data_range:
            raise ValueError(
                f"{name} has values in [{low:.4g}, {high:.4g}], outside [0, data_range={data_range}]; "
                "rescale the images or pass the right data_range"
            )


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
