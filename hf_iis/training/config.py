"""Training configuration: nested dataclasses loaded from YAML, overridden from the command line, saved with the run.

Overrides are `key=value` strings with dotted keys (`optim.lr=3e-4`, `data.batch_size=4`, `data.augment.view_prob=0.8`);
values are parsed as YAML (`true`, `1e-3`, `[a, b]`, `null`). Unknown keys raise `KeyError` naming the known ones.

One source of truth for each setting:
  * the augmentation is `data.augment` (an `AugmentParams`); run configs written before it was nested had its fields
    flat under `data` (`data.view_prob`): such files load with the same meaning (`migrate_legacy_keys` moves every
    `LEGACY_KEYS` entry to its new place) and such override paths are rewritten the same way, with a warning;
  * the loss weights live in the model config (`SignedClickConfig.loss_*_weight`): `model.loss_weights`, when set,
    is written into it once, when the model is built (`hf_iis.training.factory.build_model`); null keeps the model
    config's (the preset's, or the `init_from` checkpoint's);
  * the input size and pixel normalisation are the model config's / image processor's (`hf_iis.training.augment.
    InputFormat`), never a field here.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)


@dataclass
class AugmentParams:
    """`data.augment`: what the augmentation (`hf_iis.training.augment.augment`) may do."""

    crop_prob: float = 0.5
    crop_min_area: float = 0.3  # fraction of the image area kept by a random crop
    crop_max_aspect: float = 1.5  # aspect-ratio jitter of the crop
    views: list[str] | None = None  # names from hf_iis.scaling.tta.VIEWS_BY_NAME; None = all of VIEW_ORDER
    view_prob: float = 0.5  # probability of a non-identity view (drawn uniformly among `views`)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    blur_prob: float = 0.1
    jitter_prob: float = 0.8
    # object-box crops, the views zoom-in inference sees (hf_iis.scaling.zoom_geometry): the box of a random mask,
    # widened by a margin drawn uniformly from object_crop_margin on each side, at least object_crop_min_size pixels
    # (the photo's side when smaller), kept inside the photo; drawn before (and instead of) the random crop
    object_crop_prob: float = 0.0
    object_crop_margin: tuple[float, float] = (0.1, 0.8)
    object_crop_min_size: int = 320

    def __post_init__(self) -> None:
        if isinstance(self.object_crop_margin, list):  # as YAML and JSON give it back: the same setting
            self.object_crop_margin = tuple(self.object_crop_margin)

    @classmethod
    def no_augmentation(cls) -> AugmentParams:
        return cls(crop_prob=0.0, view_prob=0.0, jitter_prob=0.0, blur_prob=0.0)


@dataclass
class ModelSection:
    """The model to train: a `SignedClickConfig` preset or a checkpoint, the backbone, the saliency branch."""

    preset: str = "small"
    backbone: str = "efficientnet_lite0"
    pretrained_backbone: bool = True  # offline ImageNet weights for efficientnet_lite0 (timm hub otherwise)
    image_size: int = 320  # training crop side; with init_from, the model continues at this size
    init_from: str | None = None  # a save_pretrained folder to start from instead of a fresh model
    freeze_backbone_blocks: int | None = None  # freeze the stem + this many early backbone stages (None = train all)
    freeze_batchnorm_stats: bool = False  # keep every BatchNorm running statistic (continuing a trained model)
    # Written into the model config's loss_*_weight when the model is built (unnamed terms get 0); the objective
    # reads the model config only. None: keep the model config's (preset: bce 1 + soft_iou 1; init_from: its own).
    loss_weights: dict[str, float] | None = None
    # A frozen U²-Net(-p) saliency branch fused into the embedding (hf_iis.backbones.saliency); with init_from, a
    # checkpoint without one gets it added (its fusion layers start at zero, so training starts from that model).
    saliency_encoder: str | None = None  # "u2netp" | "u2net" | None
    saliency_features: list[str] = field(default_factory=lambda: ["maps", "decoder"])
    saliency_input_size: int = 256
    saliency_click_prior: bool = False  # the decoder also reads the salient components under the clicks
    saliency_onnx: str | None = None  # the published ONNX weights; None = hf_iis.backbones.u2net_weights lookup


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
    min_mask_pixels: int = 16  # after augmentation; smaller masks are not drawn (nor kept by a crop)
    max_masks_decoded: int | None = 8  # decode a uniform subset of at most this many masks per row (BSDS: ~80)
    augment: AugmentParams = field(default_factory=AugmentParams)


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


LEGACY_KEYS: dict[str, str] = {f"data.{f.name}": f"data.augment.{f.name}" for f in dataclasses.fields(AugmentParams)}
"""Old (flat) key -> new key. Run configs saved before `data.augment` existed use the old keys."""


def migrate_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Move the old flat augmentation keys (`data.view_prob`) to `data.augment` in a raw config dict, in place.

    Raises:
        ValueError: if one file sets both the old and the new key to different values.
    """
    data = values.get("data")
    if not isinstance(data, dict):
        return values
    moved = [name for name in list(data) if f"data.{name}" in LEGACY_KEYS]
    if not moved:
        return values
    augment = data.get("augment")
    if augment is None:
        augment = data["augment"] = {}
    if not isinstance(augment, dict):
        raise ValueError(f"data.augment must be a mapping, got {augment!r}")
    for name in moved:
        value = data.pop(name)
        if name in augment and augment[name] != value:
            raise ValueError(f"config sets both data.{name}={value!r} (old key) and data.augment.{name}="
                             f"{augment[name]!r}: keep only data.augment.{name}")
        augment[name] = value
    return values


