"""Where code runs and how reproducibly: device choice, seeding, quick mode, mixed precision.

Every chapter starts with ``device = get_device()`` and ``seed_everything(0)``.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings

import numpy as np
import torch

QUICK_ENV = "COURSE_QUICK"

PROGRESS_ENV = "COURSE_PROGRESS"

with warnings.catch_warnings():
    # Without ipywidgets tqdm.auto falls back to text bars (and warns in every notebook);
    # Colab and Jupyter with ipywidgets get widget bars.
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm as _auto_tqdm


def progress_bars() -> bool:
    """False when ``COURSE_PROGRESS=0``: the book build sets it, because a page is a record of
    the run, and each update of a text bar would become one more line of it."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


class tqdm(_auto_tqdm):
    """course_lib's progress bar: ``tqdm.auto`` (live in Jupyter and Colab), silent where
    :func:`progress_bars` is False. ``tqdm.write`` still prints."""

    def __init__(self, *args, **kwargs):
        if not progress_bars():
            kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the fastest available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: ``"cuda"``, ``"mps"`` or ``"cpu"`` to force a device; ``None`` picks
            automatically. The environment variable ``COURSE_DEVICE`` does the same.

    Returns:
        A ``torch.device`` (never a hard-coded ``cuda:0``).

    Raises:
        ValueError: if ``prefer`` names a device that this machine does not have.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    prefer = prefer or os.environ.get("COURSE_DEVICE") or None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"prefer must be one of {sorted(available)}, got {prefer!r}")
        if not available[prefer]:
            raise ValueError(f"prefer={prefer!r} but this machine has no {prefer} device")
        return torch.device(prefer)
    for name in ("cuda", "mps"):
        if available[name]:
            return torch.device(name)
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> str:
    """A one-line description of ``device`` for a notebook's first cell."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) so that a run can be repeated.

    Args:
        seed: a non-negative integer.

    Returns:
        A ``torch.Generator`` on the CPU seeded with ``seed``, for code that wants its
        own stream of random numbers.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.

    Example:
        >>> _ = seed_everything(0); a = torch.rand(2)
        >>> _ = seed_everything(0); b = torch.rand(2)
        >>> bool(torch.equal(a, b))
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def quick_mode() -> bool:
    """True when ``COURSE_QUICK=1``: CI and the tests shrink data and training.

    The book is built without it, so that it shows the results of real training.
    """
    return os.environ.get(QUICK_ENV, "0").strip().lower() in {"1", "true", "yes"}


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision where it pays: bfloat16 autocast on CUDA, a no-op elsewhere.

    bfloat16 keeps float32's exponent range, so no gradient scaler is needed.
    """
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
