"""Argument checks shared by every module: one place, one wording.

Each check raises ``ValueError`` naming the argument and what was expected (shape, dtype,
range), or warns where an input is legal but almost surely a mistake. Nothing is clipped or
broadcast. Float round-off is not bad input: range checks allow ``ROUND_OFF * data_range``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch

LOG_2PI = math.log(2 * math.pi)  # the constant of every Gaussian log-density

ROUND_OFF = 1e-6  # relative tolerance of range checks: a blurred photo has values like -1.6e-17


def check_positive_int(value, name: str, minimum: int = 1) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) >= ``minimum``.

    Example:
        >>> check_positive_int(3, "epochs")
        >>> check_positive_int(0, "epochs")
        Traceback (most recent call last):
        ...
        ValueError: epochs must be a positive int, got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive int" if minimum == 1 else ("a non-negative int" if minimum == 0 else f"an int >= {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_positive(value, name: str) -> None:
    """Raise ValueError unless ``value`` is a finite real number > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_in_range(value, name: str, low: float, high: float) -> None:
    """Raise ValueError unless ``value`` is a real number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


def check_choice(value, name: str, choices: Iterable) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_tensor(x, name: str, ndim: int | None = None, floating: bool = False) -> None:
    """Raise ValueError unless ``x`` is a torch.Tensor (with ``ndim`` dims, of a floating dtype)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if ``x`` contains NaN or inf."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_points(x, name: str, dim: int | None = None) -> None:
    """Raise ValueError unless ``x`` is a tensor of shape (N, dim) (any width when ``dim`` is None)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        expected = f"(N, {dim})" if dim is not None else "(N, D)"
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {got}")


def check_range(x: torch.Tensor, name: str, low: float, high: float, hint: str = "") -> tuple[float, float]:
    """Raise ValueError if ``x`` contains NaN or inf, or values outside [low, high] beyond float round-off.

    The tolerance is ``ROUND_OFF * (high - low)``: a photograph blurred with
    ``scipy.ndimage.gaussian_filter`` has values like -1.6e-17, which are not an error.
    Values are never clipped. One read of ``x`` (min and max propagate NaN) checks both.

    Returns:
        ``(min, max)`` of ``x``, as floats, for a caller's further checks.

    Example:
        >>> check_range(torch.tensor([0.0, 0.5]), "x", 0.0, 1.0)
        (0.0, 0.5)
        >>> check_range(torch.tensor([0.0, float("nan")]), "x", 0.0, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: x contains NaN or inf
    """
    lo, hi = _min_max(x)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf")
    _check_bounds(name, lo, hi, low, high, hint)
    return lo, hi


def _check_bounds(name: str, lo: float, hi: float, low: float, high: float, hint: str = "") -> None:
    tol = ROUND_OFF * (high - low)
    if lo < low - tol or hi > high + tol:
        raise ValueError(f"{name} has values in [{lo:.4g}, {hi:.4g}], outside [{low:g}, {high:g}]" + hint)


def _min_max(x: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest value, read from the device at once (one synchronisation)."""
    lo, hi = torch.stack(torch.aminmax(x.detach())).tolist() if x.dtype != torch.bool else (0.0, 1.0)
    return float(lo), float(hi)


def check_images(images, name: str = "images", channels: tuple[int, ...] = (1, 3),
                 shape: tuple[int, int, int] | None = None, data_range: float = 1.0) -> None:
    """Raise ValueError unless ``images`` is a finite (N, C, H, W) tensor with N >= 1, C in ``channels``,
    (C, H, W) equal to ``shape`` when given, and values in [0, data_range] (up to round-off).

    Example:
        >>> check_images(torch.rand(2, 1, 28, 28), "x")
        >>> check_images(torch.rand(2, 28, 28), "x")
        Traceback (most recent call last):
        ...
        ValueError: x must have shape (N, 1 or 3, H, W), got (2, 28, 28)
    """
    check_tensor(images, name)
    if shape is not None and (images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape)):
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
    if images.ndim != 4 or images.shape[1] not in channels:
        allowed = " or ".join(map(str, channels))
        raise ValueError(f"{name} must have shape (N, {allowed}, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0): it must hold at least one image")
    if not images.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype (values in [0, {data_range:g}]), got {images.dtype}; "
                         "convert uint8 images with images.float() / 255")
    lo, hi = _min_max(images)  # min and max propagate NaN and inf: one read checks all three
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf")
    _check_bounds(name, lo, hi, 0.0, data_range)


