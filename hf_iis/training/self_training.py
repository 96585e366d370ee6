"""Self-training: adapt a checkpoint to a folder of unlabelled photos with its own scaled answers (the seed's loop).

Three stages under one output folder, each skipped when a rerun finds it done:

  1. pseudo-labels: K random positive clicks per photo (`self_training_photos.draw_clicks`), each answered by the
     teacher through the pipeline with TTA views and zoom-in (`hf_iis.labelling.label_dataset`: chunks, resumable,
     split between processes under `accelerate launch`); answers that pass `LabelFilter` become a parquet corpus
     (`<out>/corpus`, a `train` split only: nothing here selects between checkpoints): with `anchored` (the
     default) one row per answer, its masks [answer, click region] (`self_training_photos.click_region`); without
     it one row per photo with its answers as masks;
  2. the teacher's frozen image embeddings of V views of every row (`<out>/cache`, `embedding_cache.py`);
  3. a decoder-training leg from the teacher's own decoder (same maps, same output prior: step 0 is the teacher,
     `decoder_run_config`), resumable (`decoder_training.py`), ending in `<out>/final` (save_pretrained): an
     anchored view is clicked once, positive, in its click region; `replay` caches join the draw.

`<out>/self_train_info.json` records the teacher (path, sha256 of its weights), the settings, the photos'
fingerprint and each stage's counts. A rerun with another teacher, other settings or other photos is refused
naming both sides, before any work; `max_minutes`, `threads` and `device` may change between legs, the settings
outside `LABEL_SETTINGS` until the corpus is written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .self_training_photos import LabelFilter

RECORD = "self_train_info.json"
LEG_SETTINGS = ("max_minutes", "threads", "device")
LABEL_SETTINGS = ("photos", "model", "tta", "zoom_in", "clicks_per_photo", "seed")
"""What the labelling depends on; the other settings may still change while no corpus is written (a filter that kept
nothing is retried with another --min-score without labelling again)."""
ZOOM_MODES = {"auto": "auto", "on": True, "off": False}
MIN_CLICK_REGION_SHARE = 0.5  # an answer keeps its click when it covers half the disk around it (`click_region`)
PHOTOS_PER_CHUNK = 8  # the labelling's unit of resuming and of the processes' shares (a photo's clicks together)


@dataclass(frozen=True)
class SelfTrainSettings:
    """A self-training run; `tta=1, zoom_in="off"` is the unscaled teacher."""

    photos: tuple[str, ...]
    model: str
    tta: int = 2
    zoom_in: str = "auto"  # auto | on | off
    clicks_per_photo: int = 4
    min_score: float = 0.75
    min_area: float = 0.002
    max_area: float = 0.9
    views: int = 2  # cached views per photo: the plain photo + augmented ones
    steps: int = 1000
    lr: float = 1.0e-4
    batch_size: int = 16
    seed: int = 0
    # train on each pseudo-label's own click (a region around it) instead of clicks redrawn anywhere in the answer:
    # the default since it was measured (+1.7 CCP-parts, +1.9 CamVid-regions; False lost, docs/results_self_training.md)
    anchored: bool = True
    replay: tuple[str, ...] = ()  # embedding caches of labelled data from the same teacher, joined to the draw
    max_minutes: float | None = None
    threads: int = 2
    device: str | None = None

    def label_filter(self) -> LabelFilter:
        return LabelFilter(self.min_score, self.min_area, self.max_area)

    def check(self) -> None:
        """One-line ValueErrors for values out of range."""
        from ..scaling.tta import resolve_views

        if not self.photos:
            raise ValueError("give at least one --photos folder")
        for name in ("tta", "clicks_per_photo", "views", "steps", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        resolve_views(self.tta)
        if self.zoom_in not in ZOOM_MODES:
            raise ValueError(f"--zoom-in must be one of {', '.join(ZOOM_MODES)}, got {self.zoom_in!r}")
        self.label_filter().check()
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or self.lr < 0:
            raise ValueError(f"--lr must be a number >= 0, got {self.lr!r}")
        if self.max_minutes is not None and (isinstance(self.max_minutes, bool) or self.max_minutes <= 0):
            raise ValueError(f"--max-minutes must be a positive number, got {self.max_minutes!r}")
        if not isinstance(self.anchored, bool):
            raise ValueError(f"anchored must be True or False, got {self.anchored!r}")

    def recorded(self) -> dict[str, Any]:
        """The settings a rerun must repeat."""
        values = dataclasses.asdict(self)
        values["photos"] = list(self.photos)
        values["replay"] = list(self.replay)
        return {k: v for k, v in values.items() if k not in LEG_SETTINGS}


def check_teacher(model: str | Path) -> tuple[Path, Any]:
    """The teacher folder and its config: a local save_pretrained folder of the click model with a saliency branch
    (the embedding cache stores its maps)."""
    from ..models.signed_click.configuration_signed_click import SignedClickConfig

    folder = Path(model)
    if not folder.is_dir() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"--model {model}: not a checkpoint folder holding model.safetensors (a save_pretrained "
                         "folder of the click model)")
    kind = json.loads((folder / "config.json").read_text()).get("model_type") if (folder / "config.json").is_file() \
        else None
    if kind != SignedClickConfig.model_type:
        raise ValueError(f"--model {model}: model_type {kind!r}; self-training adapts the click model "
                         f"({SignedClickConfig.model_type!r}), not the student")
    config = SignedClickConfig.from_pretrained(str(folder))
    if config.saliency_encoder is None:
        raise ValueError(f"--model {model} has no saliency branch: the embedding cache needs one")
    return folder, config


def decoder_run_config(settings: SelfTrainSettings, out: Path, config):
    """The decoder leg: the teacher's own maps and output prior, so nothing is grown and step 0 is the teacher."""
    from .decoder_training import DecoderRunConfig

    return DecoderRunConfig(teacher=settings.model, cache=str(out / "cache"), output_dir=str(out),
                            num_mask_outputs=config.num_mask_outputs, prior_in_output=config.prior_in_output,
                            batch_size=settings.batch_size, lr=float(settings.lr),
                            warmup_steps=min(50, max(1, settings.steps // 10)), max_steps=settings.steps,
                            max_minutes=settings.max_minutes, seed=settings.seed, num_threads=settings.threads,
                            shards_in_memory=8, extra_caches=list(settings.replay))


def check_replay(settings: SelfTrainSettings, teacher_sha: str) -> None:
    """Each --replay folder: an embedding cache (`scripts/train_decoder.py cache`) of the teacher being adapted."""
    from .embedding_cache import CACHE_INFO, check_cache_teacher, list_shards

    for folder in settings.replay:
        if not (Path(folder) / CACHE_INFO).is_file() or not list_shards(folder):
            raise ValueError(f"--replay {folder}: not an embedding cache (no {CACHE_INFO} or no shard); build one "
                             "with scripts/train_decoder.py cache --teacher <the --model> --corpus <labelled corpus>")
        try:
            check_cache_teacher(folder, f"--model {settings.model}", teacher_sha)
        except ValueError as error:
            raise ValueError(f"--replay {error}") from None


def _check_record(out: Path, settings: SelfTrainSettings, teacher_sha: str, fingerprint: str,
                  n_files: int) -> dict[str, Any] | None:
    """The record of an earlier run in `out` (None if none), refused when it does not fit this one."""
    path = out / RECORD
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise ValueError(f"--out {out} is not empty and holds no {RECORD}: give a new or empty folder")
        return None
    record = json.loads(path.read_text())
    old = record["teacher"]
    if old["sha256"] != teacher_sha:
        raise ValueError(f"{out} holds pseudo-labels of teacher {old['path']} (sha256 {old['sha256'][:12]}…), not of "
                         f"--model {settings.model} (sha256 {teacher_sha[:12]}…): use that teacher or a new --out")
    wanted = settings.recorded()
    record["settings"] = {"anchored": False, "replay": [], **record["settings"]}  # runs from before the options
    if "pseudo_labels" not in record["stages"]:
        wanted = {k: v for k, v in wanted.items() if k in LABEL_SETTINGS}
    changed = [f"{k}: {record['settings'].get(k)!r} there, {v!r} now" for k, v in wanted.items()
               if record["settings"].get(k) != v]
    if changed:
        raise ValueError(f"{out} holds a self-training run with other settings ({'; '.join(changed)}): rerun with "
                         "those settings or give a new --out")
    if record["photos"]["fingerprint"] != fingerprint:
        raise ValueError(f"the photos of --photos changed since {out} was labelled ({record['photos']['files']} "
                         f"files then, {n_files} now): give a new --out")
    return record


def _write_record(out: Path, record: dict[str, Any]) -> None:
    tmp = out / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out / RECORD)


def read_photos(files: list[Path], progress: bool = True) -> tuple[list, list[dict[str, str]]]:
    """The readable photos, and {file, reason} for each file skipped (corrupt, too small, over the pixel budget):
    counted, never fatal, unless no file is readable at all."""
    from tqdm import tqdm

    from .self_training_photos import read_photo

    photos, skipped = [], []
    for index, path in enumerate(tqdm(files, desc="reading photos", disable=not progress)):
        try:
            photos.append(read_photo(path, index))
        except (OSError, ValueError) as error:
            skipped.append({"file": str(path), "reason": " ".join(str(error).split())})
    if not photos:
        raise ValueError(f"none of the {len(files)} files of --photos could be read as a photo "
                         f"(first: {skipped[0]['reason']})")
    return photos, skipped


def _pseudo_labels(settings: SelfTrainSettings, photos: list, skipped: list, out: Path, state,
                   progress: bool) -> dict | None:
    """Stage 1; returns its counts (main process) or None (the other processes, whose work ends with the labels)."""
    import numpy as np
    from datasets import Dataset, Features, Image, List, Value, load_from_disk

    from ..labelling import LabelSpec, label_dataset
    from .self_training_photos import click_region, disk_area, draw_clicks, write_corpus

    requests = out / "pseudo_labels" / "requests"
    if state.is_main_process:  # one row per (photo, click), the labelling's unit; files of 64 photos bound the memory
        shutil.rmtree(requests, ignore_errors=True)  # a killed write's leftovers would join the rows
        requests.mkdir(parents=True)
        schema = Features({"image": Image(), "id": Value("string"), "clicks": List(List(Value("float32")))})
        for start in range(0, len(photos), 64):
            rows = []
            for photo in photos[start:start + 64]:
                image = {"bytes": photo.data(), "path": None}  # one read, shared by the photo's clicks
                rows += [{"image": image, "id": photo.id, "clicks": [click]}
                         for click in draw_clicks(photo, settings.clicks_per_photo, settings.seed)]
            target = requests / f"requests-{start // 64:05d}.parquet"  # names sort in photo order
            tmp = requests / f".tmp-{target.name}"
            Dataset.from_list(rows, features=schema).to_parquet(str(tmp))
            tmp.replace(target)
    state.wait_for_everyone()
    spec = LabelSpec(id_column="id", clicks_column="clicks", tta=settings.tta,
                     zoom_in=ZOOM_MODES[settings.zoom_in], chunk_size=PHOTOS_PER_CHUNK * settings.clicks_per_photo)
    label_dataset(requests, out / "pseudo_labels", spec, model=settings.model, device=settings.device,
                  progress=progress)
    if not state.is_main_process:
        return None
    answers: dict[str, list] = {p.id: [] for p in photos}
    clicks: dict[str, list] = {p.id: [] for p in photos}
    for row in load_from_disk(str(out / "pseudo_labels" / "dataset")):
        answers[row["id"]].append((np.asarray(row["mask"].convert("L")) > 127, float(row["score"])))
        clicks[row["id"]].append(row["clicks"][0])
    label_filter = settings.label_filter()
    totals = {"kept": 0, "low_score": 0, "area": 0, "duplicate": 0}
    if settings.anchored:
        totals["click_outside"] = 0  # the answer does not cover its own click's neighbourhood
    kept = []
    for photo in photos:
        indices, counts = label_filter.select_indices(answers[photo.id])
        if settings.anchored:
            pairs = [(answers[photo.id][i][0], click_region(answers[photo.id][i][0], clicks[photo.id][i]))
                     for i in indices]
            labels = [pair for pair in pairs if pair[1].sum() >= MIN_CLICK_REGION_SHARE * disk_area(pair[1])]
            counts = {**counts, "kept": len(labels), "click_outside": len(pairs) - len(labels)}
        else:
            labels = [answers[photo.id][i][0] for i in indices]
        kept.append((photo, labels))
        totals = {k: totals[k] + counts[k] for k in totals}
    if totals["kept"] == 0:
        raise ValueError(f"no pseudo-label passed the filter ({totals}): lower --min-score or widen "
                         "--min-area / --max-area")
    rows = write_corpus(kept, out / "corpus", anchored=settings.anchored)
    shutil.rmtree(requests)  # the photos' copies, one per click (the corpus: each photo once, or once per label)
    scores = np.array([score for answer in answers.values() for _, score in answer])
    return {"photos_read": len(photos), "photos_skipped": len(skipped), "skipped": skipped,
            "clicks": len(photos) * settings.clicks_per_photo, "labels": totals,
            "photos_in_corpus": sum(1 for _, labels in kept if labels), "corpus_rows": rows,  # rows: labels if anchored
            # how the scores of all answers spread (min, quartiles, max): what --min-score cuts into
            "score_quantiles": [round(float(q), 4) for q in np.quantile(scores, [0, 0.25, 0.5, 0.75, 1])]}


def _cache(settings: SelfTrainSettings, out: Path, config, progress: bool) -> dict:
    """Stage 2, as `scripts/train_decoder.py cache`: resumable, shards already written are kept."""
    from tqdm import tqdm

    from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from ..models.signed_click.modeling_signed_click import SignedClickModel
    from .augment import InputFormat
    from .config import AugmentParams
    from .data import load_split
    from .embedding_cache import CacheInfo, build_embedding_cache, list_shards

    cache = out / "cache"
    info = CacheInfo.for_run(settings.model, config, out / "corpus", "train", settings.views, settings.seed,
                             AugmentParams(), anchored=settings.anchored)
    model = SignedClickModel.from_pretrained(settings.model).eval()
    processor = SignedClickImageProcessor.from_pretrained(settings.model)
    rows = load_split(str(out / "corpus"), "train")
    with tqdm(total=len(rows), desc="embedding cache", unit="photo", disable=not progress) as bar:
        build_embedding_cache(model, rows, cache, info, InputFormat.of_processor(processor), progress=bar)
    return {"shards": len(list_shards(cache)), "photos": len(rows), "views": settings.views}


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))  # before PartialState exists: one "reading photos" bar per launch


