"""A CPU tensor that plays a tensor on an accelerator, to test the float64 policy without one.

Apple's MPS has no float64, so ``course_lib`` must move a tensor to the CPU before any float64
step (``runtime.float64_cpu``). On a CPU-only machine a wrong ``x.double()`` goes unnoticed; a
``DeviceDouble`` records it instead: any float64 conversion, or ``.numpy()``, of a tensor that
was not first moved to the CPU with ``.cpu()`` / ``.to("cpu")``.
"""

from __future__ import annotations

import torch

VIOLATIONS: list[str] = []

_FLOAT64_NAMES = {"torch.float64", "torch.double", "torch.DoubleTensor"}


def _is_cpu(value) -> bool:
    return (isinstance(value, str) and value.split(":")[0] == "cpu") or (
        isinstance(value, torch.device) and value.type == "cpu")


def _moves_to_cpu(func, args, kwargs) -> bool:
    if func in (torch.Tensor.cpu,):
        return True
    if func is torch.Tensor.to:
        return any(_is_cpu(a) for a in args[1:]) or _is_cpu(kwargs.get("device"))
    return False


def _asks_float64(func, args, kwargs) -> bool:
    if func is torch.Tensor.double:
        return True
    values = list(args[1:]) + list(kwargs.values()) if func in (torch.Tensor.to, torch.Tensor.type) else [
        kwargs.get("dtype")]
    return any(v is torch.float64 or (isinstance(v, str) and v in _FLOAT64_NAMES) for v in values)


class DeviceDouble(torch.Tensor):
    """Behaves as a CPU tensor, but records float64 work done before a move to the CPU."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _moves_to_cpu(func, args, kwargs):
            with torch._C.DisableTorchFunctionSubclass():
                result = func(*args, **kwargs)
            return result.as_subclass(torch.Tensor) if isinstance(result, torch.Tensor) else result
        if _asks_float64(func, args, kwargs):
            VIOLATIONS.append(f"float64 on the device: {getattr(func, '__name__', func)}")
        if func is torch.Tensor.numpy:
            VIOLATIONS.append("numpy() of a device tensor")
        return super().__torch_function__(func, types, args, kwargs)


def on_device(x: torch.Tensor) -> DeviceDouble:
    """``x`` as a tensor that plays one on an accelerator."""
    return x.as_subclass(DeviceDouble)