def _from_dict(cls, values: dict[str, Any], prefix: str = ""):
    names = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            hint = f" (moved to {LEGACY_KEYS[prefix + key]!r})" if prefix + key in LEGACY_KEYS else ""
            raise KeyError(f"unknown config key {prefix + key!r}{hint}; known keys: "
                           f"{sorted(prefix + n for n in names)}")
        sub, optional = _section_type(hints[key])
        if sub is not None and isinstance(value, dict):
            kwargs[key] = _from_dict(sub, value, prefix + key + ".")
        elif sub is not None and value is None and not optional:
            raise ValueError(f"config section {prefix + key!r} cannot be null")
        elif sub is not None and value is not None:
            raise ValueError(f"config section {prefix + key!r} must be a mapping of its keys, got {value!r}")
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


def _section_type(hint: Any) -> tuple[type | None, bool]:
    """(the dataclass a field holds, or None; whether it may be None)."""
    options = typing.get_args(hint) or (hint,)
    sections = [t for t in options if dataclasses.is_dataclass(t)]
    return (sections[0] if sections else None), type(None) in options


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as YAML) to a nested dict, in place; returns it.

    An old key (`LEGACY_KEYS`, e.g. `data.view_prob`) is applied to its new place (`data.augment.view_prob`), with
    a warning.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key in LEGACY_KEYS:
            logger.warning("override %s: the key is now %s", key, LEGACY_KEYS[key])
            key = LEGACY_KEYS[key]
        parts = key.split(".")
        node = values
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = parse_override_value(item, raw)
    return values


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file is `{}`); a missing file, a folder, a binary or malformed file
    or a YAML list / scalar is an error naming the file and the accepted form."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a YAML file (e.g. configs/default.yaml)")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found; give a YAML file (e.g. configs/default.yaml)")
    try:
        values = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not a text file; give a YAML file of key: value lines") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{what} {path} is not valid YAML{at}: {problem}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{what} {path} must be a YAML mapping of key: value lines, not a {type(values).__name__}")
    return values


def parse_override_value(item: str, raw: str) -> Any:
    """An override's value, parsed as YAML; malformed YAML is a ValueError naming the override."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ValueError(f"override {item!r}: the value is not valid YAML (quote it: key='text')") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
    """Defaults < YAML file < overrides, then checked (`validate_config`). A YAML `iterative: null` turns iterative
    training off.

    Old-style files (flat augmentation keys under `data`) load with the same meaning, see `migrate_legacy_keys`.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = read_yaml_mapping(path, "config")
    migrate_legacy_keys(values)
    apply_overrides(values, overrides or [])
    migrate_legacy_keys(values)  # an override that set a whole old-style `data` mapping
    cfg = _from_dict(TrainingConfig, values)
    validate_config(cfg)
    return cfg


