"""The public entry point of training, `train(cfg)`: one code path for 1 CPU process, N gloo processes, multi-GPU,
multi-node and FSDP (the launch configuration decides; see `trainer.py`).

The work is done by `hf_iis.training.trainer.Trainer` (resume, epochs, steps, validation, checkpoints) and the
builders of `hf_iis.training.factory` (model, image processor, optimizer, schedule, transform), re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import TrainingConfig
from .factory import (
    add_saliency_branch,
    build_model,
    build_optimizer,
    build_transform,
    cosine_with_warmup,
    grow_model,
    image_processor_for,
    input_format_for,
)
from .trainer import Trainer

__all__ = [
    "Trainer",
    "add_saliency_branch",
    "build_model",
    "build_optimizer",
    "build_transform",
    "cosine_with_warmup",
    "grow_model",
    "image_processor_for",
    "input_format_for",
    "train",
]


def train(
    cfg: TrainingConfig,
    resume: bool | str | Path = False,
    progress: bool = True,
    train_dataset=None,
    val_dataset=None,
    crash_at_step: int | None = None,
) -> dict[str, Any]:
    """Train per `cfg`; `resume=True` continues from the latest checkpoint of `cfg.output_dir` (or a given folder).

    `train_dataset` / `val_dataset` (datasets objects) replace loading `cfg.data.path` (tests, notebooks).
    `crash_at_step` (tests) returns right after that step's checkpoint, with no final save, like a killed run.

    Returns a summary: final step, last validation, skip counts, seconds per step, run folder.
    """
    trainer = Trainer(cfg, train_dataset=train_dataset, val_dataset=val_dataset, progress=progress)
    if resume:
        trainer.resume(resume)
    return trainer.fit(crash_at_step=crash_at_step)
