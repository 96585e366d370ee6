"""Train the click decoder and its heads from an embedding cache: no image pass per step, resumable legs.

    model = teacher grown to S maps with the click prior in the output path (`grow_outputs`), image side frozen
    per step: B cached views; per view a mask m (uniform over its masks: the seed's P(m), which S maps can answer
    with nested alternatives), one positive click uniform in m and one negative uniform outside (the seed's
    L(f(I, x, +1), m) + L(f(I, x̄, −1), m)), plus, with probability `corrective_prob`, 1..`max_corrective_clicks`
    simulated corrective clicks decoded on the same cached embedding (`SignedClickObjective.loss_on_embeddings`)

The run state (`<output_dir>/state/`: the trainable weights, optimizer, schedule, step, data generator) is written
atomically every `save_every_minutes` and at the end of a leg, together with the run settings and the cache's
`cache_info.json`; a resumed leg refuses other settings or a cache of another model. `<output_dir>/final/` is the
whole model (`save_pretrained`) after the last leg so far.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from ..models.signed_click.embeddings import SignedClickImageEmbeddings
from ..models.signed_click.grow_outputs import grow_outputs
from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from ..models.signed_click.modeling_signed_click import SignedClickModel
from ..utils.memory import release_freed_memory
from .embedding_cache import CACHE_INFO, check_cache_teacher, file_sha256, list_shards, load_shards
from .objective import SignedClickObjective
from .sampling import MASK_SAMPLINGS, ClickPairs, choose_masks, sample_click_pairs, sample_pixels

# settings a resumed leg may change (how long it runs, how it reports); every other one must match the state's
LEG_SETTINGS = ("stop_at_step", "max_minutes", "save_every_minutes", "log_every", "num_threads")


@dataclass
class DecoderRunConfig:
    """A decoder-training run (`configs/decoder_multimask.yaml`)."""

    teacher: str = "hf_iis/checkpoints/default"  # the model whose image side is frozen (and cached)
    cache: str = "data_cache/embeddings"  # built by `scripts/train_decoder.py cache` from the same teacher
    extra_caches: list[str] = dataclasses.field(default_factory=list)  # more caches of the same teacher (e.g. the
    # object-box crops of `cache --object-crops`): their shards join the draw, each shard equally likely
    output_dir: str = "runs/decoder_multimask"
    init_from: str | None = None  # start the decoder from this checkpoint (e.g. an earlier run's final/) instead of
    # the teacher's: a new run with other settings (a lower lr) that goes on from a leg; its image side must be
    # the teacher's, so that the cache still holds its embeddings
    num_mask_outputs: int = 3
    prior_in_output: bool = True
    batch_size: int = 16  # cached views per step (2 click sets each: a positive and a negative)
    lr: float = 3.0e-4
    weight_decay: float = 1.0e-4
    warmup_steps: int = 50
    max_steps: int = 6000
    stop_at_step: int | None = None  # end this leg here, keeping max_steps' schedule
    max_minutes: float | None = None  # end this leg after this much training time
    corrective_prob: float = 0.35
    max_corrective_clicks: int = 3
    mask_sampling: str = "uniform"
    shards_in_memory: int = 8
    save_every_minutes: float = 5.0
    log_every: int = 10
    seed: int = 0
    num_threads: int | None = 2

    def check(self) -> None:
        """One-line `ValueError`s for settings out of range, before any work."""
        positive = {"num_mask_outputs": 1, "batch_size": 1, "max_steps": 1, "shards_in_memory": 1, "log_every": 1}
        for key, low in positive.items():
            value = getattr(self, key)
            if type(value) is not int or value < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        for key in ("lr", "weight_decay", "corrective_prob", "save_every_minutes"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        if not 0 <= self.corrective_prob <= 1:
            raise ValueError(f"corrective_prob must be in [0, 1], got {self.corrective_prob!r}")
        if not isinstance(self.extra_caches, list) or not all(isinstance(c, str) and c for c in self.extra_caches):
            raise ValueError(f"extra_caches must be a list of cache folders, got {self.extra_caches!r}")
        if self.mask_sampling not in MASK_SAMPLINGS:
            raise ValueError(f"mask_sampling must be one of {MASK_SAMPLINGS}, got {self.mask_sampling!r}")
        if self.stop_at_step is not None and (type(self.stop_at_step) is not int or self.stop_at_step < 1):
            raise ValueError(f"stop_at_step must be an integer >= 1 or null, got {self.stop_at_step!r}")
        if self.max_minutes is not None and (isinstance(self.max_minutes, bool) or self.max_minutes <= 0):
            raise ValueError(f"max_minutes must be a positive number or null, got {self.max_minutes!r}")

    def run_settings(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in LEG_SETTINGS}


def load_run_config(path: str | Path | None, overrides: list[str] | None = None) -> DecoderRunConfig:
    """The YAML file (its keys are `DecoderRunConfig`'s) with `key=value` overrides (YAML values); one-line
    `ValueError`s for a missing / unreadable file, unknown keys or bad values."""
    values: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"--config {path}: no such file")
        try:
            values = yaml.safe_load(file.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ValueError(f"--config {path} is not valid YAML ({type(error).__name__})") from None
        if not isinstance(values, dict):
            raise ValueError(f"--config {path} must hold a mapping of settings, got a {type(values).__name__}")
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: use key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ValueError(f"--set {item!r}: the value is not valid YAML") from None
    known = {f.name for f in dataclasses.fields(DecoderRunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    cfg = DecoderRunConfig(**values)
    cfg.check()
    return cfg


def build_decoder_model(cfg: DecoderRunConfig) -> SignedClickModel:
    """The teacher, grown to the run's maps and output prior when it has one map; everything but the decoder
    frozen."""
    model = SignedClickModel.from_pretrained(cfg.teacher)
    config = model.config
    if config.num_mask_outputs == 1 and not config.prior_in_output and (
            cfg.num_mask_outputs > 1 or cfg.prior_in_output):
        model = grow_outputs(model, cfg.num_mask_outputs, cfg.prior_in_output)
    elif (config.num_mask_outputs, config.prior_in_output) != (cfg.num_mask_outputs, cfg.prior_in_output):
        raise ValueError(f"teacher {cfg.teacher} has num_mask_outputs={config.num_mask_outputs}, prior_in_output="
                         f"{config.prior_in_output}; the run asks for {cfg.num_mask_outputs}, {cfg.prior_in_output}")
    if cfg.init_from is not None:
        load_decoder_from(model, cfg.init_from, cfg.teacher)
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("decoder."))
    return model


def load_decoder_from(model: SignedClickModel, folder: str, teacher: str) -> None:
    """Copy the decoder of checkpoint `folder` into `model` (the grown teacher); one-line `ValueError`s when the
    folder is not a checkpoint of the same architecture or its frozen image side differs from the teacher's."""
    weights = Path(folder) / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"init_from {folder}: no model.safetensors (a checkpoint folder, e.g. a run's final/)")
    other = load_file(str(weights))
    own = model.state_dict()
    if set(other) != set(own) or any(other[k].shape != own[k].shape for k in own):
        raise ValueError(f"init_from {folder}: its weights do not match the run's model (num_mask_outputs, "
                         "prior_in_output and the architecture must be the same)")
    changed = sorted(k for k in own if not k.startswith("decoder.") and not torch.equal(other[k], own[k]))
    if changed:
        raise ValueError(f"init_from {folder}: its image side differs from the teacher {teacher} ({changed[0]} and "
                         f"{len(changed) - 1} more); the cache holds the teacher's embeddings")
    model.load_state_dict({k: v for k, v in other.items() if k.startswith("decoder.")}, strict=False)


