"""The extra datasets' part of the training corpus: which slices are sources, and which rows are validation.

Training sources (with an extra root; see `hf_iis.data.extra_layouts` for the formats):

    ("ecssd",    <extra>/ECSSD,    {"exclude_file": <ecssd_exclude.txt>})  926 images (74 BSDS / benchmark ids dropped)
    ("ccp",      <extra>/CCP,      {"subset": "train"})                    ids 0001-0900 (0901-1004 are benchmarks)
    ("weizmann", <extra>/Weizmann, {})                                      328 images
    ("camvid",   <extra>/CamVid,   {"split": "train"}), (... {"split": "val"})   367 + 101 frames (test is a benchmark)

Validation rule for these rows (fixed, hash-based like COCO-MVal's): an image is validation when
`validation_score("<layout>/<id>")` (SHA-256 of e.g. "ccp/0042" mapped to [0, 1)) is below
`EXTRA_VALIDATION_FRACTIONS[layout]`: 0.05 for ECSSD, CCP and Weizmann, and 0.1 of the CamVid *val* split frames
(CamVid train frames are always train). About 51 + 52 + 12 + 8 = 123 images, so with COCO-MVal's ~74 the validation
split stays under ~200 images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_iis.data.extra_layouts import ECSSD_EXCLUDE_NAME

EXTRA_VALIDATION_FRACTIONS = {"ecssd": 0.05, "ccp": 0.05, "weizmann": 0.05, "camvid": 0.1}
"""Fraction of each extra source's images (CamVid: of its val split only) that form the validation split."""

EXTRA_VALIDATION_RULE = (
    "ECSSD / CCP (0001-0900) / Weizmann images with validation_score('<layout>/<id>') < 0.05, and CamVid val-split "
    "frames with validation_score('camvid/<id>') < 0.1 (CamVid train frames are train)"
)


def ecssd_exclude_file(extra_root: Path, data_root: Path) -> Path:
    """`<extra root>/ecssd_exclude.txt` if present, else `<data root>/ecssd_exclude.txt` (where it ships)."""
    local = Path(extra_root) / ECSSD_EXCLUDE_NAME
    return local if local.is_file() else Path(data_root) / ECSSD_EXCLUDE_NAME


def extra_sources(extra_root: str | Path, data_root: str | Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """The extra training sources as `(layout, root, options)` (see the module docstring)."""
    extra_root = Path(extra_root)
    if not extra_root.is_dir():
        raise FileNotFoundError(f"extra root {extra_root} is not a folder (rebuild it with "
                                "scripts/extract_extra_data.py, or set HF_IIS_EXTRA_ROOT)")
    return [
        ("ecssd", extra_root / "ECSSD", {"exclude_file": ecssd_exclude_file(extra_root, Path(data_root))}),
        ("ccp", extra_root / "CCP", {"subset": "train"}),
        ("weizmann", extra_root / "Weizmann", {}),
        ("camvid", extra_root / "CamVid", {"split": "train"}),
        ("camvid", extra_root / "CamVid", {"split": "val"}),
    ]


def is_extra_validation(layout: str, key: str, options: dict[str, Any], score: float) -> bool:
    """Whether an extra-source image with `validation_score(f"{layout}/{key}") == score` is validation."""
    if layout not in EXTRA_VALIDATION_FRACTIONS:
        return False
    if layout == "camvid" and options.get("split", "train") != "val":
        return False
    return score < EXTRA_VALIDATION_FRACTIONS[layout]
