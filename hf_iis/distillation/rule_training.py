"""Train only the student's learned multi-click rule on a teacher-target cache, the rest of the student frozen.

The rule (`models/student/click_rule.py`) reads the per-click logit maps, the prior and the previous map; none of
them depends on its weights except the previous map. So every cached image is encoded once, without gradient, and
its clicks' maps are kept (`ClickMapStore`, float16 in memory: ~0.4 MB per image with 30 clicks at 80 x 80);
a training step is then the rule alone on the click sequences of `batch_images` images against the teacher's final
maps (the distillation loss, `loss.py`). The previous map of a sequence is the student's own answer to it without
its newest click (as the click protocol feeds back the last prediction), dropped with probability `prev_drop` so the
rule also serves callers that pass none (the student predictor does not).

Resumable: `<out>/checkpoint.pt` (rule, optimizer, scheduler, step, settings) is rewritten atomically every
`save_every` steps; batches and drops are seeded by (seed, step), so a resumed run repeats the same steps. The result is
`<out>/final`, a `save_pretrained` student with `click_rule="learned"`, written atomically.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.student.configuration_signed_click_student import SignedClickStudentConfig
from ..models.student.modeling_signed_click_student import SignedClickStudentModel
from .batches import row_to_sample
from .loss import distillation_loss
from .trainer import cosine_with_warmup


@dataclass(frozen=True)
class RuleTrainSpec:
    steps: int = 300
    batch_images: int = 8
    lr: float = 1e-3
    warmup_steps: int = 20
    prev_drop: float = 0.5
    channels: int = 32
    save_every: int = 50
    seed: int = 0
    repeat_prob: float = 0.0  # probability that a sequence gets repeated clicks (`repeat_clicks`)
    max_clicks: int = 20  # the longest set after repeats (the click protocol's 20)

    def __post_init__(self) -> None:
        for key in ("steps", "batch_images", "channels", "save_every", "max_clicks"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if not self.lr > 0 or self.warmup_steps < 0:
            raise ValueError(f"need lr > 0 and warmup_steps >= 0, got lr={self.lr}, warmup_steps={self.warmup_steps}")
        for key in ("prev_drop", "repeat_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must be a probability in [0, 1], got {getattr(self, key)}")


def check_student_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"--student {folder}: not a student checkpoint folder (config.json and model.safetensors)")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type != SignedClickStudentConfig.model_type:
        raise ValueError(f"--student {folder} holds a {model_type!r} model, not a distilled student "
                         f"({SignedClickStudentConfig.model_type!r})")
    return folder


def load_rule_student(folder: str | Path, channels: int) -> SignedClickStudentModel:
    """The student of `folder` with a learned rule (a fresh, zero-started one unless it has one), all else frozen."""
    from safetensors.torch import load_file

    config = SignedClickStudentConfig.from_pretrained(folder)
    if config.click_rule == "learned":
        model = SignedClickStudentModel.from_pretrained(folder)
    else:
        config.click_rule, config.click_rule_channels = "learned", int(channels)
        model = SignedClickStudentModel(config)
        info = model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=False)
        missing = [k for k in info.missing_keys if not k.startswith("learned_rule.")]
        if missing or info.unexpected_keys:
            raise ValueError(f"the weights in {folder} do not fit its config: missing {missing[:3]}, unexpected "
                             f"{info.unexpected_keys[:3]}")
    model.eval()  # the neck's batch norms keep their statistics
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("learned_rule."))
    return model


class ClickMapStore:
    """Per cached image, computed on first use: its clicks' logit maps (C, h, w), prior (1, h, w), valid cells,
    sequences (M, L) (−1 padding), labels, points and the teacher's final maps (M, h, w)."""

    def __init__(self, model: SignedClickStudentModel, dataset, processor) -> None:
        self.model, self.dataset, self.processor = model, dataset, processor
        self.items: dict[int, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in self.items:
            sample = row_to_sample(self.dataset[int(index)], self.processor, self.model.config.stride)
            emb = self.model.encode_image(sample["pixel_values"][None])
            maps = self.model.click_logits(emb, sample["points"][None], sample["labels"][None])[0]
            self.items[index] = {"maps": maps.half(), "prior": emb.prior_logits[0], "valid": sample["valid"],
                                 "points": sample["points"], "labels": sample["labels"],
                                 "sequences": sample["sequences"], "targets": sample["sequence_targets"]}
        return self.items[index]


def repeat_clicks(sequences: torch.Tensor, rng: np.random.Generator, prob: float, max_clicks: int) -> torch.Tensor:
    """(M, L) sequences (−1 padding), each with probability `prob` extended to a random length up to `max_clicks` by
    appending repeats of its own clicks (the target unchanged: a repeated click says nothing new).

    Why: the cache's sequences hold 2..L clicks (L = 6 here), the click protocol goes to 20, and there the clicker
    often clicks the same error again and again; naive Bayes counts each repeat as new evidence, and a rule that
    never saw more than L clicks extrapolates its correction (measured: better than naive Bayes up to 5 clicks,
    worse after 8)."""
    rows = []
    for seq in sequences.tolist():
        real = [i for i in seq if i >= 0]
        if real and len(real) < max_clicks and rng.random() < prob:
            extra = int(rng.integers(1, max_clicks - len(real) + 1))
            real = real + [real[int(k)] for k in rng.integers(0, len(real), extra)]
        rows.append(real)
    out = torch.full((len(rows), max([len(r) for r in rows] or [1])), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def sequence_batch(items: list[dict[str, torch.Tensor]], rng: np.random.Generator | None = None,
                   repeat_prob: float = 0.0, max_clicks: int = 20) -> dict[str, torch.Tensor]:
    """The click sequences of several images as click sets: maps (N, L, h, w), labels (N, L), points (N, L, 2),
    prior (N, 1, h, w), valid (N, 1, h, w), targets (N, h, w); padding clicks have label 0. With `rng`, sequences
    get repeated clicks (`repeat_clicks`)."""
    sequences = [item["sequences"] if rng is None else repeat_clicks(item["sequences"], rng, repeat_prob, max_clicks)
                 for item in items]
    length = max(int(seq.shape[1]) for seq in sequences)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("maps", "labels", "points", "prior", "valid", "targets")}
    for item, seq in zip(items, sequences, strict=True):
        if seq.shape[0] == 0:
            continue
        seq = torch.nn.functional.pad(seq, (0, length - seq.shape[1]), value=-1)
        index, real = seq.clamp_min(0), seq >= 0
        out["maps"].append(item["maps"][index].float() * real[..., None, None])
        out["labels"].append(item["labels"][index] * real)
        out["points"].append(item["points"][index])
        m = seq.shape[0]
        out["prior"].append(item["prior"][None].expand(m, -1, -1, -1))
        out["valid"].append(item["valid"][None].expand(m, -1, -1, -1))
        out["targets"].append(item["targets"])
    if not out["maps"]:
        raise ValueError("the batch's cached images hold no click sequences (build the cache with --sequences >= 1)")
    return {k: torch.cat(v) for k, v in out.items()}


def without_newest(labels: torch.Tensor) -> torch.Tensor:
    """Each set's labels with its last non-padding click removed (made padding)."""
    present = labels != 0
    newest = (present.cumsum(1) == present.sum(1, keepdim=True)) & present
    return torch.where(newest, torch.zeros_like(labels), labels)


def rule_loss(model: SignedClickStudentModel, batch: dict[str, torch.Tensor], drop: torch.Tensor
              ) -> dict[str, torch.Tensor]:
    """Distillation loss of the rule's maps for the batch's sets; `drop` (N,) bool: sets given no previous map."""
    rule, stride = model.learned_rule, model.config.stride
    keys = ("maps", "labels", "prior", "points")
    logits = torch.empty_like(batch["prior"])
    keep = ~drop
    if bool(keep.any()):
        args = [batch[k][keep] for k in keys]
        with torch.no_grad():  # the previous answer, as the click loop would have fed it back
            prev = rule(args[0], without_newest(args[1]), *args[2:], stride)
        logits[keep] = rule(*args, stride, prev)
    if bool(drop.any()):
        logits[drop] = rule(*[batch[k][drop] for k in keys], stride)
    return distillation_loss(logits, batch["targets"][:, None], batch["valid"])


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_rule(student: str | Path, cache: str | Path, out: str | Path, spec: RuleTrainSpec, resume: bool = False,
               progress: bool = True, stop_at_step: int | None = None) -> dict[str, Any]:
    """Train the rule of `student` on `cache` into `out` (module docstring); `stop_at_step` returns after that
    step's checkpoint with no final save, like a killed run (tests). Returns a summary."""
    from tqdm.auto import tqdm

    from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from ..training.checkpoint import atomic_save_pretrained
    from .cache import read_cache

    student, out = check_student_folder(student), Path(out)
    dataset, info = read_cache(cache)
    config = SignedClickStudentConfig.from_pretrained(student)
    if (config.image_size, config.stride) != (int(info["image_size"]), int(info["stride"])):
        raise ValueError(f"the student (image_size {config.image_size}, stride {config.stride}) does not fit the "
                         f"cache (image_size {info['image_size']}, stride {info['stride']})")
    if len(dataset) < spec.batch_images:
        raise ValueError(f"{len(dataset)} cached images are fewer than one batch of {spec.batch_images}")
    settings = {"student": str(student), "cache": str(cache), "cache_teacher": info.get("teacher"), **asdict(spec)}
    ckpt_path = out / "checkpoint.pt"
    state = None
    if ckpt_path.is_file():
        if not resume:
            raise ValueError(f"{out} already holds a rule-training run: pass --resume or pick another --out")
        state = torch.load(ckpt_path, weights_only=False)
        changed = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
        if changed:
            raise ValueError(f"{out} was trained with other settings {changed}: pick another --out")
    torch.manual_seed(spec.seed)
    model = load_rule_student(student, spec.channels)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=1e-4)
    scheduler = cosine_with_warmup(optimizer, spec.warmup_steps, spec.steps)
    step = 0
    if state is not None:
        model.learned_rule.load_state_dict(state["rule"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    out.mkdir(parents=True, exist_ok=True)
    processor = SignedClickImageProcessor(size=config.image_size)
    store = ClickMapStore(model, dataset, processor)

    def checkpoint() -> None:
        _save_atomic({"rule": model.learned_rule.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "step": step, "settings": settings}, ckpt_path)

    bar = tqdm(total=spec.steps, initial=step, desc="click rule", disable=not progress, dynamic_ncols=True)
    started, steps_run, losses = time.time(), 0, []
    with (out / "log.jsonl").open("a") as log:
        while step < spec.steps:
            rng = np.random.default_rng([spec.seed, step])
            indices = rng.choice(len(dataset), spec.batch_images, replace=False)
            batch = sequence_batch([store[int(i)] for i in indices], rng if spec.repeat_prob else None,
                                   spec.repeat_prob, spec.max_clicks)
            drop = torch.from_numpy(rng.random(batch["labels"].shape[0]) < spec.prev_drop)
            terms = rule_loss(model, batch, drop)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step, steps_run = step + 1, steps_run + 1
            losses.append(float(terms["loss"].detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            log.write(json.dumps({"step": step, **{k: float(v.detach()) for k, v in terms.items()}}) + "\n")
            if step % spec.save_every == 0 or step == spec.steps:
                checkpoint()
            if stop_at_step is not None and step >= stop_at_step:
                return {"step": step, "stopped": True}
    bar.close()
    model.config.distillation = {**(model.config.distillation or {}),
                                 "click_rule": {"cache": str(cache), "images": len(dataset), "steps": step,
                                                "from": str(student), "prev_drop": spec.prev_drop,
                                                "repeat_prob": spec.repeat_prob, "max_clicks": spec.max_clicks}}
    atomic_save_pretrained(out / "final", model, processor)
    return {"step": step, "steps_run": steps_run, "sec_per_step": (time.time() - started) / max(1, steps_run),
            "first_loss": losses[0] if losses else None,
            "last_loss_20": float(np.mean(losses[-20:])) if losses else None, "final": str(out / "final")}
