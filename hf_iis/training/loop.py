"""The training loop on accelerate: one code path for 1 CPU process, N gloo processes, multi-GPU, multi-node, FSDP.

The launch configuration (configs/accelerate/*.yaml) decides how many processes run and where; this loop only asks
the `Accelerator` for its rank and world size. Each rank reads its own data shard (`data.BatchStream`), gradients
are averaged by the DDP/FSDP wrapper, checkpoints are collective and atomic (`checkpoint.py`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configuration_signed_click import SignedClickConfig
from ..modeling_signed_click import SignedClickModel
from .augment import AugmentParams
from .checkpoint import atomic_save_pretrained, latest_checkpoint, read_json, save_checkpoint
from .collate import SKIP_REASONS, TrainTransform
from .config import TrainingConfig
from .data import BatchStream, load_split
from .objective import SignedClickObjective
from .tracking import JSONLTracker
from .validation import build_validation_set, evaluate_miou_at_1

logger = logging.getLogger(__name__)

_MODEL_INPUTS = ("pixel_values", "points", "labels", "image_index", "target_masks", "target_valid")


def build_model(cfg: TrainingConfig) -> SignedClickModel:
    """A fresh model from the preset (with the offline pretrained backbone unless disabled), or `init_from`."""
    m = cfg.model
    if m.init_from:
        model = SignedClickModel.from_pretrained(m.init_from)
        if m.saliency_encoder is not None and model.config.saliency_encoder is None:
            model = add_saliency_branch(model, m.saliency_encoder, m.saliency_features, m.saliency_input_size,
                                        m.saliency_onnx)
        if m.saliency_click_prior and not model.config.saliency_click_prior:
            model = grow_model(model, saliency_click_prior=True)
        if m.image_size != model.config.image_size:
            # A fully convolutional model can continue at another resolution; the config must follow, since the
            # click encoding's far-field width is a fraction of config.image_size and the processor resizes to it.
            logger.info("init_from %s: image_size %d -> %d", m.init_from, model.config.image_size, m.image_size)
            model.config.image_size = m.image_size
        if m.freeze_backbone_blocks is not None:
            model.freeze_backbone_stem(m.freeze_backbone_blocks)
        return model
    weights = {f"loss_{name}_weight": 0.0 for name in ("bce", "dice", "soft_iou", "lovasz")}
    weights.update({f"loss_{name}_weight": float(w) for name, w in m.loss_weights.items()})
    config = SignedClickConfig.from_preset(
        m.preset, image_size=m.image_size, backbone=m.backbone, use_pretrained_backbone=m.pretrained_backbone,
        saliency_encoder=m.saliency_encoder, saliency_features=m.saliency_features,
        saliency_input_size=m.saliency_input_size, saliency_click_prior=m.saliency_click_prior, **weights,
    )
    model = SignedClickModel(config)
    if m.pretrained_backbone:
        model.load_pretrained_backbone()
    if model.saliency is not None:
        model.load_pretrained_saliency(m.saliency_onnx)
    if m.freeze_backbone_blocks is not None:
        model.freeze_backbone_stem(m.freeze_backbone_blocks)
    return model


_GROWN_PARTS = ("saliency.", "decoder.refine.", "decoder.prior.")
"""Parameters a grown model may have that its source lacks: all start at zero or are pretrained (U²-Net)."""


def grow_model(model: SignedClickModel, **config_changes) -> SignedClickModel:
    """A model with `config_changes` applied that keeps every trained weight of `model`; the parts it adds (saliency
    fusion, refinement, click prior) start at zero, so it predicts exactly what `model` did."""
    grown = SignedClickModel(SignedClickConfig(**{**model.config.to_dict(), **config_changes}))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(_GROWN_PARTS) for k in missing):
        raise ValueError(f"cannot grow the model by {config_changes}: unexpected {unexpected[:3]}, missing "
                         f"{[k for k in missing if not k.startswith(_GROWN_PARTS)][:3]}")
    return grown


def add_saliency_branch(model: SignedClickModel, encoder: str, features: list[str], input_size: int,
                        onnx_path: str | None = None) -> SignedClickModel:
    """`model` with a U²-Net saliency branch added (`grow_model`), its U²-Net weights from the published ONNX file."""
    grown = grow_model(model, saliency_encoder=encoder, saliency_features=list(features),
                       saliency_input_size=input_size)
    grown.load_pretrained_saliency(onnx_path)
    return grown


def build_optimizer(model: SignedClickModel, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW with a lower learning rate for the backbone and no weight decay on norms and biases."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name.startswith("backbone."), param.ndim <= 1)
        groups.setdefault(key, []).append(param)
    o = cfg.optim
    param_groups = [
        {"params": params, "lr": o.backbone_lr if is_backbone else o.lr, "weight_decay": 0.0 if no_decay
         else o.weight_decay}
        for (is_backbone, no_decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=o.lr, betas=tuple(o.betas))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def augment_params(cfg: TrainingConfig) -> AugmentParams:
    d = cfg.data
    fields = AugmentParams.__dataclass_fields__
    return AugmentParams(image_size=cfg.model.image_size, **{k: getattr(d, k) for k in fields if hasattr(d, k)})


def build_transform(cfg: TrainingConfig) -> TrainTransform:
    """The row -> training sample transform of a config (augmentation, mask and click sampling)."""
    d = cfg.data
    return TrainTransform(augment_params(cfg), d.masks_per_image, d.pairs_per_mask, cfg.seed, d.max_masks_decoded,
                          d.mask_sampling)


def _save_model(accelerator, objective, cfg: TrainingConfig, target: Path) -> None:
    """Main process: the unwrapped model (safetensors) and, when available, the image processor."""
    model = accelerator.unwrap_model(objective).model
    objects: list[Any] = [model]
    try:
        from ..image_processing_signed_click import SignedClickImageProcessor

        objects.append(SignedClickImageProcessor(size=cfg.model.image_size))
    except ImportError:
        pass
    atomic_save_pretrained(target, *objects)


def train(
    cfg: TrainingConfig,
    resume: bool | str = False,
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
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    if cfg.data.path is None and train_dataset is None:
        raise ValueError("set data.path (the parquet corpus folder, e.g. --data data_cache/corpus)")
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    run_dir = Path(cfg.output_dir)
    ckpt_root = run_dir / "checkpoints"
    accelerator = Accelerator(
        mixed_precision=cfg.optim.mixed_precision,
        log_with=[JSONLTracker(run_dir / "log.jsonl")],
        project_config=ProjectConfiguration(project_dir=str(run_dir), automatic_checkpoint_naming=False),
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
    set_seed(cfg.seed)

    model = build_model(cfg)
    objective = SignedClickObjective(model, cfg.model.loss_weights)
    optimizer = build_optimizer(model, cfg)
    scheduler = cosine_with_warmup(optimizer, cfg.optim.warmup_steps, cfg.optim.max_steps)
    objective, optimizer = accelerator.prepare(objective, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    transform = build_transform(cfg)
    train_data = train_dataset
    if train_data is None:
        train_data = load_split(cfg.data.path, cfg.data.train_split, streaming=cfg.data.streaming)
    stream = BatchStream(train_data, transform, cfg.data.batch_size, cfg.data.num_workers, cfg.seed, rank, world,
                         cfg.data.shuffle_buffer)

    step, best, skipped = 0, -1.0, np.zeros(len(SKIP_REASONS), dtype=np.int64)
    last_val: dict[str, float] = {}
    if resume:
        ckpt = latest_checkpoint(ckpt_root) if resume is True else Path(resume)
        if ckpt is None:
            accelerator.print(f"no checkpoint under {ckpt_root}: starting from scratch")
        else:
            accelerator.load_state(str(ckpt))
            state = read_json(ckpt / "trainer_state.json")
            step, best = int(state["step"]), float(state.get("best", -1.0))
            skipped = np.asarray(state.get("skipped", skipped.tolist()), dtype=np.int64)
            last_val = state.get("last_val", {})
            data_file = ckpt / f"data_state_{rank}.json"
            stream.load_state(read_json(data_file) if data_file.exists() else state["data_state"])
            # load_state does not advance accelerate's checkpoint counter: without this the next save_state fails
            accelerator.project_configuration.iteration = step + 1
            accelerator.print(f"resumed from {ckpt} at step {step}")

    accelerator.init_trackers("train", config=_flat(cfg.to_dict()))
    valset = None
    if accelerator.is_main_process and cfg.val_images > 0:
        try:
            val_data = val_dataset
            if val_data is None:
                val_data = load_split(cfg.data.path, cfg.data.val_split, streaming=False)
            valset = build_validation_set(val_data, cfg.model.image_size, cfg.val_images, cfg.seed)
        except (FileNotFoundError, ValueError, KeyError) as error:
            accelerator.print(f"no validation: {error}")

    def validate_and_save() -> None:
        nonlocal best, last_val
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(objective).model
            if valset is not None:
                last_val = evaluate_miou_at_1(unwrapped, valset)
                accelerator.log({"val/miou@1": last_val["miou@1"], "val/miou@1_center": last_val["miou@1_center"],
                                 "val/n": last_val["n"]}, step=step)
                if last_val["miou@1"] > best:
                    best = last_val["miou@1"]
                    _save_model(accelerator, objective, cfg, run_dir / "best")
            _save_model(accelerator, objective, cfg, run_dir / "final")
        accelerator.wait_for_everyone()

    def checkpoint() -> None:
        best_tensor = torch.tensor([best], dtype=torch.float64)
        state = {"step": step, "best": float(best_tensor[0]), "skipped": skipped.tolist(), "last_val": last_val,
                 "data_state": stream.state(), "world_size": world}
        save_checkpoint(accelerator, ckpt_root, step, state, stream.state(), keep=cfg.keep_checkpoints)

    bar = None
    if progress and accelerator.is_local_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.optim.max_steps, initial=step, desc="train", dynamic_ncols=True)
    objective.train()
    it_cfg = cfg.iterative
    accum = max(1, cfg.optim.grad_accum)
    window: dict[str, list[float]] = {}
    t_start, steps_done = time.time(), 0
    while step < cfg.optim.max_steps:
        for micro in range(accum):
            batch = next(stream)
            skipped += batch["skipped"].numpy()
            rng = np.random.default_rng([cfg.seed, step, micro, rank])
            rounds = 0
            if it_cfg is not None and it_cfg.prob > 0 and rng.random() < it_cfg.prob:
                rounds = int(rng.integers(it_cfg.min_clicks, it_cfg.max_clicks + 1))
            sync = micro == accum - 1
            with accelerator.no_sync(objective) if not sync else _null():
                if batch["pixel_values"].shape[0] == 0:  # every row bad: keep the collective in step
                    loss = sum(p.sum() for p in objective.parameters()) * 0.0
                    out = {"loss": loss}
                else:
                    inputs = {k: batch[k].to(accelerator.device) for k in _MODEL_INPUTS}
                    out = objective(**inputs, corrective_clicks=rounds)
                accelerator.backward(out["loss"] / accum)
            for key, value in out.items():
                window.setdefault(key, []).append(float(value.detach()) if torch.is_tensor(value) else float(value))
        if cfg.optim.max_grad_norm:
            accelerator.clip_grad_norm_(objective.parameters(), cfg.optim.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        steps_done += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(window['loss']):.3f}")
        if step % cfg.log_every == 0 or step == cfg.optim.max_steps:
            means = {k: float(np.mean(v)) for k, v in window.items()}
            reduced = accelerator.reduce(torch.tensor([means.get("loss", 0.0)], device=accelerator.device), "mean")
            record = {f"train/{k}": v for k, v in means.items()}
            record["train/loss_all_ranks"] = float(reduced[0])
            record["lr"] = scheduler.get_last_lr()[0]
            record["sec_per_step"] = (time.time() - t_start) / steps_done
            accelerator.log(record, step=step)
            window.clear()
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.optim.max_steps:
            validate_and_save()
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.optim.max_steps:
            checkpoint()
        if crash_at_step is not None and step >= crash_at_step:
            accelerator.end_training()
            return {"step": step, "crashed": True, "run_dir": str(run_dir)}
        if cfg.stop_at_step is not None and step >= cfg.stop_at_step:
            accelerator.print(f"stop_at_step={cfg.stop_at_step} reached: ending this leg (resume continues the "
                              f"schedule of {cfg.optim.max_steps} steps)")
            break
        if cfg.max_minutes and step % max(1, cfg.log_every) == 0 and _any_rank(
            accelerator, (time.time() - t_start) / 60.0 > cfg.max_minutes
        ):
            accelerator.print(f"time budget of {cfg.max_minutes} min reached at step {step}: stopping early")
            break
    if bar is not None:
        bar.close()
    sec_per_step = (time.time() - t_start) / max(1, steps_done)
    validate_and_save()
    checkpoint()
    total_skipped = accelerator.reduce(torch.tensor(skipped, device=accelerator.device), "sum").cpu().numpy()
    summary = {
        "step": step,
        "last_val": last_val,
        "best_val": best,
        "skipped": dict(zip(SKIP_REASONS, total_skipped.tolist())),
        "sec_per_step": sec_per_step,
        "world_size": world,
        "run_dir": str(run_dir),
    }
    accelerator.log({"summary": json.dumps(summary)}, step=step)
    accelerator.print(f"skipped rows / masks: {summary['skipped']}")
    accelerator.print(json.dumps(summary))
    accelerator.end_training()
    return summary


def _any_rank(accelerator, flag: bool) -> bool:
    """A decision every rank takes together (the time budget: one rank stopping alone would hang the others)."""
    return bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum")[0] > 0)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
    return out
