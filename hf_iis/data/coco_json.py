"""The "coco_json" layout: a COCO-format annotation file plus an image folder, read with pycocotools.

`root` is either the annotation JSON itself or a folder holding `annotations.json` (or exactly one `*.json`, there or
in `root/annotations/`). Images are looked up as `<images>/<file_name>`, where `images` defaults to the `images/`
folder beside the JSON (else the JSON's folder). Sample ids are COCO image ids as strings, listed in numeric order,
for images with at least one non-crowd annotation. Each non-crowd annotation (polygon or RLE) is one (H, W) bool
mask; crowd annotations are OR-ed into `ignore`. pycocotools is imported only when this layout is used.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np

from hf_iis.data.sample import Sample, SampleError, nonempty, read_rgb


def resolve_coco_json(root: str | Path, annotations: str | Path | None = None,
                      images: str | Path | None = None) -> tuple[Path, Path]:
    """(annotation file, image folder) for a "coco_json" root (see the module docstring)."""
    root = Path(root)
    if annotations is not None:
        ann = Path(annotations)
    elif root.is_file():
        ann = root
    elif (root / "annotations.json").is_file():
        ann = root / "annotations.json"
    else:
        found = sorted(root.glob("*.json")) + sorted((root / "annotations").glob("*.json"))
        if len(found) != 1:
            raise FileNotFoundError(f"need exactly one COCO annotation JSON in {root} (found {len(found)}); "
                                    "pass annotations=...")
        ann = found[0]
    if images is None:
        base = ann.parent.parent if ann.parent.name == "annotations" else ann.parent
        images = base / "images" if (base / "images").is_dir() else base
    return ann, Path(images)


@functools.lru_cache(maxsize=4)
def _load(ann_file: str, mtime_ns: int) -> Any:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
        return COCO(ann_file)


def _coco(ann: Path) -> Any:
    if not ann.is_file():
        raise FileNotFoundError(f"missing COCO annotation file: {ann}")
    return _load(str(ann.resolve()), ann.stat().st_mtime_ns)


def list_coco_json_ids(root: Path, annotations: str | Path | None = None, images: str | Path | None = None,
                       **_: Any) -> list[str]:
    """Image ids (as strings, numeric order) with at least one non-crowd annotation."""
    coco = _coco(resolve_coco_json(root, annotations, images)[0])
    return [str(i) for i in sorted(coco.getImgIds()) if coco.getAnnIds(imgIds=[i], iscrowd=False)]


def read_coco_json_sample(root: Path, sample_id: str, annotations: str | Path | None = None,
                          images: str | Path | None = None, **_: Any) -> Sample:
    """One image with one mask per non-crowd annotation (annotation-id order); crowd regions -> `ignore`."""
    ann_file, image_dir = resolve_coco_json(root, annotations, images)
    coco = _coco(ann_file)
    info = coco.imgs.get(int(sample_id))
    if info is None:
        raise SampleError("missing_file", f"image id {sample_id} is not in {ann_file}")
    image_path = image_dir / info["file_name"]
    image, was_rgb = read_rgb(image_path)
    if (info["height"], info["width"]) != image.shape[:2]:
        raise SampleError(
            "size_mismatch",
            f"{ann_file} says image {image_path} is (H, W) = {(info['height'], info['width'])}, "
            f"the file is {image.shape[:2]}",
        )
    anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=[int(sample_id)], iscrowd=None)), key=lambda a: a["id"])
    masks = [coco.annToMask(a).astype(bool) for a in anns if not a.get("iscrowd", 0)]
    crowd = [coco.annToMask(a).astype(bool) for a in anns if a.get("iscrowd", 0)]
    ignore = np.logical_or.reduce(crowd) if crowd else None
    return Sample(
        id=sample_id,
        image=image,
        masks=nonempty(masks),
        ignore=ignore if ignore is not None and ignore.any() else None,
        source="coco_json",
        image_file=image_path if was_rgb else None,
    )
