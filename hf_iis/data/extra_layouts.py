"""Readers for the four extra datasets (ECSSD, Clothing Co-Parsing, Weizmann horses, CamVid; their folder is written
by `scripts/extract_extra_data.py`), registered in `hf_iis.data.layouts.LAYOUTS`.

Paths are relative to each dataset's folder (`<extra root>/ECSSD`, ...; the extra root is `$HF_IIS_EXTRA_ROOT`, see
`hf_iis.data.layouts.default_extra_root`). Masks are (H, W) bool arrays indexed [y, x].

==========  =========================================================================================================
"ecssd"     `images/NNNN.jpg`, `ground_truth_mask/NNNN.png` (binary, object where >= 128; one salient-object mask).
            74 ids are BSDS images (36 of them GrabCut / Berkeley benchmark images) and must never be used: the ids
            listed in the exclusion file (one id a line, `#` comments) are not listed, and reading one raises
            `ValueError`. Option `exclude_file=` (default `<root>/../ecssd_exclude.txt`); without a list, listing
            and reading refuse with `ValueError`. 926 usable ids.
"ccp"       Clothing Co-Parsing: `photos/NNNN.jpg`, `annotations/pixel-level/NNNN.mat` with
            `scipy.io.loadmat(f)["groundtruth"]` an (H, W) uint8 label map (0 background, 1-58 the names of
            `label_list.mat`). Masks: the person (union of labels != 0, one mask) and the parts: every connected
            component (8-connectivity) of each label with area >= `min_area` (default 400 px). Option
            `masks="all"` (person first, then parts) | `"parts"` | `"person"`. Only photos with an annotation are
            listed (0001-1004; e.g. 1005 is not). Option `subset="all"` | `"train"` (0001-0900) | `"reserved"`
            (0901-1004, the CCP-parts / CCP-person benchmarks, never trained on).
"weizmann"  Weizmann horses: `rgb/horseNNN.jpg`, mask `figure_ground/horseNNN.jpg` (lossy JPEG, object where
            > 127). The mask has the size of `gray/`, not of `rgb/`: it is resized to the rgb image with
            nearest-neighbour sampling (option `resample="nearest"` | `"bilinear"`, the latter resizes the grey
            mask before the threshold). 328 images.
"camvid"    CamVid 11-class (SegNet): `<split>/X.png` + `<split>annot/X.png`, labels 0-10 classes, 11 (and above) void
            -> `ignore`. One mask per connected component (4-connectivity) of each class with area >= `min_area`
            (default 400 px), ordered by area, largest first; `max_instances` (default None = all) keeps only the
            largest ones. Options `split="train"` | `"val"` | `"test"` (test is reserved for the CamVid-regions
            benchmark), `connectivity=4` | `8`.
==========  =========================================================================================================

Images are (H, W, 3) uint8 RGB as a viewer shows them: `read_rgb` applies a rotating EXIF orientation (none of the
four datasets carries one; checked on the full sets). A missing file raises `SampleError` / `FileNotFoundError`
naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

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

MIN_AREA = 400
"""Default minimum region area in pixels for CCP parts and CamVid regions (~0.2 % of a 480x360 CamVid frame)."""
CCP_TRAIN_IDS = range(1, 901)
"""CCP ids 0001-0900: training data."""
CCP_RESERVED_IDS = range(901, 1005)
"""CCP ids 0901-1004: the CCP-parts / CCP-person benchmarks, never trained on."""
CCP_SUBSETS = {"all": range(1, 10**6), "train": CCP_TRAIN_IDS, "reserved": CCP_RESERVED_IDS}
CAMVID_VOID = 11
CAMVID_SPLITS = ("train", "val", "test")
ECSSD_EXCLUDE_NAME = "ecssd_exclude.txt"


def _stems(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p.stem for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def _sample(sample_id: str, image: tuple[np.ndarray, bool], image_path: Path, masks: list[np.ndarray],
            ignore: np.ndarray | None, source: str) -> Sample:
    array, was_rgb = image
    return Sample(id=sample_id, image=array, masks=nonempty(masks),
                  ignore=ignore if ignore is not None and ignore.any() else None, source=source,
                  image_file=image_path if was_rgb else None)


def components(binary: np.ndarray, min_area: int = MIN_AREA, connectivity: int = 8) -> list[tuple[int, np.ndarray]]:
    """(area, mask) of each connected component of `binary` with area >= `min_area`, in label-scan order."""
    from scipy import ndimage

    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    structure = np.ones((3, 3), bool) if connectivity == 8 else None
    labels, count = ndimage.label(binary, structure=structure)
    if count == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    return [(int(areas[k]), labels == k) for k in range(1, count + 1) if areas[k] >= min_area]


# --- ECSSD -------------------------------------------------------------------------------------------------------

def ecssd_exclusions(root: Path, exclude_file: str | Path | None = None) -> set[str]:
    """The excluded ECSSD ids: `exclude_file`, else `<root>/../ecssd_exclude.txt`; `ValueError` if absent.

    A missing list is a refusal (`ValueError`), not a skippable missing file: ECSSD is never read without it.
    """
    path = Path(exclude_file) if exclude_file is not None else Path(os.path.abspath(root)).parent / ECSSD_EXCLUDE_NAME
    if not path.is_file():
        raise ValueError(
            f"ECSSD exclusion list not found: {path}. ECSSD holds 74 BSDS images (36 of them GrabCut / Berkeley "
            f"benchmark images) that must be dropped: pass exclude_file=<path to {ECSSD_EXCLUDE_NAME}> (it comes "
            f"with the data folder; scripts/extract_extra_data.py copies it) or put the file next to the ECSSD folder")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def _list_ecssd(root: Path, exclude_file: str | Path | None = None, **_: Any) -> list[str]:
    excluded = ecssd_exclusions(root, exclude_file)
    return [i for i in _stems(Path(root) / "ground_truth_mask", (".png",)) if i not in excluded]


def _read_ecssd(root: Path, sample_id: str, exclude_file: str | Path | None = None) -> Sample:
    if sample_id in ecssd_exclusions(root, exclude_file):
        raise ValueError(f"ECSSD id {sample_id!r} is excluded (a BSDS / benchmark image): never read it")
    image_path = find_file(Path(root) / "images", sample_id, (".jpg", ".png"))
    image = read_rgb(image_path)
    mask_path = Path(root) / "ground_truth_mask" / f"{sample_id}.png"
    label = read_label(mask_path)
    check_size(image[0], label, mask_path)
    return _sample(sample_id, image, image_path, [label >= 128], None, "ecssd")


# --- CCP ---------------------------------------------------------------------------------------------------------

def _ccp_range(subset: str) -> range:
    if subset not in CCP_SUBSETS:
        raise ValueError(f"CCP subset must be one of {sorted(CCP_SUBSETS)}, got {subset!r}")
    return CCP_SUBSETS[subset]


def _list_ccp(root: Path, subset: str = "all", **_: Any) -> list[str]:
    wanted = _ccp_range(subset)
    photos = set(_stems(Path(root) / "photos", (".jpg",)))
    return [i for i in _stems(Path(root) / "annotations" / "pixel-level", (".mat",))
            if i in photos and i.isdigit() and int(i) in wanted]


def ccp_label_map(root: Path, sample_id: str) -> np.ndarray:
    """The (H, W) uint8 label map of `annotations/pixel-level/<id>.mat` (0 = background)."""
    import scipy.io

    mat_path = require_file(Path(root) / "annotations" / "pixel-level" / f"{sample_id}.mat")
    try:
        return np.asarray(scipy.io.loadmat(mat_path)["groundtruth"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SampleError("corrupt_mask", f"corrupt CCP annotation file {mat_path}: {err}") from err


def ccp_regions(label_map: np.ndarray, min_area: int = MIN_AREA, connectivity: int = 8) -> list[tuple[int, np.ndarray]]:
    """(label, mask) pairs: (0, the person = labels != 0) first, then each part component >= `min_area` by label."""
    out = [(0, label_map != 0)]
    for label in np.unique(label_map):
        if label != 0:
            out += [(int(label), mask) for _, mask in components(label_map == label, min_area, connectivity)]
    return out


def ccp_label_names(root: Path) -> list[str]:
    """Names of the CCP labels from `label_list.mat`, index = label value ("null" = 0, "accessories", ...)."""
    import scipy.io

    mat = scipy.io.loadmat(require_file(Path(root) / "label_list.mat"))["label_list"]
    return [str(np.ravel(x)[0]) if np.size(x) else "" for x in np.ravel(mat)]


def _read_ccp(root: Path, sample_id: str, subset: str = "all", masks: str = "all", min_area: int = MIN_AREA,
              connectivity: int = 8) -> Sample:
    if not sample_id.isdigit() or int(sample_id) not in _ccp_range(subset):
        raise ValueError(f"CCP id {sample_id!r} is not in subset {subset!r}")
    if masks not in ("all", "parts", "person"):
        raise ValueError(f"CCP masks must be 'all', 'parts' or 'person', got {masks!r}")
    image_path = find_file(Path(root) / "photos", sample_id, (".jpg",))
    image = read_rgb(image_path)
    label_map = ccp_label_map(root, sample_id)
    check_size(image[0], label_map, Path(root) / "annotations" / "pixel-level" / f"{sample_id}.mat")
    person = [label_map != 0] if np.count_nonzero(label_map) >= min_area else []
    parts = [] if masks == "person" else [m for _, m in ccp_regions(label_map, min_area, connectivity)[1:]]
    chosen = {"all": person + parts, "parts": parts, "person": person}[masks]
    return _sample(sample_id, image, image_path, dedupe(chosen), None, "ccp")


# --- Weizmann horses ---------------------------------------------------------------------------------------------

def _read_weizmann(root: Path, sample_id: str, resample: str = "nearest") -> Sample:
    if resample not in ("nearest", "bilinear"):
        raise ValueError(f"resample must be 'nearest' or 'bilinear', got {resample!r}")
    image_path = find_file(Path(root) / "rgb", sample_id, (".jpg",))
    image = read_rgb(image_path)
    grey = read_label(Path(root) / "figure_ground" / f"{sample_id}.jpg").astype(np.uint8)
    h, w = image[0].shape[:2]
    if resample == "nearest":
        binary = np.where(grey > 127, 255, 0).astype(np.uint8)
        mask = np.asarray(Image.fromarray(binary).resize((w, h), Image.NEAREST)) > 127
    else:
        mask = np.asarray(Image.fromarray(grey).resize((w, h), Image.BILINEAR)) > 127
    return _sample(sample_id, image, image_path, [mask], None, "weizmann")


# --- CamVid ------------------------------------------------------------------------------------------------------

def _camvid_split(split: str) -> str:
    if split not in CAMVID_SPLITS:
        raise ValueError(f"CamVid split must be one of {CAMVID_SPLITS}, got {split!r}")
    return split


def _list_camvid(root: Path, split: str = "train", **_: Any) -> list[str]:
    return _stems(Path(root) / f"{_camvid_split(split)}annot", (".png",))


def camvid_regions(label: np.ndarray, min_area: int = MIN_AREA, max_instances: int | None = None,
                   connectivity: int = 4) -> list[tuple[int, np.ndarray]]:
    """(class, mask) per component >= `min_area` of each class 0-10, largest first (ties: class, scan order)."""
    found = [(area, int(c), k, mask) for c in np.unique(label) if c < CAMVID_VOID
             for k, (area, mask) in enumerate(components(label == c, min_area, connectivity))]
    found.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(c, mask) for _, c, _, mask in found[:max_instances]]


def _read_camvid(root: Path, sample_id: str, split: str = "train", min_area: int = MIN_AREA,
                 max_instances: int | None = None, connectivity: int = 4) -> Sample:
    split = _camvid_split(split)
    image_path = find_file(Path(root) / split, sample_id, (".png",))
    image = read_rgb(image_path)
    label_path = Path(root) / f"{split}annot" / f"{sample_id}.png"
    label = read_label(label_path)
    check_size(image[0], label, label_path)
    masks = [m for _, m in camvid_regions(label, min_area, max_instances, connectivity)]
    return _sample(sample_id, image, image_path, masks, label >= CAMVID_VOID, "camvid")


def _lister(folder: str, suffixes: tuple[str, ...]) -> Callable[..., list[str]]:
    def list_ids(root: Path, **_: Any) -> list[str]:
        return _stems(Path(root) / folder, suffixes)

    return list_ids


EXTRA_LAYOUTS: dict[str, tuple[Callable[..., list[str]], Callable[..., Sample], str]] = {
    "ecssd": (_list_ecssd, _read_ecssd, "ECSSD"),
    "ccp": (_list_ccp, _read_ccp, "CCP"),
    "weizmann": (_lister("figure_ground", (".jpg",)), _read_weizmann, "Weizmann"),
    "camvid": (_list_camvid, _read_camvid, "CamVid"),
}
"""name -> (list_ids, read, folder under the extra root); `layouts.py` wraps them as `Layout`s."""


def check_extra_training_source(root: Path, layout: str, **options: Any) -> None:
    """Raise `ValueError` for a reserved slice (CCP other than `subset="train"`, the CamVid test split) and for an
    ECSSD folder without its exclusion list."""
    if layout == "ccp" and options.get("subset", "all") != "train":
        raise ValueError("CCP ids 0901-1004 are reserved for the CCP-parts / CCP-person benchmarks: train on CCP "
                         "only with subset='train' (ids 0001-0900)")
    if layout == "camvid" and options.get("split", "train") == "test":
        raise ValueError("the CamVid test split is reserved for the CamVid-regions benchmark: train on train / val")
    if layout == "ecssd":
        ecssd_exclusions(root, options.get("exclude_file"))


def check_extra_training_ids(layout: str, ids: list[str], root: Path | None = None, **options: Any) -> None:
    """Raise `ValueError` if `ids` holds a reserved CCP id (0901-1004) or an excluded ECSSD id."""
    if layout == "ccp":
        reserved = [i for i in ids if i.isdigit() and int(i) in CCP_RESERVED_IDS]
        if reserved:
            raise ValueError(f"CCP ids {reserved[:5]}{'...' if len(reserved) > 5 else ''} are reserved for the "
                             "CCP benchmarks (0901-1004): never train on them")
    if layout == "ecssd" and root is not None:
        bad = sorted(set(ids) & ecssd_exclusions(root, options.get("exclude_file")))
        if bad:
            raise ValueError(f"ECSSD ids {bad[:5]} are excluded (BSDS / benchmark images): never train on them")
