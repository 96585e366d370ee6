"""The photo side of self-training: which files of the user's folders are read, the clicks the teacher answers, and
which of its answers are kept as pseudo-labels in a corpus (the parquet rows `train_decoder.py cache` reads).

Folders follow the distillation rules (`hf_iis.distillation.sources`): benchmark folders are refused, a CCP folder
loses its annotated photos 0001-1004; a CamVid `test` folder (the CamVid-regions benchmark) and CamVid's label
folders (`*annot`) are refused here as well. A file that does not decode (or that the pipeline would refuse: too
small, over its pixel budget) is skipped and counted, never a crash.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SOURCE = "self_train"
"""The corpus rows' `source`."""
ANCHORED_SOURCE = "self_train_anchored"
"""The rows' `source` when each row is one pseudo-label with its click region (`write_corpus(..., anchored=True)`)."""


@dataclass(frozen=True)
class Photo:
    """One readable photo: a unique id, its file, its size as the pipeline sees it (upright), and whether its bytes
    must be re-encoded to give exactly those pixels (`data`). Bytes are read when written, never all held at once."""

    id: str
    path: str
    width: int
    height: int
    converted: bool = False

    def data(self) -> bytes:
        """The bytes the corpus stores: the file's own, or a PNG of the upright pixels (`read_photo`)."""
        if not self.converted:
            return Path(self.path).read_bytes()
        from ..utils.image_io import load_image

        buffer = io.BytesIO()
        Image.fromarray(load_image(self.path)).save(buffer, format="PNG")
        return buffer.getvalue()


def _refuse_camvid_reserved(folder: Path) -> None:
    parts = [p.lower() for p in folder.resolve().parts]
    if "camvid" in parts:
        name = parts[-1]
        if name in ("test", "testannot"):
            raise ValueError(f"--photos {folder}: the CamVid test split is reserved for the CamVid-regions benchmark; "
                             "self-train on CamVid train (or val) photos")
        if name.endswith("annot"):
            raise ValueError(f"--photos {folder} holds CamVid label maps, not photos: give the photo folder "
                             f"({name.removesuffix('annot')}/)")


def list_photo_files(folders: list[str | Path]) -> list[Path]:
    """The image files directly in each folder (sorted, each file once), after the rules above; a ValueError /
    FileNotFoundError naming the folder when one is missing, a file, refused, or holds no image."""
    from ..distillation.sources import IMAGE_SUFFIXES, folder_images, is_ccp_folder

    files: list[Path] = []
    for folder in map(Path, folders):
        if not folder.exists():
            raise FileNotFoundError(f"--photos {folder}: no such folder")
        if not folder.is_dir():
            raise ValueError(f"--photos {folder} is a file: give a folder of photos")
        _refuse_camvid_reserved(folder)
        refs = folder_images(folder)  # refuses benchmark folders; drops CCP's annotated photos
        if not refs:
            rule = " (in a CCP folder the annotated photos 0001-1004 are left out)" if is_ccp_folder(folder) else ""
            raise ValueError(f"--photos {folder}: no photo there ({', '.join(IMAGE_SUFFIXES)} files directly in the "
                             f"folder){rule}")
        files += [Path(ref.path) for ref in refs]
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return unique


