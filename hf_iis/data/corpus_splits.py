"""The corpus's fixed train / validation split: which rows are validation, decided by a hash of a row key.

COCO-MVal instances of one COCO image (file `<class><nn>_<cocoid>.jpg`) share one key, the COCO id, so every
instance of an image lands in the same split; the extra sources use their own fixed slices
(`hf_iis.data.extra_corpus`)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from hf_iis.data.extra_corpus import EXTRA_VALIDATION_FRACTIONS, is_extra_validation

VALIDATION_SOURCES = ("coco_mval",)
COCO_MVAL_NAME = re.compile(r"^(?P<category>.+?)(?P<index>\d{2})_(?P<coco_id>\d+)$")


def validation_score(key: str) -> float:
    """Deterministic pseudo-uniform number in [0, 1) for a group key: the first 8 bytes of SHA-256(key)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64


def group_key(layout: str, sample_id: str) -> str:
    """Row key of an instance: the COCO image id for "coco_mval" (`<class><nn>_<cocoid>`), else the id itself."""
    if layout == "coco_mval":
        match = COCO_MVAL_NAME.match(sample_id)
        if match is None:
            raise ValueError(f"COCO-MVal id {sample_id!r} is not <class><nn>_<cocoid>")
        return match["coco_id"]
    return sample_id


def split_of(layout: str, key: str, val_fraction: float, options: dict[str, Any] | None = None) -> str:
    """"validation" for the fixed tenth (by default) of COCO-MVal images and the fixed slice of the extra sources
    (`hf_iis.data.extra_corpus`, independent of `val_fraction`), else "train"."""
    if layout in VALIDATION_SOURCES and validation_score(key) < val_fraction:
        return "validation"
    if layout in EXTRA_VALIDATION_FRACTIONS and is_extra_validation(layout, key, options or {},
                                                                    validation_score(f"{layout}/{key}")):
        return "validation"
    return "train"
