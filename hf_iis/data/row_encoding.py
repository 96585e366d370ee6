"""Encoding `Sample`s as rows of the corpus schema (`hf_iis.data.rows.features`) and as a `datasets.Dataset`,
with the counts of what was skipped or dropped (`ConversionStats`). `datasets` is imported lazily."""

from __future__ import annotations

import io
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage

from hf_iis.data.rows import features
from hf_iis.data.sample import Sample

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger("hf_iis.data.hf_datasets")  # the conversion's one logger, whichever module warns


@dataclass
class ConversionStats:
    """Counts from one conversion.

    Attributes:
        rows: rows written, by split.
        masks: masks written, by split.
        instances: source instances read successfully, by source.
        skipped: instances / rows not written, by reason ("missing_file", "corrupt_image", "corrupt_mask",
            "size_mismatch", "no_masks", "image_mismatch").
        dropped_masks: masks left out of kept rows, by reason ("empty_mask", "duplicate").
    """

    rows: Counter = field(default_factory=Counter)
    masks: Counter = field(default_factory=Counter)
    instances: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    dropped_masks: Counter = field(default_factory=Counter)

    def skip(self, reason: str, message: str) -> None:
        """Count a skipped instance / row and log a warning."""
        self.skipped[reason] += 1
        logger.warning("skipped (%s): %s", reason, message)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {k: dict(sorted(getattr(self, k).items())) for k in ("rows", "masks", "instances", "skipped",
                                                                      "dropped_masks")}

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        lines = [f"{split}: {self.rows[split]} images, {self.masks[split]} masks" for split in sorted(self.rows)]
        lines.append(f"instances read: {dict(sorted(self.instances.items()))}")
        lines.append(f"skipped: {sum(self.skipped.values())} {dict(sorted(self.skipped.items()))}")
        lines.append(f"dropped masks: {sum(self.dropped_masks.values())} {dict(sorted(self.dropped_masks.items()))}")
        return "\n".join(lines)


def _png(array: np.ndarray) -> dict[str, Any]:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _mask_png(mask: np.ndarray) -> dict[str, Any]:
    return _png(np.where(mask, 255, 0).astype(np.uint8))


def sample_to_row(sample: Sample, stats: ConversionStats | None = None) -> dict[str, Any] | None:
    """Encode a `Sample` as a row dict, or None (counted in `stats`) when it is not a valid training row."""
    stats = stats if stats is not None else ConversionStats()
    image = np.asarray(sample.image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        stats.skip("corrupt_image", f"{sample.source}/{sample.id}: image is {image.dtype} {image.shape}, "
                                    "not (H, W, 3) uint8")
        return None
    others = [("mask", m) for m in sample.masks] + ([("ignore", sample.ignore)] if sample.ignore is not None else [])
    for what, array in others:
        if np.shape(array) != image.shape[:2]:
            stats.skip("size_mismatch", f"{sample.source}/{sample.id}: {what} (H, W) = {np.shape(array)}, "
                                        f"image {image.shape[:2]}")
            return None
    masks = [np.asarray(m, dtype=bool) for m in sample.masks]
    kept = [m for m in masks if m.any()]
    if len(kept) < len(masks):
        stats.dropped_masks["empty_mask"] += len(masks) - len(kept)
    if not kept:
        stats.skip("no_masks", f"{sample.source}/{sample.id}: no non-empty mask")
        return None
    ignore = None if sample.ignore is None or not np.any(sample.ignore) else _mask_png(np.asarray(sample.ignore, bool))
    if sample.image_file is not None and Path(sample.image_file).is_file():
        image_cell = {"bytes": Path(sample.image_file).read_bytes(), "path": None}
    else:
        image_cell = _png(image)
    return {"image": image_cell, "masks": [_mask_png(m) for m in kept], "ignore": ignore,
            "id": str(sample.id), "source": str(sample.source)}


def samples_to_dataset(samples: Iterable[Sample], stats: ConversionStats | None = None, split: str = "train",
                       cache_dir: str | Path | None = None) -> Dataset:
    """A `datasets.Dataset` with one row per valid `Sample` (built with `Dataset.from_generator`).

    Invalid samples are skipped and counted in `stats` (pass one in to read the counts). `cache_dir` is where the
    Arrow files go (default: the `datasets` cache); every call gets a fresh fingerprint, so nothing stale is reused.
    """
    from datasets import Dataset

    stats = stats if stats is not None else ConversionStats()

    def rows() -> Iterator[dict[str, Any]]:
        for sample in samples:
            row = sample_to_row(sample, stats)
            if row is not None:
                stats.rows[split] += 1
                stats.masks[split] += len(row["masks"])
                yield row

    stream = rows()
    first = next(stream, None)
    if first is None:
        return Dataset.from_dict({k: [] for k in features()}, features=features(), split=split)
    full = chain([first], stream)
    return Dataset.from_generator(lambda: (yield from full), features=features(), split=split,
                                  cache_dir=None if cache_dir is None else str(cache_dir),
                                  fingerprint=uuid.uuid4().hex)
