"""Where code runs and how reproducibly: device choice, seeding, quick mode, mixed precision.

Every chapter starts with ``device = get_device()`` and ``seed_everything(0)``.

The device and dtype policy of ``course_lib``, in one place:

- **Devices.** Every function that takes ``device`` accepts a ``str`` or a ``torch.device``
  (:func:`as_device`); ``None`` means "where the inputs are" for metrics and :func:`get_device`
  for training. Tensors a function builds are built on the device of its inputs.
- **float64 only on the CPU.** Apple's MPS has no float64, so every float64 step (FID's matrix
  square root, SSIM's and PSNR's accumulation, a classifier's features for FID) first moves its
  input to the CPU with :func:`float64_cpu`; such results are CPU float64 tensors. Everything
  else computes in the inputs' dtype on their device.
- **float32 where precision decides a result.** Mixed precision (:func:`autocast`, bfloat16 on
  CUDA) speeds up training, but a nearest-neighbour search or a running sum in bfloat16 gives
  wrong answers, so such code runs inside :func:`full_precision` whatever the autocast state.
- **No global side effects.** Seeded work inside the library uses its own ``torch.Generator``;
  a function that changes the thread count restores it, even on error (:func:`num_threads`).
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


def get_device(prefer: str | torch.device | None = None) -> torch.device:
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
    if isinstance(prefer, torch.device):
        prefer = prefer.type
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


def as_device(device: str | torch.device | None, default: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``: accepts ``"cpu"``, ``"cuda:1"``, ``torch.device(...)``;
    ``None`` gives ``default`` (itself ``None`` meaning :func:`get_device`).

    Raises:
        ValueError: if ``device`` is neither a str, a torch.device nor None, or names no device type.

    Example:
        >>> as_device("cpu")
        device(type='cpu')
    """
    if device is None:
        return get_device() if default is None else as_device(default)
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"device must name a device such as 'cpu' or 'cuda', got {device!r}") from error
    raise ValueError(f"device must be a str or torch.device, got {type(device).__name__}")


def float64_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` detached, on the CPU, in float64: the one way float64 work starts (MPS has none).

    Example:
        >>> float64_cpu(torch.ones(2)).dtype
        torch.float64
    """
    return x.detach().to("cpu").to(torch.float64)


def full_precision(device: torch.device | str):
    """A context that turns autocast off on ``device``'s type, so the code inside runs in the
    dtype of its inputs (float32), e.g. a nearest-code search or an EMA sum under bf16 training."""
    return torch.autocast(device_type=as_device(device).type, enabled=False)


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` (no change when ``n`` is None), and restore
    the previous count on exit, even when the block raises."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def describe_device(device: torch.device | str) -> str:
    """A one-line description of ``device`` for a notebook's first cell."""
    device = as_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) so that a run can be repeated.

    Args:
        seed: a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels
            (``torch.use_deterministic_algorithms(True)``, cuDNN's benchmark off, and
            ``CUBLAS_WORKSPACE_CONFIG`` set), so that a CUDA run repeats bit for bit, at some
            cost in speed. It stays on for the process; ``False`` leaves the settings as they are.

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
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic (PyTorch's reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)


def quick_mode() -> bool:
    """True when ``COURSE_QUICK=1``: CI and the tests shrink data and training.

    The book is built without it, so that it shows the results of real training.
    """
    return os.environ.get(QUICK_ENV, "0").strip().lower() in {"1", "true", "yes"}


def autocast(device: torch.device | str, enabled: bool = True):
    """Mixed precision where it pays: bfloat16 autocast on CUDA, a no-op elsewhere.

    bfloat16 keeps float32's exponent range, so no gradient scaler is needed.
    """
    device = as_device(device)
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
