"""The trainer: one run (or one leg of a run) on accelerate, in named steps.

    Trainer(cfg)      accelerator, model, objective, optimizer, schedule and this rank's data stream
      .resume()       continue a checkpoint: weights, optimizer, schedule, RNG states, data position, best score
      .fit()          the validation set, then run_epoch() until the schedule, `stop_at_step` or the time budget
                      ends, then a last validate() and save()
      .run_epoch()    the steps of the data stream's current epoch
      .step()         one optimizer step: `grad_accum` micro-batches, gradient clipping, optimizer + schedule
      .validate()     main process: mIoU@1 on the validation set, best/ when it improves, final/ always
      .save()         collective, atomic accelerate checkpoint: checkpoints/step_<N>

The launch configuration (configs/accelerate/*.yaml) decides how many processes run and where; the trainer only asks
the `Accelerator` for its rank and world size. Each rank reads its own data shard (`data.BatchStream`), gradients
are averaged by the DDP/FSDP wrapper, checkpoints are collective and atomic (`checkpoint.py`).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .augment import InputFormat
from .checkpoint import atomic_save_pretrained, latest_checkpoint, read_json, save_checkpoint
from .collate import SKIP_REASONS
from .config import TrainingConfig, check_run_paths, validate_config
from .data import BatchStream, load_split
from .factory import (
    build_model,
    build_optimizer,
    build_transform,
    cosine_with_warmup,
    image_processor_for,
    saliency_stretched_size,
)
from .objective import SignedClickObjective
from .teardown import finish_run
from .tracking import JSONLTracker
from .validation import ValidationSet, build_validation_set, evaluate_miou_at_1

MODEL_INPUTS = ("pixel_values", "points", "labels", "image_index", "target_masks", "target_valid")
FRAME_INPUTS = ("saliency_pixel_values", "saliency_boxes")  # present only for the stretched saliency frame


class Trainer:
    """Train per `cfg`; `train_dataset` / `val_dataset` (datasets objects) replace loading `cfg.data.path`."""

    def __init__(self, cfg: TrainingConfig, train_dataset=None, val_dataset=None, progress: bool = True) -> None:
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        # every setting and path is checked before anything is written (config.yaml, the run folder)
        validate_config(cfg)
        check_run_paths(cfg, needs_data=train_dataset is None)
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        self.cfg, self.progress, self.val_dataset = cfg, progress, val_dataset
        self.run_dir = Path(cfg.output_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.accelerator = acc = Accelerator(
            mixed_precision=cfg.optim.mixed_precision,
            log_with=[JSONLTracker(self.run_dir / "log.jsonl")],
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), automatic_checkpoint_naming=False),
        )
        self.rank, self.world = acc.process_index, acc.num_processes
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "config.yaml")
        set_seed(cfg.seed)

        model = build_model(cfg)
        self.processor = image_processor_for(model.config)  # saved with every export; its normalisation trains
        self.input_format = InputFormat.of_processor(self.processor)
        optimizer = build_optimizer(model, cfg)
        self.scheduler = cosine_with_warmup(optimizer, cfg.optim.warmup_steps, cfg.optim.max_steps)
        self.objective, self.optimizer = acc.prepare(SignedClickObjective(model), optimizer)
        acc.register_for_checkpointing(self.scheduler)

        if train_dataset is None:
            train_dataset = load_split(cfg.data.path, cfg.data.train_split, streaming=cfg.data.streaming)
        transform = build_transform(cfg, self.input_format, model.config)
        self.stream = BatchStream(train_dataset, transform, cfg.data.batch_size,
                                  cfg.data.num_workers, cfg.seed, self.rank, self.world, cfg.data.shuffle_buffer)

        self.global_step, self.best = 0, -1.0
        self.skipped = np.zeros(len(SKIP_REASONS), dtype=np.int64)
        self.last_val: dict[str, float] = {}
        self.valset: ValidationSet | None = None
        self._window: dict[str, list[float]] = {}
        self._bar = None
        self._t_start, self._steps_done = time.time(), 0

    @property
    def model(self):
        """The unwrapped `SignedClickModel`."""
        return self.accelerator.unwrap_model(self.objective).model

    # ----------------------------------------------------------------------------------------------- resume
    def resume(self, checkpoint: bool | str | Path = True) -> bool:
        """Continue `checkpoint` (True: the latest under `<run>/checkpoints`); False when there is none."""
        acc = self.accelerator
        ckpt = latest_checkpoint(self.ckpt_root) if checkpoint is True else Path(checkpoint)
        if ckpt is None:
            acc.print(f"no checkpoint under {self.ckpt_root}: starting from scratch")
            return False
        acc.load_state(str(ckpt))
        state = read_json(ckpt / "trainer_state.json")
        self.global_step, self.best = int(state["step"]), float(state.get("best", -1.0))
        self.skipped = np.asarray(state.get("skipped", self.skipped.tolist()), dtype=np.int64)
        self.last_val = state.get("last_val", {})
        data_file = ckpt / f"data_state_{self.rank}.json"
        self.stream.load_state(read_json(data_file) if data_file.exists() else state["data_state"])
        # load_state does not advance accelerate's checkpoint counter: without this the next save_state fails
        acc.project_configuration.iteration = self.global_step + 1
        acc.print(f"resumed from {ckpt} at step {self.global_step}")
        return True

    # ----------------------------------------------------------------------------------------------- fit
    def fit(self, crash_at_step: int | None = None) -> dict[str, Any]:
        """Train to the end of this leg; returns a summary (final step, last validation, skip counts, seconds per
        step, run folder). `crash_at_step` (tests) returns right after that step's checkpoint, with no final save,
        like a killed run."""
        cfg, acc = self.cfg, self.accelerator
        acc.init_trackers("train", config=_flat(cfg.to_dict()))
        self.valset = self._validation_set()
        if self.progress and acc.is_local_main_process:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=cfg.optim.max_steps, initial=self.global_step, desc="train", dynamic_ncols=True)
        self.objective.train()
        self._t_start, self._steps_done = time.time(), 0
        reason = None
        while reason is None:
            reason = self.run_epoch(crash_at_step)
        if self._bar is not None:
            self._bar.close()
        if reason == "crashed":
            self._finish()
            return {"step": self.global_step, "crashed": True, "run_dir": str(self.run_dir)}
        sec_per_step = (time.time() - self._t_start) / max(1, self._steps_done)
        self.validate()
        self.save()
        return self._summary(sec_per_step)

    def run_epoch(self, crash_at_step: int | None = None) -> str | None:
        """Steps until one of them reads into the next data epoch (the stream learns that an epoch is over by
        reading past it; that step ends this epoch). Returns None then, or why the leg ends: "done"
        (optim.max_steps), "stopped" (stop_at_step), "time" (max_minutes), "crashed" (`crash_at_step`)."""
        epoch = self.stream.epoch
        while self.stream.epoch == epoch:
            if self.global_step >= self.cfg.optim.max_steps:
                return "done"
            self.step()
            reason = self._after_step(crash_at_step)
            if reason is not None:
                return reason
        return None

    def step(self) -> None:
        """One optimizer step over `grad_accum` micro-batches (gradients synchronised on the last one)."""
        cfg, acc = self.cfg, self.accelerator
        it_cfg = cfg.iterative
        accum = max(1, cfg.optim.grad_accum)
        for micro in range(accum):
            batch = next(self.stream)
            self.skipped += batch["skipped"].numpy()
            rng = np.random.default_rng([cfg.seed, self.global_step, micro, self.rank])
            rounds = 0
            if it_cfg is not None and it_cfg.prob > 0 and rng.random() < it_cfg.prob:
                rounds = int(rng.integers(it_cfg.min_clicks, it_cfg.max_clicks + 1))
            with acc.no_sync(self.objective) if micro < accum - 1 else nullcontext():
                if batch["pixel_values"].shape[0] == 0:  # every row bad: keep the collective in step
                    out = {"loss": sum(p.sum() for p in self.objective.parameters()) * 0.0}
                else:
                    inputs = {k: batch[k].to(acc.device) for k in MODEL_INPUTS + FRAME_INPUTS if k in batch}
                    out = self.objective(**inputs, corrective_clicks=rounds)
                acc.backward(out["loss"] / accum)
            for key, value in out.items():
                self._window.setdefault(key, []).append(float(value.detach()) if torch.is_tensor(value)
                                                        else float(value))
        if cfg.optim.max_grad_norm:
            acc.clip_grad_norm_(self.objective.parameters(), cfg.optim.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        self._steps_done += 1

    def _after_step(self, crash_at_step: int | None) -> str | None:
        """Progress, logging, the periodic validation and checkpoint; the reason to end the leg, if any."""
        cfg, acc, step = self.cfg, self.accelerator, self.global_step
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{np.mean(self._window['loss']):.3f}")
        if step % cfg.log_every == 0 or step == cfg.optim.max_steps:
            self._log_window()
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.optim.max_steps:
            self.validate()
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.optim.max_steps:
            self.save()
        if crash_at_step is not None and step >= crash_at_step:
            return "crashed"
        if cfg.stop_at_step is not None and step >= cfg.stop_at_step:
            acc.print(f"stop_at_step={cfg.stop_at_step} reached: ending this leg (resume continues the "
                      f"schedule of {cfg.optim.max_steps} steps)")
            return "stopped"
        if cfg.max_minutes and step % max(1, cfg.log_every) == 0 and _any_rank(
            acc, (time.time() - self._t_start) / 60.0 > cfg.max_minutes
        ):
            acc.print(f"time budget of {cfg.max_minutes} min reached at step {step}: stopping early")
            return "time"
        return None

    def _log_window(self) -> None:
        acc = self.accelerator
        means = {k: float(np.mean(v)) for k, v in self._window.items()}
        reduced = acc.reduce(torch.tensor([means.get("loss", 0.0)], device=acc.device), "mean")
        record = {f"train/{k}": v for k, v in means.items()}
        record["train/loss_all_ranks"] = float(reduced[0])
        record["lr"] = self.scheduler.get_last_lr()[0]
        record["sec_per_step"] = (time.time() - self._t_start) / self._steps_done
        acc.log(record, step=self.global_step)
        self._window.clear()

    # ----------------------------------------------------------------------------------------------- validate, save
    def _validation_set(self) -> ValidationSet | None:
        cfg, acc = self.cfg, self.accelerator
        if not acc.is_main_process or cfg.val_images <= 0:
            return None
        try:
            data = self.val_dataset
            if data is None:
                if cfg.data.path is None:
                    raise ValueError("no data.path and no validation dataset")
                data = load_split(cfg.data.path, cfg.data.val_split, streaming=False)
            return build_validation_set(data, self.input_format, cfg.val_images, cfg.seed,
                                        saliency_stretched_size(self.model.config))
        except (FileNotFoundError, ValueError, KeyError) as error:
            acc.print(f"no validation: {error}")
            return None

    def validate(self) -> None:
        """Main process: score the validation set, export best/ when it improves and final/ always; all wait."""
        acc = self.accelerator
        if acc.is_main_process:
            if self.valset is not None:
                self.last_val = evaluate_miou_at_1(self.model, self.valset)
                acc.log({"val/miou@1": self.last_val["miou@1"], "val/miou@1_center": self.last_val["miou@1_center"],
                         "val/n": self.last_val["n"]}, step=self.global_step)
                if self.last_val["miou@1"] > self.best:
                    self.best = self.last_val["miou@1"]
                    self.export("best")
            self.export("final")
        acc.wait_for_everyone()

    def export(self, name: str) -> None:
        """Main process: the unwrapped model (safetensors) and its image processor, atomically, to `<run>/<name>`."""
        atomic_save_pretrained(self.run_dir / name, self.model, self.processor)

    def save(self) -> Path:
        """Collective: every process must call it. The resumable checkpoint of the current step."""
        state = {"step": self.global_step, "best": float(self.best), "skipped": self.skipped.tolist(),
                 "last_val": self.last_val, "data_state": self.stream.state(), "world_size": self.world}
        return save_checkpoint(self.accelerator, self.ckpt_root, self.global_step, state, self.stream.state(),
                               keep=self.cfg.keep_checkpoints)

    def _summary(self, sec_per_step: float) -> dict[str, Any]:
        acc = self.accelerator
        total_skipped = acc.reduce(torch.tensor(self.skipped, device=acc.device), "sum").cpu().numpy()
        summary = {
            "step": self.global_step,
            "last_val": self.last_val,
            "best_val": self.best,
            "skipped": dict(zip(SKIP_REASONS, total_skipped.tolist())),
            "sec_per_step": sec_per_step,
            "world_size": self.world,
            "run_dir": str(self.run_dir),
        }
        acc.log({"summary": json.dumps(summary)}, step=self.global_step)
        acc.print(f"skipped rows / masks: {summary['skipped']}")
        acc.print(json.dumps(summary))
        self._finish()
        return summary

    def _finish(self) -> None:
        """Stop the trackers and tear down the process group, all ranks together (`teardown.finish_run`)."""
        finish_run(self.accelerator)


def _any_rank(accelerator, flag: bool) -> bool:
    """A decision every rank takes together (the time budget: one rank stopping alone would hang the others)."""
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum")[0] > 0)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return out