class CachedBatches:
    """Random batches of cached views, `shards_in_memory` shards at a time; the generator is part of the run state.
    The shard list is read again at every refill, so training can run beside a cache build (its shards are a uniform
    sample of the corpus at any time, `embedding_cache.py`)."""

    def __init__(self, cache: str | Path | list, size: int, cfg: DecoderRunConfig, rng: np.random.Generator) -> None:
        self.caches = [cache] if isinstance(cache, (str, Path)) else list(cache)
        for folder in self.caches:
            if not list_shards(folder):
                raise ValueError(f"{folder} holds no shard: build the cache first (scripts/train_decoder.py cache)")
        self.shards = self._list()
        # which caches hold anchored views: read once from each cache_info.json, looked up per shard at each load
        self.anchored_caches = {Path(folder): _is_anchored(Path(folder)) for folder in self.caches}
        self.size, self.cfg, self.rng = size, cfg, rng
        self.views = None
        self.anchored = np.zeros(0, dtype=bool)  # per view in memory: its masks are [answer, click region]
        self.picked: list[int] = []
        self.order: list[int] = []

    def _refill(self) -> None:
        # shards written since the last refill join (a cache still being built): names sort in build order, so
        # the indices of the shards already listed keep their meaning
        self.shards = self._list()
        pick = self.rng.choice(len(self.shards), size=min(self.cfg.shards_in_memory, len(self.shards)),
                               replace=False)
        self.picked = sorted(int(i) for i in pick)
        self.views = None
        release_freed_memory()  # the replaced shards' buffers (utils/memory.py)
        self._load()
        self.order = [int(i) for i in self.rng.permutation(len(self.views))]

    def _load(self) -> None:
        paths = [self.shards[i] for i in self.picked]
        self.views = load_shards(paths, self.size)
        self.anchored = np.repeat([self.anchored_caches[path.parent] for path in paths], self.views.shard_sizes)

    def _list(self) -> list[Path]:
        # the caches one after the other; only the last may still be growing without moving the others' indices
        return [shard for folder in self.caches for shard in list_shards(folder)]

    def state(self) -> dict[str, list[int]]:
        """Which shards are in memory and which of their views are still to come: with the generator's state, a
        resumed leg draws exactly the batches an uninterrupted run would."""
        return {"picked": list(self.picked), "order": list(self.order)}

    def load_state(self, state: dict[str, list[int]]) -> None:
        self.picked, self.order = list(state["picked"]), list(state["order"])
        if self.picked:
            self._load()
        else:
            self.views = None

    def next(self) -> dict[str, torch.Tensor]:
        points, labels, index, targets, valids, chosen = [], [], [], [], [], []
        # each chosen view's embedding is taken when it is chosen: a refill in the middle of a batch replaces
        # `self.views`, and the indices drawn before it belong to the views it replaced
        picked_embeddings = []
        while len(chosen) < self.cfg.batch_size:
            if not self.order:
                self._refill()
            view = int(self.order.pop())
            masks = self.views.masks[view].numpy()
            valid = self.views.valid[view].numpy()
            if self.anchored[view]:  # a pseudo-label: only its own click's question, positive, was answered
                click = sample_pixels(masks[1] & valid, 1, self.rng) if masks.shape[0] == 2 else None
                if click is None:
                    continue
                pick = np.array([0])
                pair = ClickPairs(click, np.zeros((1, 2), dtype=np.float32), np.array([False]))
            else:
                pick = choose_masks(masks, valid, 1, self.rng, 16, self.cfg.mask_sampling)
                if pick.size == 0:
                    continue
                pair = sample_click_pairs(masks[pick[0]], valid, 1, self.rng)
            b = len(chosen)
            chosen.append(view)
            picked_embeddings.append(self.views.embeddings.index(torch.tensor([view])))
            for sign, point, ok in ((1, pair.positives[0], True), (-1, pair.negatives[0], pair.negative_ok[0])):
                if ok:
                    points.append(point)
                    labels.append(sign)
                    index.append(b)
                    targets.append(masks[pick[0]])
                    valids.append(valid)
        e = SignedClickImageEmbeddings.cat(picked_embeddings)
        embeddings = type(e)(**{k: None if v is None else v.float() for k, v in vars(e).items()})
        return {
            "embeddings": embeddings,
            "points": torch.from_numpy(np.stack(points))[:, None, :].float(),
            "labels": torch.tensor(labels)[:, None],
            "image_index": torch.tensor(index),
            "target_masks": torch.from_numpy(np.stack(targets))[:, None],
            "target_valid": torch.from_numpy(np.stack(valids))[:, None],
        }


