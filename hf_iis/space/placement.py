"""Where the Space's model runs and in which precision: `--device` / `--dtype`, else the environment variables
HF_IIS_DEVICE / HF_IIS_DTYPE, checked before the model loads.

    placement("cuda", "bf16")      # (torch.device('cuda'), torch.bfloat16), or one ValueError naming the setting

A device the machine lacks is one line naming the setting and the devices there are (the inference layer's
`check_device`), at start-up, never torch's "Torch not compiled with CUDA enabled" at the first click.
"""

from __future__ import annotations

import os

import torch

from ..inference.devices import check_device, check_dtype

DEVICE_ENV, DTYPE_ENV = "HF_IIS_DEVICE", "HF_IIS_DTYPE"


def placement(device=None, dtype=None) -> tuple[torch.device | None, torch.dtype | None]:
    """(device, dtype) for the Space's pipeline: the arguments, else HF_IIS_DEVICE / HF_IIS_DTYPE, else None (the
    CPU, the dtype the checkpoint loads in). An empty setting counts as unset."""
    device_source = "--device" if device is not None else DEVICE_ENV
    dtype_source = "--dtype" if dtype is not None else DTYPE_ENV
    device = _setting(device, DEVICE_ENV)
    dtype = _setting(dtype, DTYPE_ENV)
    try:
        device = check_device(device)
    except ValueError as error:
        raise ValueError(f"{device_source}={device}: {error}") from None
    try:
        dtype = check_dtype(dtype)
    except ValueError as error:
        raise ValueError(f"{dtype_source}={dtype}: {error}") from None
    return device, dtype


def _setting(value, variable: str):
    if value is None:
        value = os.environ.get(variable)
    if isinstance(value, str):
        value = value.strip() or None
    return value