def check_image_pair(preds, target, data_range: float) -> None:
    """Raise ValueError unless ``preds`` and ``target`` are equal-shape, non-empty, finite (N, C, H, W)
    batches with values in [0, data_range] (up to round-off).

    Warns:
        UserWarning: when both images span less than a tenth of ``data_range`` while fitting
            in [0, 1] (e.g. [0, 1] images with ``data_range=255``), which inflates PSNR by
            20 log10(data_range); the message says which ``data_range`` fits.
    """
    import warnings

    for name, x in (("preds", preds), ("target", target)):
        check_tensor(x, name)
        if x.ndim != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if preds.shape[0] == 0:
        raise ValueError("preds and target are empty (N = 0): they must hold at least one image")
    check_positive(data_range, "data_range")
    hint = "; rescale the images or pass the right data_range"
    high = -math.inf
    for name, x in (("preds", preds), ("target", target)):
        lo, hi = _min_max(x)  # min and max propagate NaN and inf: one read per tensor checks all three
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or inf")
        _check_bounds(name, lo, hi, 0.0, data_range, hint)
        high = max(high, hi)
    if data_range > 1 and high <= 1.0 + ROUND_OFF:
        warnings.warn(
            f"preds and target are all in [0, 1] but data_range={data_range:g}: the result treats them as "
            f"nearly black images on a 0..{data_range:g} scale; pass data_range=1.0 if they are [0, 1] images",
            UserWarning, stacklevel=3,
        )


def check_same_shape(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise ValueError unless two tensors have the same shape (nothing is broadcast)."""
    if x.shape != y.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}")


def check_finite_pair(x, y, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise ValueError unless ``x`` and ``y`` are finite tensors of the same shape."""
    for name, t in zip(names, (x, y), strict=True):
        check_tensor(t, name)
        check_finite(t, name)
    check_same_shape(x, y, names)


def as_float64(x, name: str) -> torch.Tensor:
    """A real, finite tensor or numpy array ``x`` as a float64 CPU tensor (the float64 policy of
    ``course_lib.runtime``: float64 work happens on the CPU).

    Raises:
        ValueError: for a non-tensor, a complex or a non-finite input.

    Example:
        >>> as_float64(np.ones(2, dtype=np.float32), "mu")
        tensor([1., 1.], dtype=torch.float64)
    """
    from course_lib.runtime import float64_cpu

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got a complex tensor")
    x = float64_cpu(x)
    check_finite(x, name)
    return x


def check_features(features, name: str, min_samples: int = 2) -> torch.Tensor:
    """Check an (N, F) feature matrix (tensor or numpy array) and return it as float64 on the CPU.

    Raises:
        ValueError: for a non-tensor, complex, non-2-D or non-finite input, or fewer than
            ``min_samples`` rows.
    """
    if isinstance(features, (torch.Tensor, np.ndarray)) and features.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(features.shape)}")
    x = as_float64(features, name)
    if x.shape[0] < min_samples:
        raise ValueError(f"{name} must hold at least {min_samples} samples, got {x.shape[0]}")
    return x


def check_feature_pair(real_features, fake_features, min_samples: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets checked by :func:`check_features`, of one width, as float64 CPU tensors."""
    real = check_features(real_features, "real_features", min_samples)
    fake = check_features(fake_features, "fake_features", min_samples)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features must have the same width, "
                         f"got {real.shape[1]} and {fake.shape[1]}")
    return real, fake
