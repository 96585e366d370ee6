"""The distillation loop on accelerate (1 CPU process, N processes, GPUs): resumable, with a loadable `final/`.

Per step, for a batch of cached images: one student encode, every click's map by dot products, and

    loss = L(single clicks) + sequence_weight · L(click sequences)

with L the distillation loss (`loss.py`) against the teacher's maps on the stride-s grid, and a sequence's map the
student's naive-Bayes combination of its clicks (`SignedClickStudentModel.combine_clicks`, which is how the prior
logit u learns to be a prior). Checkpoints (`hf_iis.training.checkpoint`: atomic, `--resume` picks the latest) are
written every `save_every_minutes` and / or `save_every` steps and at the end; `<output_dir>/final` is a
`save_pretrained` folder (model + image processor) that `pipeline("interactive-segmentation", model=...)` loads.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.student.configuration_signed_click_student import SignedClickStudentConfig
from ..models.student.modeling_signed_click_student import SignedClickStudentModel
from .batches import CacheBatches, resolve_train_views
from .config import DistillConfig
from .loss import distillation_loss


def build_student(cfg: DistillConfig, info: dict[str, Any]) -> SignedClickStudentModel:
    """A fresh student (preset + overrides, input size and stride from the cache; its backbone from ImageNet or,
    with `backbone_from`, from a teacher) or `init_from`, checked against the cache's input size and stride."""
    if cfg.init_from and cfg.backbone_from:
        raise ValueError("set init_from or backbone_from, not both: init_from already holds a trained backbone")
    if cfg.init_from:
        model = SignedClickStudentModel.from_pretrained(cfg.init_from)
    else:
        overrides = {"image_size": int(info["image_size"]), "stride": int(info["stride"]), **cfg.student}
        model = SignedClickStudentModel(SignedClickStudentConfig.from_preset(cfg.preset, **overrides))
        if cfg.backbone_from:
            load_teacher_backbone(model, cfg.backbone_from)
        elif model.config.use_pretrained_backbone:
            model.load_pretrained_backbone()
    c = model.config
    if (c.image_size, c.stride) != (int(info["image_size"]), int(info["stride"])):
        raise ValueError(f"the student (image_size {c.image_size}, stride {c.stride}) does not fit the cache "
                         f"(image_size {info['image_size']}, stride {info['stride']})")
    return model


def load_teacher_backbone(student: SignedClickStudentModel, teacher_folder: str | Path) -> None:
    """Copy the teacher's image backbone into the student's (same `backbone` name, same keys under `backbone.`).

    Why: the teacher's backbone is click-free (it is encoded once per image) and was trained on masks, so it
    already separates objects; ImageNet weights only classify. Raises ValueError when the architectures differ."""
    from safetensors.torch import load_file

    folder = Path(teacher_folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"backbone_from: no model.safetensors in {folder} (a teacher save_pretrained folder)")
    config = json.loads((folder / "config.json").read_text())
    if config.get("backbone") != student.config.backbone:
        raise ValueError(f"backbone_from: the teacher's backbone is {config.get('backbone')!r}, the student's "
                         f"{student.config.backbone!r}; they must be the same architecture")
    state = {k[len("backbone."):]: v for k, v in load_file(str(weights)).items() if k.startswith("backbone.")}
    missing = sorted(set(student.backbone.state_dict()) - set(state))
    if missing:
        raise ValueError(f"backbone_from: {folder} lacks {len(missing)} backbone tensors, e.g. {missing[:3]}")
    student.backbone.load_state_dict({k: state[k] for k in student.backbone.state_dict()}, strict=True)


