"""Training configuration: nested dataclasses loaded from YAML, overridden from the command line, saved with the run.

Overrides are `key=value` strings with dotted keys (`optim.lr=3e-4`, `data.batch_size=4`); values are parsed as
YAML (`true`, `1e-3`, `[a, b]`, `null`). Unknown keys raise `KeyError` naming the known ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelSection:
    """The model to train: a `SignedClickConfig` preset, the backbone, and the loss weights."""

    preset: str = "small"
    backbone: str = "efficientnet_lite0"
    pretrained_backbone: bool = True  # offline ImageNet weights for efficientnet_lite0 (timm hub otherwise)
    image_size: int = 320  # training crop side; with init_from, the model continues at this size
    init_from: str | None = None  # a save_pretrained folder to start from instead of a fresh model
    freeze_backbone_blocks: int | None = None  # freeze the stem + this many early backbone stages (None = train all)
    loss_weights: dict[str, float] = field(default_factory=lambda: {"bce": 1.0, "soft_iou": 1.0})
    # A frozen U²-Net(-p) saliency branch fused into the embedding (hf_iis.backbone_saliency); with init_from, a
    # checkpoint without one gets it added (its fusion layers start at zero, so training starts from that model).
    saliency_encoder: str | None = None  # "u2netp" | "u2net" | None
    saliency_features: list[str] = field(default_factory=lambda: ["maps", "decoder"])
    saliency_input_size: int = 256
    saliency_click_prior: bool = False  # the decoder also reads the salient components under the clicks
    saliency_onnx: str | None = None  # the published ONNX weights; None = hf_iis.u2net_weights lookup


@dataclass
class DataSection:
    """Where the images come from and how they are augmented and turned into click sets."""

    path: str | None = None  # parquet corpus folder (scripts/build_datasets.py --out)
    train_split: str = "train"
    val_split: str = "validation"
    streaming: bool = False
    shuffle_buffer: int = 256  # streaming only
    batch_size: int = 8  # images per process per micro-batch
    num_workers: int = 2
    masks_per_image: int = 1  # masks m drawn from M per image
    mask_sampling: str = "uniform"  # "uniform" (the seed: P(m) = 1/|M|) or "area" (P(m) ∝ |m|; see sampling.py)
    pairs_per_mask: int = 2  # K (positive, negative) click pairs per mask
    min_mask_pixels: int = 16  # after augmentation; smaller masks are not drawn
    max_masks_decoded: int | None = 8  # decode a uniform subset of at most this many masks per row (BSDS: ~80)
    # augmentation
    crop_prob: float = 0.5
    crop_min_area: float = 0.3  # fraction of the image area kept by a random crop
    crop_max_aspect: float = 1.5  # aspect-ratio jitter of the crop
    views: list[str] | None = None  # names from hf_iis.tta.VIEWS_BY_NAME; None = all of VIEW_ORDER
    view_prob: float = 0.5  # probability of a non-identity view (drawn uniformly among `views`)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    blur_prob: float = 0.1
    jitter_prob: float = 0.8


@dataclass
class OptimSection:
    lr: float = 1e-3  # neck + decoder
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100
    max_steps: int = 1500
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # "no" | "bf16" (CPU and GPU) | "fp16" (GPU)


@dataclass
class IterativeSection:
    """RITM-style iterative training: corrective clicks from the click simulator after the first prediction."""

    prob: float = 0.5  # per step
    min_clicks: int = 1
    max_clicks: int = 3


@dataclass
class TrainingConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    iterative: IterativeSection | None = field(default_factory=IterativeSection)
    output_dir: str = "runs/default"
    seed: int = 0
    save_every: int = 200  # optimizer steps between save_state checkpoints
    keep_checkpoints: int = 2
    eval_every: int = 300  # optimizer steps between validations (0 = only at the end)
    val_images: int = 80
    log_every: int = 10
    max_minutes: float | None = None  # stop early (with the final save) after this much training time
    stop_at_step: int | None = None  # end this leg at this step (final save), keeping optim.max_steps' schedule
    num_threads: int | None = None  # torch intra-op threads per process (None = torch's default)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _from_dict(cls, values: dict[str, Any], prefix: str = ""):
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise KeyError(f"unknown config key {prefix + key!r}; known keys: {sorted(prefix + n for n in names)}")
        sub = _section_type(names[key])
        if sub is not None and isinstance(value, dict):
            kwargs[key] = _from_dict(sub, value, prefix + key + ".")
        else:
            kwargs[key] = _coerce(names[key].type, value, prefix + key)
    return cls(**kwargs)


def _coerce(annotation: str, value: Any, key: str) -> Any:
    """YAML 1.1 reads `3e-4` as a string and `no` as False: convert to the field's declared scalar type."""
    kinds = [part.strip() for part in str(annotation).split("|")]
    if isinstance(value, bool) and "str" in kinds and "bool" not in kinds:
        return "yes" if value else "no"  # mixed_precision=no on the command line
    if value is None or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return value
    try:
        if "float" in kinds and not isinstance(value, float):
            return float(value)
        if "int" in kinds and isinstance(value, str):
            return int(value)
    except ValueError as error:
        raise ValueError(f"config key {key!r} expects {annotation}, got {value!r}") from error
    return value


_SECTIONS = {"model": ModelSection, "data": DataSection, "optim": OptimSection, "iterative": IterativeSection}


def _section_type(f: dataclasses.Field):
    return _SECTIONS.get(f.name)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as YAML) to a nested dict, in place; returns it."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = values
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[parts[-1]] = yaml.safe_load(raw)
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
    """Defaults < YAML file < overrides. A YAML `iterative: null` turns iterative training off."""
    values: dict[str, Any] = {}
    if path is not None:
        values = yaml.safe_load(Path(path).read_text()) or {}
    apply_overrides(values, overrides or [])
    return _from_dict(TrainingConfig, values)