def _trained_step(out: Path) -> int:
    run = out / "state" / "run.json"
    return int(json.loads(run.read_text())["step"]) if run.is_file() else 0


def self_train(settings: SelfTrainSettings, out: str | Path, progress: bool = True) -> dict[str, Any] | None:
    """Run (or resume) the three stages; returns the record (main process; None in the others)."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from ..cli_checks import check_output_dir
    from .decoder_training import train_decoder
    from .embedding_cache import file_sha256
    from .self_training_photos import list_photo_files, photos_fingerprint

    # every check before any work or output
    settings.check()
    out = check_output_dir(out, "--out").resolve()  # the leg's state records its folders: one spelling of each
    files = list_photo_files(list(settings.photos))
    _, config = check_teacher(settings.model)
    teacher_sha = file_sha256(Path(settings.model) / "model.safetensors")
    fingerprint = photos_fingerprint(files)
    check_replay(settings, teacher_sha)
    record = _check_record(out, settings, teacher_sha, fingerprint, len(files))
    cfg = decoder_run_config(settings, out, config)
    cfg.check()
    labelled = record is not None and "pseudo_labels" in record["stages"]
    photos, skipped = ([], []) if labelled else read_photos(files, progress and _rank() == 0)  # before any output

    import torch

    torch.set_num_threads(settings.threads)  # every stage, the labelling included (oversubscribed threads crawl)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))  # as labelling.py: a CPU launch too
    if record is None:
        record = {"teacher": {"path": settings.model, "sha256": teacher_sha},
                  "photos": {"folders": list(settings.photos), "files": len(files), "fingerprint": fingerprint},
                  "stages": {}}
    record["settings"] = settings.recorded()  # equal to the recorded ones, but for the filter before any corpus
    state.wait_for_everyone()  # every process has read the record before the main one writes it
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _write_record(out, record)
    started = time.perf_counter()
    stages = record["stages"]
    if "pseudo_labels" not in stages:
        counts = _pseudo_labels(settings, photos, skipped, out, state, progress)
        if counts is None:  # another process of an accelerate launch: the labels were its share
            return None
        stages["pseudo_labels"] = counts
        _write_record(out, record)
    elif not state.is_main_process:
        return None
    # the cache and the decoder leg run in the main process only (one process is what decoder_training supports)
    if "cache" not in stages:
        stages["cache"] = _cache(settings, out, config, progress)
        _write_record(out, record)
    if _trained_step(out) < settings.steps or not (out / "final" / "model.safetensors").is_file():
        result = train_decoder(cfg, progress=progress)
        stages["train"] = {"step": result["step"], "stopped": result["stopped"], "steps": settings.steps}
        _write_record(out, record)
    record["seconds_this_run"] = round(time.perf_counter() - started, 1)
    return record
