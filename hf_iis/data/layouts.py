"""One generic folder reader with a registry of on-disk layouts: `read_folder(root, "grabcut")` and friends.

Each `Layout` is two functions, `list_ids(root, **options)` and `read(root, sample_id, **options)`, plus whether it is
a benchmark. Registered layouts (paths relative to `root`; masks are (H, W) arrays indexed [y, x]):

=============  =====================================================================================================
"grabcut"      `data_GT/<id>.{jpg,JPG,bmp}`, `boundary_GT/<id>.bmp`: 255 object, 128 ignore band, 0 background.
"berkeley"     `images/<id>.{jpg,png}`, `masks/<id>.png`: object where max over channels >= 128. `189011a` and
               `189011b` are two instances of one image; every mask file is its own Sample (100 instances).
"davis"        `img/<id>.{jpg,png}`, `gt/<id>.png`. Palette ("P") PNG: each palette index other than 0 and 255 is one
               object and 255 is void (-> ignore). Any other mode (RITM's 0/255 DAVIS-345): one object, >= 128.
"coco_mval"    `img/<class><nn>_<cocoid>.jpg`, `gt/<same>.png` 0/255, one instance per file; id = file stem.
"bsds500"      `images/<split>/<id>.jpg`, `groundTruth/<split>/<id>.mat` (MATLAB v5; `groundTruth{k}.Segmentation`
               is annotator k's label map). Every region of every annotator is a mask; pixel-identical masks are
               kept once; regions under `min_area_fraction` (default 0.001 = 0.1 % of the image) are dropped.
               Options: `split="test"`, `min_area_fraction=0.001`.
"coco_json"    a COCO annotation file + image folder (see `hf_iis.data.coco_json`): one mask per non-crowd
               annotation, crowd annotations -> ignore. Options: `annotations=`, `images=`.
"ecssd", "ccp", "weizmann", "camvid"
               the four extra datasets (ECSSD, Clothing Co-Parsing, Weizmann horses, CamVid), read from
               `default_extra_root()`: see `hf_iis.data.extra_layouts` for their formats and options.

No path is derived from where the package is installed: callers pass the data folder (`root`, `data_root`), or set
`$HF_IIS_DATA_ROOT` (the folder holding `GrabCut/`, `Berkeley/`, `COCO_MVal/`, `BSDS500/`; README, "Data") and
`$HF_IIS_EXTRA_ROOT` (the extra datasets).
=============  =====================================================================================================

Images are always (H, W, 3) uint8 RGB (grayscale converted). A mask whose size differs from its image, or a file
that does not decode, raises `SampleError` (a `ValueError` naming the file). Empty masks are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hf_iis.data.coco_json import list_coco_json_ids, read_coco_json_sample
from hf_iis.data.extra_layouts import EXTRA_LAYOUTS, check_extra_training_ids, check_extra_training_source
from hf_iis.data.sample import (
    Sample,
    SampleError,
    check_size,
    dedupe,
    find_file,
    nonempty,
    read_label,
    read_rgb,
    require_file,
)

DATA_ROOT_ENV = "HF_IIS_DATA_ROOT"
EXTRA_ROOT_ENV = "HF_IIS_EXTRA_ROOT"
BSDS500_MIN_AREA_FRACTION = 0.001
"""BSDS500 regions smaller than this fraction of the image (0.1 %) are not training targets."""


@dataclass(frozen=True)
class Layout:
    """How one dataset lies on disk.

    Attributes:
        name: registry key, also written as `Sample.source`.
        list_ids: `(root: Path, **options) -> list[str]`, sorted instance ids.
        read: `(root: Path, sample_id: str, **options) -> Sample`.
        benchmark: True for evaluation benchmarks: building a *training* corpus from one raises `ValueError`.
        folder: the layout's folder name under the data root, if it has one there.
    """

    name: str
    list_ids: Callable[..., list[str]]
    read: Callable[..., Sample]
    benchmark: bool = False
    folder: str | None = None


class _Registry(dict):
    """A dict whose missing-key error lists the known keys."""

    def __missing__(self, key: str) -> Layout:
        raise KeyError(f"unknown layout {key!r}; known layouts: {', '.join(sorted(self))}")


def default_data_root(fallback: str | Path | None = None) -> Path:
    """The data folder (`GrabCut/`, `Berkeley/`, `COCO_MVal/`, `BSDS500/`, ...): `$HF_IIS_DATA_ROOT`, else
    `fallback` (a caller's own default, e.g. a script's folder beside its repository).

    Raises:
        FileNotFoundError: when the variable is unset and no fallback is given (the message says what to pass).
    """
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env)
    if fallback is not None:
        return Path(fallback)
    raise FileNotFoundError(
        f"no data folder given: pass data_root= (scripts: --data-root) or set {DATA_ROOT_ENV} to the folder that "
        "holds the benchmark and corpus folders (GrabCut/, Berkeley/, COCO_MVal/, BSDS500/; README, 'Data')")


def default_extra_root(data_root: str | Path | None = None) -> Path:
    """Folder of the extra datasets (`ECSSD/`, `CCP/`, `Weizmann/`, `CamVid/`): `$HF_IIS_EXTRA_ROOT`, else
    `<data root>/extra` when it exists (`data_root`, else `$HF_IIS_DATA_ROOT`); else `FileNotFoundError` naming
    the variable."""
    env = os.environ.get(EXTRA_ROOT_ENV)
    if env:
        if not Path(env).is_dir():
            raise FileNotFoundError(f"{EXTRA_ROOT_ENV}={env} is not a folder")
        return Path(env)
    if data_root is None:
        data_root = os.environ.get(DATA_ROOT_ENV) or None
    fallback = Path(data_root) / "extra" if data_root is not None else None
    if fallback is not None and fallback.is_dir():
        return fallback
    where = f", or place them in {fallback}" if fallback is not None else ", or pass extra_root= (--extra-root)"
    raise FileNotFoundError(
        f"the extra datasets (ECSSD, CCP, Weizmann, CamVid) were not found: set {EXTRA_ROOT_ENV} to the folder that "
        f"holds them (rebuild it with scripts/extract_extra_data.py){where}")


def _stems(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p.stem for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def _sample(sample_id: str, image: tuple[np.ndarray, bool], image_path: Path, masks: list[np.ndarray],
            ignore: np.ndarray | None, source: str) -> Sample:
    array, was_rgb = image
    return Sample(
        id=sample_id,
        image=array,
        masks=nonempty(masks),
        ignore=ignore if ignore is not None and ignore.any() else None,
        source=source,
        image_file=image_path if was_rgb else None,
    )


def _read_binary(root: Path, sample_id: str, source: str, image_dir: str, image_exts: tuple[str, ...],
                 mask_dir: str) -> Sample:
    """One object per mask file: object where the (channel-max) mask value is >= 128."""
    image_path = find_file(root / image_dir, sample_id, image_exts)
    image = read_rgb(image_path)
    mask_path = root / mask_dir / f"{sample_id}.png"
    label = read_label(mask_path)
    check_size(image[0], label, mask_path)
    return _sample(sample_id, image, image_path, [label >= 128], None, source)


def _read_grabcut(root: Path, sample_id: str) -> Sample:
    image_path = find_file(root / "data_GT", sample_id, (".jpg", ".JPG", ".bmp", ".png"))
    image = read_rgb(image_path)
    mask_path = root / "boundary_GT" / f"{sample_id}.bmp"
    label = read_label(mask_path)
    check_size(image[0], label, mask_path)
    return _sample(sample_id, image, image_path, [label > 128], label == 128, "grabcut")


def _read_berkeley(root: Path, sample_id: str) -> Sample:
    return _read_binary(root, sample_id, "berkeley", "images", (".jpg", ".png"), "masks")


def _read_coco_mval(root: Path, sample_id: str) -> Sample:
    return _read_binary(root, sample_id, "coco_mval", "img", (".jpg",), "gt")


def _read_davis(root: Path, sample_id: str) -> Sample:
    mask_path = require_file(root / "gt" / f"{sample_id}.png")
    try:
        with Image.open(mask_path) as im:
            is_palette = im.mode == "P"
    except OSError as err:
        raise SampleError("corrupt_mask", f"corrupt mask file {mask_path}: {err}") from err
    if not is_palette:
        return _read_binary(root, sample_id, "davis", "img", (".jpg", ".png"), "gt")
    image_path = find_file(root / "img", sample_id, (".jpg", ".png"))
    image = read_rgb(image_path)
    label = read_label(mask_path, keep_palette=True)
    check_size(image[0], label, mask_path)
    objects = [int(k) for k in np.unique(label) if k not in (0, 255)]
    return _sample(sample_id, image, image_path, [label == k for k in objects], label == 255, "davis")


def _list_bsds500(root: Path, split: str = "test", **_: Any) -> list[str]:
    return _stems(root / "groundTruth" / split, (".mat",))


def _read_bsds500(root: Path, sample_id: str, split: str = "test",
                  min_area_fraction: float = BSDS500_MIN_AREA_FRACTION) -> Sample:
    import scipy.io

    image_path = find_file(root / "images" / split, sample_id, (".jpg", ".png"))
    image = read_rgb(image_path)
    mat_path = require_file(root / "groundTruth" / split / f"{sample_id}.mat")
    try:
        annotators = np.atleast_1d(scipy.io.loadmat(mat_path, squeeze_me=True, struct_as_record=False)["groundTruth"])
        segmentations = [np.asarray(a.Segmentation) for a in annotators]
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise SampleError("corrupt_mask", f"corrupt BSDS500 ground-truth file {mat_path}: {err}") from err
    min_area = min_area_fraction * image[0].shape[0] * image[0].shape[1]
    masks: list[np.ndarray] = []
    for seg in segmentations:
        check_size(image[0], seg, mat_path)
        for label in np.unique(seg):
            mask = seg == label
            if mask.sum() >= min_area:
                masks.append(mask)
    return _sample(sample_id, image, image_path, dedupe(masks), None, "bsds500")


def _lister(folder: str, suffixes: tuple[str, ...]) -> Callable[..., list[str]]:
    def list_ids(root: Path, **_: Any) -> list[str]:
        return _stems(Path(root) / folder, suffixes)

    return list_ids


LAYOUTS: dict[str, Layout] = _Registry(
    {
        "grabcut": Layout("grabcut", _lister("boundary_GT", (".bmp",)), _read_grabcut, True, "GrabCut"),
        "berkeley": Layout("berkeley", _lister("masks", (".png",)), _read_berkeley, True, "Berkeley"),
        "davis": Layout("davis", _lister("gt", (".png",)), _read_davis, True, "DAVIS"),
        "coco_mval": Layout("coco_mval", _lister("gt", (".png",)), _read_coco_mval, folder="COCO_MVal"),
        "bsds500": Layout("bsds500", _list_bsds500, _read_bsds500, folder="BSDS500"),
        "coco_json": Layout("coco_json", list_coco_json_ids, read_coco_json_sample),
        **{name: Layout(name, lister, reader, folder=folder)
           for name, (lister, reader, folder) in EXTRA_LAYOUTS.items()},
    }
)
"""Registry of layouts by name; an unknown name raises `KeyError` listing the known ones."""


def list_ids(root: str | Path, layout: str, **options: Any) -> list[str]:
    """Sorted instance ids of the `layout` folder at `root` (one per benchmark instance)."""
    return LAYOUTS[layout].list_ids(Path(root), **options)


def read_sample(root: str | Path, layout: str, sample_id: str, **options: Any) -> Sample:
    """Read one instance; raises `SampleError` (a `ValueError` naming the file) when it is missing or invalid."""
    return LAYOUTS[layout].read(Path(root), sample_id, **options)


def read_folder(root: str | Path, layout: str, limit: int | None = None, ids: list[str] | None = None,
                **options: Any) -> Iterator[Sample]:
    """Yield the `Sample`s of the `layout` folder at `root`, in `list_ids` order (or the order of `ids`).

    `limit` keeps the first `limit` ids; `options` go to the layout (e.g. `split="val"` for "bsds500").
    """
    spec = LAYOUTS[layout]  # unknown names fail here, not at the first next()
    root = Path(root)
    wanted = spec.list_ids(root, **options) if ids is None else list(ids)
    wanted = wanted[:limit] if limit is not None else wanted
    return (spec.read(root, sample_id, **options) for sample_id in wanted)


def benchmark_instances(root: str | Path, layout: str, **options: Any) -> Iterator[Sample]:
    """One `Sample` per benchmark instance: the same as `read_folder(root, layout)`."""
    return read_folder(root, layout, **options)


BENCHMARK_FOLDER_PREFIXES = ("grabcut", "berkeley", "davis")


def check_training_source(root: str | Path, layout: str, **options: Any) -> None:
    """Raise `ValueError` if training on (`root`, `layout`) would leak a benchmark into training.

    Refused: benchmark layouts (grabcut, berkeley, davis); any path with a folder named like a benchmark
    (GrabCut*, Berkeley*, DAVIS*, case-insensitive); BSDS500 splits other than "test" (Berkeley's and GrabCut's
    images come from BSDS500 train / val); the reserved slices of the extra datasets: "ccp" without
    `subset="train"` (ids 0901-1004 are the CCP benchmarks), "camvid" with `split="test"` (CamVid-regions); and
    "ecssd" without its exclusion list.
    """
    spec = LAYOUTS[layout]
    if spec.benchmark:
        raise ValueError(f"layout {layout!r} is an evaluation benchmark: never build a training corpus from it")
    for part in Path(root).resolve().parts:
        if part.lower().startswith(BENCHMARK_FOLDER_PREFIXES):
            raise ValueError(f"{root} lies in benchmark folder {part!r}: never build a training corpus from it")
    if layout == "bsds500" and options.get("split", "test") != "test":
        raise ValueError("only the BSDS500 test split may be trained on: Berkeley and GrabCut use its train/val images")
    check_extra_training_source(Path(root), layout, **options)


def check_training_ids(root: str | Path, layout: str, ids: list[str], **options: Any) -> None:
    """Raise `ValueError` if `ids` of a training source hold a reserved or excluded id (CCP 0901-1004, ECSSD
    exclusions); `build_corpus` calls it on every listed source."""
    check_extra_training_ids(layout, list(ids), Path(root), **options)
