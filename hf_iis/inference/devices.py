"""Devices and precision for the predictors and the pipeline: `device=` / `dtype=` checked up front, in one line.

    check_device("cuda")           # ValueError on a machine without CUDA, naming the devices it has
    check_dtype("bf16")            # torch.bfloat16
    precision(model)               # the autocast context a reduced-precision model runs its passes under

A reduced-precision model (bfloat16, float16) keeps its weights in that dtype and runs every encoder and decoder
pass under `torch.autocast` at that dtype: the click encodings, view maps and triangulation sums are built in float32
(exact pixel coordinates, sums over thousands of maps) and autocast casts them where they meet the weights. The
results come back as float32 maps.
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
ACCEPTED_DTYPES = "torch.float32, torch.bfloat16 or torch.float16 (or 'float32', 'bfloat16', 'float16')"


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        devices += [f"xpu:{i}" for i in range(xpu.device_count())]
    return devices


def check_device(device) -> torch.device | None:
    """`device` (None, an int GPU index, 'cpu', 'cuda', 'cuda:1', 'mps', a torch.device) as a torch.device that
    exists on this machine; None stays None. Anything else is one ValueError naming the devices there are (never
    torch's "Torch not compiled with CUDA enabled" at the first tensor move)."""
    if device is None:
        return None
    available = available_devices()
    if isinstance(device, int) and not isinstance(device, bool) and device == -1:  # transformers: -1 is the CPU
        return torch.device("cpu")
    try:
        if isinstance(device, bool):
            raise TypeError
        resolved = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; available here: {', '.join(available)}") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.index is None:
        present = any(name == resolved.type or name.startswith(f"{resolved.type}:") for name in available)
    else:
        present = str(resolved) in available
    if not present:
        raise ValueError(f"device {device!r} is not available on this machine; available: {', '.join(available)}")
    return resolved


def check_dtype(dtype) -> torch.dtype | None:
    """`dtype` (a torch dtype or its name; None or 'auto' = leave the model as loaded) as a torch.dtype."""
    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        return None
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.lower().removeprefix("torch.")]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    raise ValueError(f"unsupported dtype {dtype!r}; use {ACCEPTED_DTYPES}")


def place_model(model, device=None, dtype=None):
    """`model` moved to `device` and cast to `dtype` (both checked first; None leaves either as it is)."""
    device, dtype = check_device(device), check_dtype(dtype)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def model_dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype


def check_model_dtype(model) -> torch.dtype:
    """The model's dtype, refused with one line when it is not one the predictors run."""
    dtype = model_dtype(model)
    if dtype not in DTYPES.values():
        raise ValueError(f"hf_iis models run in {ACCEPTED_DTYPES}; this one is in {dtype}")
    return dtype


def precision(model) -> contextlib.AbstractContextManager:
    """`torch.autocast` at the model's dtype for a reduced-precision model; a no-op context for float32."""
    dtype = model_dtype(model)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=next(model.parameters()).device.type, dtype=dtype)