def _is_anchored(cache: Path) -> bool:
    """Whether a cache holds anchored views (`CacheInfo.anchored`); caches built before the option hold none."""
    info = cache / CACHE_INFO
    return bool(json.loads(info.read_text()).get("anchored", False)) if info.is_file() else False


def _schedule(cfg: DecoderRunConfig):
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / max(1, cfg.warmup_steps)
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _save_state(out: Path, model, optimizer, scheduler, step: int, batches: CachedBatches,
                cfg: DecoderRunConfig, cache_info: dict) -> None:
    tmp, state = out / ".state-tmp", out / "state"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k.startswith("decoder.")}
    save_file(trainable, str(tmp / "decoder.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
    (tmp / "run.json").write_text(json.dumps({"step": step, "rng": batches.rng.bit_generator.state,
                                              "batches": batches.state(),
                                              "settings": cfg.run_settings(), "cache_info": cache_info},
                                             indent=2, sort_keys=True) + "\n")
    old = out / ".state-old"
    shutil.rmtree(old, ignore_errors=True)
    if state.exists():
        os.replace(state, old)
    os.replace(tmp, state)
    shutil.rmtree(old, ignore_errors=True)


def train_decoder(cfg: DecoderRunConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) one leg; returns {"step", "stopped", "samples_per_second"}."""
    from tqdm import tqdm

    from .checkpoint import atomic_save_pretrained

    cfg.check()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    teacher_sha = file_sha256(Path(cfg.teacher) / "model.safetensors")
    # each cache must hold embeddings of this teacher (refused before a model is built)
    infos = [(Path(folder) / CACHE_INFO, check_cache_teacher(folder, cfg.teacher, teacher_sha))
             for folder in [cfg.cache, *cfg.extra_caches]]
    # the run state keeps the first cache's record as before, and the others' beside it when there are any
    cache_info = infos[0][1] if len(infos) == 1 else {**infos[0][1], "extra_caches": [i for _, i in infos[1:]]}
    torch.manual_seed(cfg.seed)  # the new heads' initial weights: a fresh leg and a resumed one start alike
    model = build_decoder_model(cfg)
    for info_path, info in infos:
        if info.get("image_size") != model.config.image_size:
            raise ValueError(f"{info_path}: image_size {info.get('image_size')}, the model's is "
                             f"{model.config.image_size}")
        # the teacher's weights do not say what its saliency branch saw: the frame is config only
        for key, default in (("saliency_frame", "padded"), ("saliency_input_size", 256)):
            built, wanted = info.get(key, default), getattr(model.config, key, default)
            if built != wanted:
                raise ValueError(f"{info_path}: the cache was built with {key}={built!r}, the model {cfg.teacher} "
                                 f"has {key}={wanted!r}; build a cache from this model (scripts/train_decoder.py "
                                 "cache --teacher ...)")
    out = Path(cfg.output_dir)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg))
    rng = np.random.default_rng(cfg.seed)
    batches = CachedBatches([cfg.cache, *cfg.extra_caches], model.config.image_size, cfg, rng)
    step = 0
    state = out / "state"
    if state.is_dir():
        run = json.loads((state / "run.json").read_text())
        # settings added since the state was written read as their defaults
        saved = {**DecoderRunConfig(teacher=cfg.teacher).run_settings(), **run["settings"]}
        if saved != cfg.run_settings():
            diff = sorted(k for k in cfg.run_settings() if saved.get(k) != cfg.run_settings()[k])
            raise ValueError(f"{out} holds a run with other settings ({diff}); resume with the same settings or use "
                             "a new --output-dir")
        if run["cache_info"] != cache_info:
            raise ValueError(f"{out} was trained on another cache than {cfg.cache} (cache_info.json differs)")
        model.load_state_dict(load_file(str(state / "decoder.safetensors")), strict=False)
        saved = torch.load(state / "optim.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = run["rng"]
        batches.load_state(run["batches"])
        step = int(run["step"])
    else:
        out.mkdir(parents=True, exist_ok=True)
    (out / "run_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    objective = SignedClickObjective(model)
    end = min(cfg.max_steps, cfg.stop_at_step or cfg.max_steps)
    model.train()
    start, last_save, samples = time.monotonic(), time.monotonic(), 0
    log = (out / "log.jsonl").open("a")
    bar = tqdm(total=end, initial=step, desc="decoder", disable=not progress)
    stopped = "max_steps" if end == cfg.max_steps else "stop_at_step"
    while step < end:
        if cfg.max_minutes is not None and time.monotonic() - start > 60 * cfg.max_minutes:
            stopped = "max_minutes"
            break
        batch = batches.next()
        corrective = 0
        if rng.random() < cfg.corrective_prob:
            corrective = int(rng.integers(1, cfg.max_corrective_clicks + 1))
        result = objective.loss_on_embeddings(**batch, corrective_clicks=corrective)
        optimizer.zero_grad(set_to_none=True)
        result["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        samples += int(batch["labels"].shape[0])
        bar.update(1)
        if step % cfg.log_every == 0:
            elapsed = time.monotonic() - start
            entry = {"step": step, "loss": float(result["loss"].detach()), "loss_first": float(result["loss_first"]),
                     "iou_first": float(result["iou_first"]), "lr": scheduler.get_last_lr()[0],
                     "click_sets_per_second": samples / max(elapsed, 1e-9), "corrective": corrective}
            log.write(json.dumps(entry) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{entry['loss']:.3f}", iou=f"{entry['iou_first']:.3f}")
        if time.monotonic() - last_save > 60 * cfg.save_every_minutes:
            _save_state(out, model, optimizer, scheduler, step, batches, cfg, cache_info)
            last_save = time.monotonic()
    bar.close()
    log.close()
    _save_state(out, model, optimizer, scheduler, step, batches, cfg, cache_info)
    model.eval()
    atomic_save_pretrained(out / "final", model, SignedClickImageProcessor.from_pretrained(cfg.teacher))
    elapsed = time.monotonic() - start
    return {"step": step, "stopped": stopped, "click_sets_per_second": samples / max(elapsed, 1e-9)}
