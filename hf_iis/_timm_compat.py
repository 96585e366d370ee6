"""Import timm where torchvision cannot be imported.

timm imports torchvision at import time (``FrozenBatchNorm2d`` and its data transforms), but the backbones we use
never call into torchvision. PyPI's torchvision wheels are built against CUDA torch and cannot load next to the
CPU-only ``torch==2.13.0`` build this project pins ("operator torchvision::nms does not exist"), and a broken
torchvision also breaks ``import transformers``; so this project's environment has no torchvision (the Makefile
removes the one timm's metadata pulls in).

When torchvision is importable we use it untouched. Otherwise, for the duration of ``import timm`` only, we register
a stand-in ``torchvision`` whose ``ops.misc.FrozenBatchNorm2d`` is a real implementation and whose other names
(transform classes timm's data package refers to at import time) are inert placeholders. The stand-in is removed
afterwards, so ``import torchvision`` elsewhere still fails as it should, and transformers never sees it.
"""

from __future__ import annotations

import importlib
import sys
import types

import torch
from torch import nn

_STAND_IN_MODULES = (
    "torchvision",
    "torchvision.ops",
    "torchvision.ops.misc",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.transforms.v2",
    "torchvision.datasets",
)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, as ``torchvision.ops.misc.FrozenBatchNorm2d``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


class _Placeholder(type):
    """An inert class standing for any torchvision name; its attributes are placeholders too."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


def _placeholder_attribute(name: str) -> type:
    if name.startswith("__"):  # introspection (inspect, pickle) must see ordinary missing module attributes
        raise AttributeError(name)
    return _Placeholder(name, (), {})


def _stand_in_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__getattr__ = _placeholder_attribute  # module-level __getattr__ (PEP 562)
    return module


def _torchvision_importable() -> bool:
    try:
        importlib.import_module("torchvision")
        return True
    except (ImportError, RuntimeError, OSError):
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def import_timm() -> types.ModuleType:
    """Return the ``timm`` module (see the module docstring for the torchvision stand-in)."""
    if "timm" in sys.modules:
        return sys.modules["timm"]
    if _torchvision_importable():
        return importlib.import_module("timm")
    modules = {name: _stand_in_module(name) for name in _STAND_IN_MODULES}
    modules["torchvision.ops.misc"].FrozenBatchNorm2d = FrozenBatchNorm2d
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    sys.modules.update(modules)
    try:
        return importlib.import_module("timm")
    finally:
        for name in modules:
            sys.modules.pop(name, None)
