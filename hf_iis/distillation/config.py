"""Distillation settings: one flat dataclass read from YAML (configs/distill_student.yaml), overridden by
`key=value` strings (values parsed as YAML; dotted keys reach into the dict fields, e.g. `student.embed_dim=64`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DistillConfig:
    cache: str | None = None  # the teacher-target cache folder (scripts/distill.py cache --out)
    output_dir: str = "runs/student"
    preset: str = "lite0"  # SignedClickStudentConfig.from_preset name
    student: dict[str, Any] = field(default_factory=dict)  # config overrides, e.g. {embed_dim: 64, stride: 8}
    init_from: str | None = None  # a student folder to continue from instead of a fresh model
    backbone_from: str | None = None  # a teacher folder whose (same-architecture) image backbone seeds a fresh student
    batch_size: int = 8  # images per process per step
    views: list[str] | None = None  # D4 view names for augmentation (None = all eight)
    view_prob: float = 0.5
    lr: float = 1e-3  # neck, embeddings and heads
    backbone_lr: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 3000
    max_grad_norm: float = 1.0
    loss_weights: dict[str, float] = field(default_factory=lambda: {"bce": 1.0, "soft_iou": 0.5})
    sequence_weight: float = 0.5  # weight of the click-sequence (naive-Bayes) term against the single clicks
    mixed_precision: str = "no"
    save_every_minutes: float = 5.0  # checkpoint (accelerate save_state) at most this long apart; 0 = off
    save_every: int = 0  # and / or every this many steps; 0 = off
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    num_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def load_distill_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DistillConfig:
    """Defaults < YAML file < overrides, then checked (`validate_distill_config`). Unknown keys raise `KeyError`
    naming the known ones; a missing, malformed or non-mapping file and out-of-range values raise ValueError."""
    from ..training.config import parse_override_value, read_yaml_mapping

    values: dict[str, Any] = read_yaml_mapping(path, "config") if path is not None else {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = values
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = parse_override_value(item, raw)
    known = {f.name: f for f in dataclasses.fields(DistillConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise KeyError(f"unknown distillation config keys {unknown}; known keys: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        kinds = str(known[name].type)
        if name == "mixed_precision" and value is False:
            value = "no"  # YAML 1.1 reads `no` as False
        if isinstance(value, str) and ("float" in kinds or "int" in kinds) and "str" not in kinds:
            try:
                value = float(value) if "float" in kinds else int(value)  # YAML 1.1 reads 3e-4 as a string
            except ValueError:
                raise ValueError(f"config key {name!r} expects {kinds}, got {value!r}") from None
        kwargs[name] = value
    cfg = DistillConfig(**kwargs)
    validate_distill_config(cfg)
    return cfg


def validate_distill_config(cfg: DistillConfig) -> None:
    """ValueError naming the first setting of the wrong type or out of its range."""
    def number(key: str, low: float, allow_none: bool = False) -> None:
        value = getattr(cfg, key)
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise ValueError(f"config key {key!r} must be a number >= {low}, got {value!r}")

    for key in ("batch_size", "max_steps", "keep_checkpoints", "log_every"):
        number(key, 1)
    for key in ("lr", "backbone_lr", "weight_decay", "warmup_steps", "max_grad_norm", "sequence_weight",
                "save_every_minutes", "save_every"):
        number(key, 0)
    number("num_threads", 1, allow_none=True)
    if isinstance(cfg.view_prob, bool) or not isinstance(cfg.view_prob, int | float) or not 0 <= cfg.view_prob <= 1:
        raise ValueError(f"config key 'view_prob' must be a probability in [0, 1], got {cfg.view_prob!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ValueError(f"config key 'seed' must be an integer, got {cfg.seed!r}")
    if cfg.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"config key 'mixed_precision' must be no, bf16 or fp16, got {cfg.mixed_precision!r}")
    for key in ("student", "loss_weights"):
        if not isinstance(getattr(cfg, key), dict):
            raise ValueError(f"config key {key!r} must be a mapping, got {getattr(cfg, key)!r}")
    for key in ("cache", "output_dir", "preset", "init_from", "backbone_from"):
        value = getattr(cfg, key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