def _at_least(key: str, value: Any, low: float, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ValueError(f"config key {key!r} must be a number >= {low}, got {value!r}")


def _probability(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"config key {key!r} must be a probability in [0, 1], got {value!r}")


def validate_config(cfg: TrainingConfig) -> None:
    """ValueError naming the first setting out of its range (checked before a run writes anything)."""
    o, d, m = cfg.optim, cfg.data, cfg.model
    for key, value, low in (("optim.max_steps", o.max_steps, 1), ("optim.grad_accum", o.grad_accum, 1),
                            ("optim.warmup_steps", o.warmup_steps, 0), ("optim.lr", o.lr, 0),
                            ("optim.backbone_lr", o.backbone_lr, 0), ("optim.weight_decay", o.weight_decay, 0),
                            ("optim.max_grad_norm", o.max_grad_norm, 0), ("data.batch_size", d.batch_size, 1),
                            ("data.num_workers", d.num_workers, 0), ("data.masks_per_image", d.masks_per_image, 1),
                            ("data.pairs_per_mask", d.pairs_per_mask, 1),
                            ("data.min_mask_pixels", d.min_mask_pixels, 1),
                            ("data.shuffle_buffer", d.shuffle_buffer, 1), ("model.image_size", m.image_size, 32),
                            ("save_every", cfg.save_every, 0), ("eval_every", cfg.eval_every, 0),
                            ("keep_checkpoints", cfg.keep_checkpoints, 1), ("val_images", cfg.val_images, 0),
                            ("log_every", cfg.log_every, 1)):
        _at_least(key, value, low)
    _at_least("data.max_masks_decoded", d.max_masks_decoded, 1, allow_none=True)
    _at_least("stop_at_step", cfg.stop_at_step, 1, allow_none=True)
    _at_least("num_threads", cfg.num_threads, 1, allow_none=True)
    _at_least("max_minutes", cfg.max_minutes, 0, allow_none=True)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ValueError(f"config key 'seed' must be an integer, got {cfg.seed!r}")
    if o.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"config key 'optim.mixed_precision' must be no, bf16 or fp16, got {o.mixed_precision!r}")
    if d.mask_sampling not in ("uniform", "area"):
        raise ValueError(f"config key 'data.mask_sampling' must be uniform or area, got {d.mask_sampling!r}")
    a = d.augment
    for name in ("crop_prob", "view_prob", "blur_prob", "jitter_prob", "crop_min_area", "object_crop_prob"):
        _probability(f"data.augment.{name}", getattr(a, name))
    margin = a.object_crop_margin
    if (not isinstance(margin, (list, tuple)) or len(margin) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in margin)
            or not 0 <= margin[0] <= margin[1] <= 2):
        raise ValueError("config key 'data.augment.object_crop_margin' must be [low, high] with "
                         f"0 <= low <= high <= 2, got {margin!r}")
    _at_least("data.augment.object_crop_min_size", a.object_crop_min_size, 16)
    if cfg.iterative is not None:
        it = cfg.iterative
        _probability("iterative.prob", it.prob)
        _at_least("iterative.min_clicks", it.min_clicks, 1)
        _at_least("iterative.max_clicks", it.max_clicks, it.min_clicks)
    for key, value in (("output_dir", cfg.output_dir), ("data.path", d.path)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a path string, got {value!r}")


def check_run_paths(cfg: TrainingConfig, needs_data: bool = True) -> None:
    """The run folder can be made (no file in the way), `model.init_from` (if set) is a checkpoint folder and
    `data.path` holds the train split's parquet shards; checked before a run writes anything (config.yaml too)."""
    from ..cli_checks import check_output_dir

    check_output_dir(cfg.output_dir, "output_dir")
    init = cfg.model.init_from
    # local folders only: a missing one would otherwise reach transformers as a hub id (a network lookup, then a
    # traceback); an existing one gets the loader's own checks (config.json, safetensors weights)
    if init is not None:
        from ..checkpoint_paths import resolve_checkpoint

        if not Path(init).exists():
            raise FileNotFoundError(f"model.init_from {init}: not found; give a checkpoint folder (save_pretrained's "
                                    "config.json + model.safetensors, e.g. hf_iis/checkpoints/default or a run's "
                                    "final/)")
        try:
            resolve_checkpoint(init)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"model.init_from {init}: {error}") from None
    if not needs_data:
        return
    if cfg.data.path is None:
        raise ValueError("set data.path (the parquet corpus folder, e.g. --data data_cache/corpus)")
    data = Path(cfg.data.path)
    if not data.is_dir() or not any(data.glob(f"{cfg.data.train_split}-*.parquet")):
        what = "is not a folder" if data.exists() and not data.is_dir() else \
            f"has no {cfg.data.train_split}-*.parquet shards" if data.is_dir() else "not found"
        raise FileNotFoundError(f"data.path {data} {what}: build the corpus first with `python "
                                f"scripts/build_datasets.py --data-root <data folder> --out {data}` (README, 'Data')")


def check_resume_target(resume: bool | str | Path) -> None:
    """`resume` = a checkpoint folder must hold `trainer_state.json` (True = the run's latest, which may be none)."""
    if resume is True or not resume:
        return
    if not (Path(resume) / "trainer_state.json").is_file():
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no trainer_state.json); give "
                                "<output_dir>/checkpoints/step_N, or --resume alone for the latest")
