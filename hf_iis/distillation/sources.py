"""Unlabelled images for distillation: a parquet corpus's train split (its masks ignored) and plain image folders.

Only images are read; the teacher makes the targets. Rules that keep benchmarks out of training:
  - a corpus contributes its `train` split only (`split="validation"` is refused: it is the model-selection split);
  - a folder under a benchmark folder (GrabCut*, Berkeley*, DAVIS*, as `hf_iis.data.layouts` refuses) is refused;
  - in a Clothing Co-Parsing folder (a path part named `CCP`, e.g. `extra_data/CCP/photos`) the numbered photos
    0001-1004 are skipped: 0001-0900 are already in the corpus (some in its validation split) and 0901-1004 are
    the CCP-parts / CCP-person benchmarks; the unannotated photos 1005-2098 remain.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CCP_ANNOTATED_IDS = range(1, 1005)
"""CCP photo numbers with masks: 0001-0900 in the corpus, 0901-1004 the benchmarks. Skipped in CCP folders."""


@dataclass(frozen=True)
class ImageRef:
    """One unlabelled image: `source` (corpus folder or image folder), `id`, and where its bytes are."""

    source: str
    id: str
    path: str | None = None  # an image file
    row: int | None = None  # a row of the corpus `source`

    def load(self, corpora: dict[str, object]) -> np.ndarray:
        """(H, W, 3) uint8 RGB; `corpora` maps corpus folders to their undecoded train split."""
        if self.path is not None:
            image = Image.open(self.path)
        else:
            cell = corpora[self.source][self.row]["image"]
            image = Image.open(io.BytesIO(cell["bytes"])) if cell.get("bytes") else Image.open(cell["path"])
        return np.asarray(image.convert("RGB"))


def open_corpus(folder: str | Path, split: str = "train"):
    """The corpus split with its image column left undecoded (rows decode one at a time, masks never)."""
    if split != "train":
        raise ValueError(f"distillation reads a corpus's train split only, not {split!r}: the validation split "
                         "chooses between checkpoints and must stay unseen")
    from datasets import Image as ImageFeature

    from ..data.hf_datasets import load_corpus

    dataset = load_corpus(folder, split)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in ("image", "id", "source")])
    return dataset.cast_column("image", ImageFeature(decode=False))


def corpus_images(folder: str | Path, dataset=None) -> list[ImageRef]:
    """Every image of the corpus's train split."""
    dataset = open_corpus(folder) if dataset is None else dataset
    ids = dataset["id"]
    return [ImageRef(str(folder), f"{source}/{i}", row=k) for k, (i, source) in enumerate(zip(ids, dataset["source"]))]


def _check_folder(folder: Path) -> None:
    from ..data.layouts import BENCHMARK_FOLDER_PREFIXES

    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    for part in folder.resolve().parts:
        if part.lower().startswith(BENCHMARK_FOLDER_PREFIXES):
            raise ValueError(f"{folder} lies in benchmark folder {part!r}: never distil on benchmark images")


def is_ccp_folder(folder: Path) -> bool:
    return any(part.lower() == "ccp" for part in folder.resolve().parts)


def folder_images(folder: str | Path) -> list[ImageRef]:
    """The images directly in `folder`, sorted by name, minus CCP's annotated photos in a CCP folder."""
    folder = Path(folder)
    _check_folder(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if is_ccp_folder(folder):
        files = [p for p in files if not (p.stem.isdigit() and int(p.stem) in CCP_ANNOTATED_IDS)]
    return [ImageRef(str(folder), p.stem, path=str(p)) for p in files]


def select_images(refs: list[ImageRef], limit: int | None, seed: int = 0) -> list[ImageRef]:
    """A fixed seeded shuffle of `refs`, cut to `limit` (None = all): the order the cache is built in."""
    order = np.random.default_rng(seed).permutation(len(refs))
    chosen = [refs[i] for i in order]
    return chosen if limit is None else chosen[: int(limit)]
