"""A tiny real-image corpus (a few COCO_MVal instances) for tests and smoke runs, with the corpus's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def corpus_features():
    """The corpus's feature schema (`hf_iis.data.rows.features`)."""
    from ..data.rows import features

    return features()


def coco_mval_rows(root: str | Path, n: int = 4, max_side: int | None = 160, start: int = 0) -> list[dict]:
    """`n` rows (image, one mask) from `<root>/COCO_MVal`, optionally downscaled so the longest side is `max_side`."""
    root = Path(root) / "COCO_MVal"
    rows = []
    for gt_path in sorted((root / "gt").glob("*.png"))[start : start + n]:
        image = Image.open(root / "img" / f"{gt_path.stem}.jpg").convert("RGB")
        mask = Image.open(gt_path).convert("L")
        if max_side:
            scale = max_side / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image, mask = image.resize(size, Image.BILINEAR), mask.resize(size, Image.NEAREST)
        mask = Image.fromarray(((np.asarray(mask) > 127) * 255).astype(np.uint8))
        rows.append({"image": image, "masks": [mask], "ignore": None, "id": gt_path.stem, "source": "coco_mval"})
    return rows


def make_dataset(rows: list[dict]):
    from datasets import Dataset

    columns = {key: [row[key] for row in rows] for key in ("image", "masks", "ignore", "id", "source")}
    return Dataset.from_dict(columns, features=corpus_features())


def write_corpus(out: str | Path, splits: dict[str, list[dict]]) -> Path:
    """Write `<out>/<split>-00000-of-00001.parquet` for each split (the corpus layout); returns `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        make_dataset(rows).to_parquet(str(out / f"{split}-00000-of-00001.parquet"))
    return out