def build_optimizer(model: torch.nn.Module, cfg: DistillConfig) -> torch.optim.Optimizer:
    """AdamW: `backbone_lr` for the backbone, `lr` for the rest, no weight decay on norms, biases and scalars."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((name.startswith("backbone."), param.ndim <= 1), []).append(param)
    return torch.optim.AdamW([{"params": params, "lr": cfg.backbone_lr if backbone else cfg.lr,
                               "weight_decay": 0.0 if no_decay else cfg.weight_decay}
                              for (backbone, no_decay), params in sorted(groups.items())])


def cosine_with_warmup(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_loss(model, batch: dict[str, torch.Tensor], cfg: DistillConfig) -> dict[str, torch.Tensor]:
    """Loss terms of one batch (see the module docstring): `loss`, `single_*` and `sequence_*` terms."""
    out = model(pixel_values=batch["pixel_values"], input_points=batch["points"], input_labels=batch["labels"])
    clicks, valid = out.click_logits, batch["valid"]
    k = batch["single"].shape[1]
    single_mask = batch["single_mask"] & (batch["labels"][:, :k] != 0)
    terms = {f"single_{n}": v for n, v in distillation_loss(clicks[:, :k], batch["single"], valid, single_mask,
                                                           cfg.loss_weights).items()}
    loss = terms["single_loss"]
    sequences = batch["sequences"]
    if sequences.shape[1] and bool(batch["sequence_mask"].any()):
        b, m, length = sequences.shape
        g0, g1 = clicks.shape[-2:]
        index = sequences.clamp_min(0).reshape(b, m * length)
        gathered = torch.gather(clicks, 1, index[..., None, None].expand(-1, -1, g0, g1))
        labels = torch.gather(batch["labels"], 1, index) * (sequences.reshape(b, -1) >= 0)
        prior = out.image_embeddings.prior_logits[:, None].expand(-1, m, -1, -1, -1).reshape(b * m, 1, g0, g1)
        combined = SignedClickStudentModel.combine_clicks(gathered.reshape(b * m, length, g0, g1),
                                                          labels.reshape(b * m, length), prior)
        seq = distillation_loss(combined.reshape(b, m, g0, g1), batch["sequence_targets"], valid,
                                batch["sequence_mask"], cfg.loss_weights)
        terms.update({f"sequence_{n}": v for n, v in seq.items()})
        loss = loss + cfg.sequence_weight * seq["loss"]
    terms["loss"] = loss
    return terms


def distill(cfg: DistillConfig, resume: bool | str = False, progress: bool = True, dataset=None,
            info: dict[str, Any] | None = None, crash_at_step: int | None = None) -> dict[str, Any]:
    """Train per `cfg`; `resume=True` continues the latest checkpoint of `cfg.output_dir` (or a given folder).
    `dataset` / `info` replace reading `cfg.cache` (tests); `crash_at_step` returns right after that step's
    checkpoint with no final save, like a killed run. Returns a summary (steps, last losses, seconds per step)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from ..cli_checks import check_output_dir
    from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from ..training.checkpoint import atomic_save_pretrained, latest_checkpoint, read_json, save_checkpoint
    from ..training.config import check_resume_target
    from ..training.teardown import finish_run
    from ..training.tracking import JSONLTracker
    from .cache import read_cache
    from .config import validate_distill_config

    validate_distill_config(cfg)  # before the run folder or its config.yaml is written
    check_output_dir(cfg.output_dir, "output_dir")
    check_resume_target(resume)
    if dataset is None:
        if cfg.cache is None:
            raise ValueError("set cache (the teacher-target folder, e.g. --cache data_cache/distill_v1)")
        dataset, info = read_cache(cfg.cache)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    run_dir, ckpt_root = Path(cfg.output_dir), Path(cfg.output_dir) / "checkpoints"
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, log_with=[JSONLTracker(run_dir / "log.jsonl")],
                              project_config=ProjectConfiguration(project_dir=str(run_dir),
                                                                  automatic_checkpoint_naming=False))
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
    set_seed(cfg.seed)
    model = build_student(cfg, info)
    processor = SignedClickImageProcessor(size=model.config.image_size)
    optimizer = build_optimizer(model, cfg)
    scheduler = cosine_with_warmup(optimizer, cfg.warmup_steps, cfg.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    stream = CacheBatches(dataset, processor, int(info["stride"]), cfg.batch_size, cfg.seed,
                          accelerator.process_index, accelerator.num_processes, resolve_train_views(cfg.views),
                          cfg.view_prob)
    step = 0
    if resume:
        ckpt = latest_checkpoint(ckpt_root) if resume is True else Path(resume)
        if ckpt is None:
            accelerator.print(f"no checkpoint under {ckpt_root}: starting from scratch")
        else:
            accelerator.load_state(str(ckpt))
            step = int(read_json(ckpt / "trainer_state.json")["step"])
            stream.load_state(read_json(ckpt / f"data_state_{accelerator.process_index}.json"))
            accelerator.project_configuration.iteration = step + 1
            accelerator.print(f"resumed from {ckpt} at step {step}")
    accelerator.init_trackers("distill", config={k: str(v) for k, v in cfg.to_dict().items()})

    def checkpoint() -> None:
        save_checkpoint(accelerator, ckpt_root, step, {"step": step, "world_size": accelerator.num_processes},
                        stream.state(), keep=cfg.keep_checkpoints)

    bar = None
    if progress and accelerator.is_local_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_steps, initial=step, desc="distill", dynamic_ncols=True)
    model.train()
    window: dict[str, list[float]] = {}
    started = last_save = time.time()
    steps_done = 0
    while step < cfg.max_steps:
        batch = {k: v.to(accelerator.device) for k, v in next(stream).items()}
        terms = batch_loss(model, batch, cfg)
        accelerator.backward(terms["loss"])
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step, steps_done = step + 1, steps_done + 1
        for key, value in terms.items():
            window.setdefault(key, []).append(float(value.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(window['loss']):.3f}")
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            record = {f"train/{k}": float(np.mean(v)) for k, v in window.items()}
            record.update(lr=scheduler.get_last_lr()[0], sec_per_step=(time.time() - started) / steps_done)
            accelerator.log(record, step=step)
            window.clear()
        due = bool(cfg.save_every and step % cfg.save_every == 0)
        due |= bool(cfg.save_every_minutes) and time.time() - last_save >= 60.0 * cfg.save_every_minutes
        if accelerator.num_processes > 1:  # every rank must take part in the collective save
            due = bool(accelerator.reduce(torch.tensor([float(due)], device=accelerator.device), "sum")[0] > 0)
        if due and step < cfg.max_steps:
            checkpoint()
            last_save = time.time()
        if crash_at_step is not None and step >= crash_at_step:
            finish_run(accelerator)
            return {"step": step, "crashed": True, "run_dir": str(run_dir)}
    if bar is not None:
        bar.close()
    checkpoint()
    if accelerator.is_main_process:
        student = accelerator.unwrap_model(model)
        spec = info.get("spec", {})
        student.config.teacher = info.get("teacher")
        student.config.teacher_sha256 = info.get("teacher_sha256")  # the path may hold other weights later
        student.config.teacher_scaling = {"tta": spec.get("tta"), "triangulation": spec.get("triangulation"),
                                          "zoom_in": spec.get("zoom_in", False)}
        student.config.distillation = {"cache": cfg.cache, "images": len(dataset), "clicks": spec.get("clicks"),
                                       "sequences": spec.get("sequences"), "steps": step}
        atomic_save_pretrained(run_dir / "final", student, processor)
    accelerator.wait_for_everyone()
    summary = {"step": step, "steps_run": steps_done, "sec_per_step": (time.time() - started) / max(1, steps_done),
               "run_dir": str(run_dir), "final": str(run_dir / "final")}
    accelerator.log({"summary": json.dumps(summary)}, step=step)
    finish_run(accelerator)
    return summary
