"""Benchmark instances for the click protocols: one (image, gt mask, ignore band) per object.

The files are read by :func:`hf_iis.data.layouts.read_folder`; this module only names the benchmarks and
flattens multi-mask samples into single-mask instances.

Object-level benchmarks (the data root: ``data_root=``, else ``$HF_IIS_DATA_ROOT``; README, "Data"): ``GrabCut``
(50), ``Berkeley`` (100), ``DAVIS`` (345, not shipped here).
Region-level benchmarks on the reserved slices of the extra datasets (``$HF_IIS_EXTRA_ROOT``, else
``<data root>/extra``; see :func:`hf_iis.data.layouts.default_extra_root`), never trained on:

================  ===================================================================================  =========
``CCP-parts``     CCP ids 0901-1004: one instance per connected component (8-connectivity) of each       1,243
                  labelled part / garment region with area >= 400 px (104 images)
``CCP-person``    the same 104 images: the whole-person mask (union of labels != 0)                        104
``CamVid-regions``  CamVid test split (233 frames): one instance per connected component                   3,862
                  (4-connectivity) of each class with area >= 400 px, void (label 11) as the ignore
                  region, at most 20 per frame (the 20 largest, largest first)
================  ===================================================================================  =========

(instance counts measured on the full datasets, at the commits ``scripts/extract_extra_data.py`` pins.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BENCHMARKS", "Benchmark", "Instance", "instances_from_samples", "load_benchmark", "load_multimask",
           "load_corpus_split", "validation_instances", "VALIDATION_PREFIX"]


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark lies and how to read it.

    Attributes:
        folder: sub-folder of its root.
        layout: layout name of ``read_folder``.
        options: layout options (e.g. ``{"split": "test", "max_instances": 20}``).
        root: ``"data"`` for the data root, ``"extra"`` for the extra-dataset root (``$HF_IIS_EXTRA_ROOT``).
    """

    folder: str
    layout: str
    options: dict[str, Any] = field(default_factory=dict)
    root: str = "data"


BENCHMARKS: dict[str, Benchmark] = {
    "GrabCut": Benchmark("GrabCut", "grabcut"),
    "Berkeley": Benchmark("Berkeley", "berkeley"),
    "DAVIS": Benchmark("DAVIS", "davis"),
    "CCP-parts": Benchmark("CCP", "ccp", {"subset": "reserved", "masks": "parts", "min_area": 400}, "extra"),
    "CCP-person": Benchmark("CCP", "ccp", {"subset": "reserved", "masks": "person", "min_area": 400}, "extra"),
    "CamVid-regions": Benchmark("CamVid", "camvid", {"split": "test", "min_area": 400, "max_instances": 20},
                                "extra"),
}
"""Benchmark name → :class:`Benchmark` (folder, layout, layout options, which root)."""


@dataclass
class Instance:
    """One object to segment.

    Attributes:
        id: ``<sample id>`` (or ``<sample id>#<k>`` when the sample has several masks).
        image: ``(H, W, 3)`` uint8 RGB (shared, not copied, between instances of one image).
        gt: ``(H, W)`` bool object mask.
        ignore: ``(H, W)`` bool ignore band (GrabCut's 128 pixels) or ``None``.
    """

    id: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None = None


def instances_from_samples(samples: Iterable) -> list[Instance]:
    """Flatten ``Sample``s (``id, image, masks, ignore``) into one :class:`Instance` per mask."""
    out: list[Instance] = []
    for s in samples:
        for k, mask in enumerate(s.masks):
            iid = s.id if len(s.masks) == 1 else f"{s.id}#{k}"
            out.append(Instance(iid, s.image, np.asarray(mask, dtype=bool), s.ignore))
    return out


def load_benchmark(name: str, data_root: str | Path | None = None, limit: int | None = None,
                   extra_root: str | Path | None = None) -> list[Instance]:
    """Instances of a named benchmark (``"GrabCut"``, ``"Berkeley"``, ``"CCP-parts"``, ...), at most ``limit``.

    ``data_root`` defaults to ``$HF_IIS_DATA_ROOT`` (:func:`~hf_iis.data.layouts.default_data_root`); the region
    benchmarks read ``extra_root`` (default ``default_extra_root(data_root)``: ``$HF_IIS_EXTRA_ROOT``, else
    ``<data root>/extra``).

    Raises:
        KeyError: for an unknown benchmark name.
        FileNotFoundError: when the data root or the extra root is needed and not given (the message names
            ``HF_IIS_DATA_ROOT`` / ``HF_IIS_EXTRA_ROOT``).
    """
    from hf_iis.data.layouts import default_data_root, default_extra_root, read_folder

    if name.startswith(VALIDATION_PREFIX):
        return validation_instances(name[len(VALIDATION_PREFIX):], limit)
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    spec = BENCHMARKS[name]
    if spec.root == "extra":
        root = Path(extra_root) if extra_root is not None else default_extra_root(data_root)
    else:
        root = Path(data_root) if data_root is not None else default_data_root()
    instances = instances_from_samples(read_folder(root / spec.folder, spec.layout, limit=limit, **spec.options))
    return instances[:limit] if limit is not None else instances


VALIDATION_PREFIX = "validation:"
"""`validation:<corpus folder>` names a training corpus's validation split as a dataset (every mask an instance), so
that settings of the click loop (zoom, TTA, ...) are chosen on validation, never on a benchmark."""


def validation_instances(corpus_dir: str, limit: int | None = None) -> list[Instance]:
    """Every mask of the validation split of the parquet corpus `corpus_dir`, in the corpus's order; at most
    `limit` (the first ones). Raises FileNotFoundError (naming the folder) when there is no such corpus."""
    if not corpus_dir or not any(Path(corpus_dir).glob("validation-*.parquet")):
        raise FileNotFoundError(f"{VALIDATION_PREFIX}{corpus_dir}: no parquet corpus there (validation-*.parquet); "
                                "build one with scripts/build_datasets.py")
    instances = instances_from_samples(load_corpus_split(corpus_dir, "validation", min_masks=1))
    return instances[:limit] if limit is not None else instances


def load_multimask(
    folder: str,
    layout: str,
    data_root: str | Path | None = None,
    limit: int | None = None,
    ids: list[str] | None = None,
    min_masks: int = 2,
) -> list:
    """Multi-mask ``Sample``s (e.g. BSDS500 regions) for the zero-shot proposal protocol.

    A relative ``folder`` lies under ``data_root`` (default ``$HF_IIS_DATA_ROOT``). Samples with fewer than
    ``min_masks`` masks are skipped.
    """
    from hf_iis.data.layouts import default_data_root, read_folder

    path = Path(folder)
    if not path.is_absolute():
        path = (Path(data_root) if data_root is not None else default_data_root()) / path
    return [s for s in read_folder(path, layout, limit=limit, ids=ids) if len(s.masks) >= min_masks]


def load_corpus_split(
    corpus_dir: str | Path, split: str = "validation", limit: int | None = None, min_masks: int = 2
) -> list:
    """Multi-mask ``Sample``s of a parquet training corpus split (``hf_iis.data.load_corpus``; needs ``datasets``).

    Rows with fewer than ``min_masks`` masks are skipped; at most ``limit`` samples are returned.
    """
    from hf_iis.data import load_corpus, row_to_sample

    out = []
    for row in load_corpus(corpus_dir, split):
        if len(row["masks"]) >= min_masks:
            out.append(row_to_sample(row))
            if limit is not None and len(out) >= limit:
                break
    return out