def photos_fingerprint(files: list[Path]) -> str:
    """sha256 over the files' paths and sizes: changes when a photo is added, removed or replaced by another size."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def read_photo(path: Path, index: int) -> Photo:
    """The photo checked as the pipeline loads it (upright, RGB); ValueError / OSError when it cannot be used.

    Its own bytes are stored when they decode to exactly those pixels; otherwise (an EXIF rotation, a mode the
    corpus reader would convert differently) a PNG of them, so that masks and image share one frame downstream."""
    from ..utils.image_io import load_image

    array = load_image(str(path))  # the pipeline's reader: its checks and its budget
    with Image.open(path) as image:
        plain = np.asarray(image.convert("RGB"))
    converted = plain.shape != array.shape or not np.array_equal(plain, array)
    height, width = array.shape[:2]
    return Photo(id=f"{index:05d}-{path.stem}", path=str(path), width=width, height=height, converted=converted)


def draw_clicks(photo: Photo, count: int, seed: int) -> list[list[float]]:
    """`count` positive clicks uniform in the photo's central 90 % (a click on the very border rarely means an
    object), from a generator seeded by (seed, photo id): the same clicks on every rerun."""
    rng = np.random.default_rng([seed, zlib.crc32(photo.id.encode())])
    xs = rng.uniform(0.05, 0.95, count) * (photo.width - 1)
    ys = rng.uniform(0.05, 0.95, count) * (photo.height - 1)
    return [[float(round(x)), float(round(y)), 1.0] for x, y in zip(xs, ys)]


@dataclass(frozen=True)
class LabelFilter:
    """Which teacher answers become pseudo-labels: score >= min_score (the pipeline's `score`: the mean probability
    inside the mask), area within [min_area, max_area] of the photo, and not a near copy (IoU > max_iou) of one kept
    before on the same photo (two clicks on one object)."""

    min_score: float = 0.75
    min_area: float = 0.002
    max_area: float = 0.9
    max_iou: float = 0.9

    def check(self) -> None:
        for name in ("min_score", "min_area", "max_area", "max_iou"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name.replace('_', '-')} must be a number in [0, 1], got {value!r}")
        if self.min_area >= self.max_area:
            raise ValueError(f"min-area ({self.min_area}) must be below max-area ({self.max_area})")

    def select(self, answers: list[tuple[np.ndarray, float]]) -> tuple[list[np.ndarray], dict[str, int]]:
        """The kept masks of one photo's answers [(mask bool (H, W), score)], and counts by reason."""
        kept, counts = self.select_indices(answers)
        return [answers[i][0] for i in kept], counts

    def select_indices(self, answers: list[tuple[np.ndarray, float]]) -> tuple[list[int], dict[str, int]]:
        """`select`, as the indices of the kept answers (so that each keeps the click that asked for it)."""
        kept: list[int] = []
        counts = {"kept": 0, "low_score": 0, "area": 0, "duplicate": 0}
        for index, (mask, score) in enumerate(answers):
            area = float(mask.mean())
            if score < self.min_score:
                counts["low_score"] += 1
            elif area == 0 or not self.min_area <= area <= self.max_area:  # an empty answer is never a label
                counts["area"] += 1
            elif any((mask & answers[k][0]).sum() > self.max_iou * (mask | answers[k][0]).sum() for k in kept):
                counts["duplicate"] += 1
            else:
                kept.append(index)
                counts["kept"] += 1
        return kept, counts


CLICK_REGION_RADIUS = 0.03
"""The click region's radius as a fraction of the photo's longer side: about 10 pixels at the model's 320-pixel
input, so that the region survives the cache's crops and rescales as a clickable area."""


def disk_area(mask: np.ndarray, radius: float = CLICK_REGION_RADIUS) -> float:
    """The area in pixels of `click_region`'s disk on a photo of `mask`'s size: pi r^2, r = radius x longer side."""
    return float(np.pi * (radius * max(mask.shape)) ** 2)


def click_region(mask: np.ndarray, click: list[float] | tuple[float, ...],
                 radius: float = CLICK_REGION_RADIUS) -> np.ndarray:
    """Where the pseudo-label's own click was: the disk of `radius` x (longer side) around the click (x, y), inside
    the mask. Training clicks drawn from it ask the question the teacher answered (a click elsewhere in the answer,
    e.g. on a person's coat in the answer "person", may ask for another object). Empty when the answer does not
    cover the click's neighbourhood."""
    height, width = mask.shape
    r = radius * max(height, width)
    ys, xs = np.ogrid[:height, :width]
    disk = (xs - float(click[0])) ** 2 + (ys - float(click[1])) ** 2 <= r * r
    return disk & mask


def _png(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")


def write_corpus(rows: list[tuple[Photo, list[np.ndarray]]], folder: Path, shard_size: int = 250,
                 anchored: bool = False) -> int:
    """The photos with their kept masks as `<folder>/train-XXXXX-of-YYYYY.parquet` (`hf_iis.data.rows.features`);
    photos with no kept mask are left out. Returns the number of rows.

    `anchored`: each photo's masks are (answer, click region) pairs (`click_region`), and each pair is a row of its
    own whose masks are [answer, click region] (`ANCHORED_SOURCE`): the cache's augmentation moves the region with
    the answer, and the decoder training clicks inside the region for that answer only."""
    from datasets import Dataset

    from ..data.rows import features

    rows = [(photo, masks) for photo, masks in rows if masks]
    if anchored:
        rows = [(photo, list(pair), f"{photo.id}-{k}") for photo, pairs in rows for k, pair in enumerate(pairs)]
    else:
        rows = [(photo, masks, photo.id) for photo, masks in rows]
    source = ANCHORED_SOURCE if anchored else SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, (len(rows) + shard_size - 1) // shard_size)
    for k in range(shards):
        part = rows[k * shard_size:(k + 1) * shard_size]
        records = [{"image": {"bytes": photo.data(), "path": None}, "masks": [_png(m) for m in masks], "ignore": None,
                    "id": row_id, "source": source} for photo, masks, row_id in part]
        target = folder / f"train-{k:05d}-of-{shards:05d}.parquet"
        tmp = folder / f".tmp-{target.name}"
        Dataset.from_list(records, features=features()).to_parquet(str(tmp))
        tmp.replace(target)
    return len(rows)
