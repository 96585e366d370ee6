"""The teacher-target corpus: `datasets` parquet shards of (image, clicks, teacher maps), built once, read by training.

One row per image (`cache_features`):

    image             Image()               RGB, resized so its longest side is the input size (PNG, lossless)
    id, source        string                the image's id and where it came from (corpus folder or image folder)
    points            List(List(float32))   (C, 2) clicks (x, y) in input pixels: K single clicks, then the
                                            corrective clicks of the sequences
    labels            List(int8)            (C,) +1 / −1
    single_targets    binary                (K, g, g) uint8 teacher maps of the K single clicks (p · 255)
    sequences         List(List(int32))     (M,) lists of indices into `points`: the click sequences
    sequence_targets  binary                (M, g, g) uint8 teacher maps of the full sequences
    grid              List(int32)           (g, g): grid side = input size / stride
    reshaped          List(int32)           (h, w): the image inside the square input

`cache_info.json` records the teacher, its scaling, the stride, the input size, the sources and the settings; the
training refuses a student whose input size or stride differs. Shards (`train-<5 digits>.parquet`, `shard_size`
images each) are written to a temporary name and renamed, and a rerun skips the shards already there, so an
interrupted build resumes (every image's clicks are seeded by (seed, its position), whatever the shard).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .sources import ImageRef
from .teacher_targets import TargetSpec, TeacherTargets

logger = logging.getLogger(__name__)


def cache_features():
    from datasets import Features, List, Value
    from datasets import Image as ImageFeature

    return Features({
        "image": ImageFeature(), "id": Value("string"), "source": Value("string"),
        "points": List(List(Value("float32"))), "labels": List(Value("int8")),
        "single_targets": Value("binary"), "sequences": List(List(Value("int32"))),
        "sequence_targets": Value("binary"), "grid": List(Value("int32")), "reshaped": List(Value("int32")),
    })


def resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    """The image resized (bilinear, as `SignedClickImageProcessor`) so that its longest side is `size`."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    h, w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    if (h, w) == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def make_row(ref: ImageRef, image: np.ndarray, targets: dict[str, Any]) -> dict[str, Any]:
    g = targets["single_targets"].shape[-1]
    return {
        "image": Image.fromarray(image), "id": ref.id, "source": ref.source,
        "points": targets["points"].tolist(), "labels": targets["labels"].tolist(),
        "single_targets": targets["single_targets"].tobytes(), "sequences": targets["sequences"],
        "sequence_targets": targets["sequence_targets"].tobytes(), "grid": [g, g],
        "reshaped": list(targets["reshaped"]),
    }


def decode_maps(blob: bytes, grid) -> np.ndarray:
    """(N, g, g) float32 probabilities from a row's uint8 target bytes."""
    g0, g1 = (int(v) for v in grid)
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, g0, g1).astype(np.float32) / 255.0


def teacher_sha256(folder: str | Path) -> str:
    """The sha256 of a teacher folder's weights: what the targets came from, whatever the folder is called later."""
    from ..training.embedding_cache import file_sha256

    return file_sha256(Path(folder) / "model.safetensors")


def _check_info(out: Path, info: dict[str, Any]) -> None:
    path = out / "cache_info.json"
    if path.is_file():
        old = json.loads(path.read_text())
        old_sha, sha = old.get("teacher_sha256"), info["teacher_sha256"]
        if old_sha is not None and old_sha != sha:  # the same folder name may hold other weights by now
            raise ValueError(f"{out} holds targets of teacher {old['teacher']} (sha256 {old_sha[:12]}…), not of "
                             f"{info['teacher']} (sha256 {sha[:12]}…): use that teacher or another --out")
        old = {**old, "spec": {**asdict(TargetSpec()), **old.get("spec", {})}}  # settings added since read as defaults
        keys = ("teacher", "spec", "stride", "image_size", "seed", "images")
        changed = {k: (old.get(k), info[k]) for k in keys if old.get(k) != info[k]}
        if changed:
            raise ValueError(f"{out} holds a cache built with other settings {changed}: pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1))


def build_cache(teacher, teacher_name: str, refs: list[ImageRef], out: str | Path, spec: TargetSpec, stride: int,
                corpora: dict[str, Any], seed: int = 0, shard_size: int = 64, progress: bool = True,
                part: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """Write the teacher targets of `refs` (in order) under `out`; returns the info (with counts).

    Args:
        teacher: a `SignedClickPredictor`. corpora: corpus folder -> undecoded train split (`sources.open_corpus`).
        part: (k, n): only the shards whose index is k mod n, so n processes (or machines sharing the folder) build
            one cache together; a shard's rows do not depend on who builds it (seeded by its images' positions).
    """
    k, n = part
    if not 0 <= k < n:
        raise ValueError(f"part {k}/{n}: need 0 <= k < n")
    from datasets import Dataset
    from tqdm import tqdm

    out = Path(out)
    size = int(teacher.processor.size)
    info = {"teacher": teacher_name, "teacher_sha256": teacher_sha256(teacher_name), "spec": asdict(spec),
            "stride": int(stride), "image_size": size,
            "seed": int(seed), "images": len(refs), "shard_size": int(shard_size),
            "sources": sorted({r.source for r in refs}), "format": "hf_iis.distillation.cache v1"}
    _check_info(out, info)
    make = TeacherTargets(teacher, spec, stride)
    shards = [i for i in range((len(refs) + shard_size - 1) // shard_size) if i % n == k]
    skipped, written = 0, 0
    bar = tqdm(total=sum(len(refs[i * shard_size : (i + 1) * shard_size]) for i in shards), desc="teacher targets",
               disable=not progress)
    for shard in shards:
        final = out / f"train-{shard:05d}.parquet"
        chunk = refs[shard * shard_size : (shard + 1) * shard_size]
        if final.is_file():
            bar.update(len(chunk))
            continue
        rows = []
        for offset, ref in enumerate(chunk):
            index = shard * shard_size + offset
            try:
                image = resize_longest(ref.load(corpora), size)
            except (OSError, ValueError, KeyError) as error:
                skipped += 1
                logger.warning("skipped %s/%s: %s", ref.source, ref.id, error)
                bar.update(1)
                continue
            rows.append(make_row(ref, image, make(image, np.random.default_rng([seed, index]))))
            bar.update(1)
        tmp = out / f".tmp-{os.getpid()}-{final.name}"  # two builders of one shard never share a temporary
        Dataset.from_list(rows, features=cache_features()).to_parquet(str(tmp))
        os.replace(tmp, final)
        written += len(rows)
    bar.close()
    info.update({"rows_written_now": written, "skipped_now": skipped})
    return info


def read_cache(folder: str | Path):
    """(datasets.Dataset of every shard, cache_info dict)."""
    from datasets import load_dataset

    folder = Path(folder)
    files = sorted(folder.glob("train-*.parquet"))
    info_path = folder / "cache_info.json"
    if not files or not info_path.is_file():
        raise FileNotFoundError(f"no teacher-target cache in {folder}: build one with `python scripts/distill.py "
                                f"cache --out {folder} ...`")
    dataset = load_dataset("parquet", data_files={"train": [str(f) for f in files]}, split="train")
    return dataset, json.loads(info_path.read_text())
