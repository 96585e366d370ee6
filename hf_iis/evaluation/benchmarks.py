"""Benchmark instances for the click protocols: one (image, gt mask, ignore band) per object.

The files are read by :func:`hf_iis.data.layouts.read_folder`; this module only names the benchmarks and
flattens multi-mask samples into single-mask instances.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BENCHMARKS", "Instance", "instances_from_samples", "load_benchmark", "load_multimask", "load_corpus_split"]

BENCHMARKS: dict[str, tuple[str, str]] = {
    "GrabCut": ("GrabCut", "grabcut"),
    "Berkeley": ("Berkeley", "berkeley"),
    "DAVIS": ("DAVIS", "davis"),
}
"""Benchmark name → (sub-folder of the data root, layout name of ``read_folder``)."""


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


def load_benchmark(name: str, data_root: str | Path | None = None, limit: int | None = None) -> list[Instance]:
    """Instances of a named benchmark (``"GrabCut"``, ``"Berkeley"``, ...), at most ``limit`` of them.

    Raises:
        KeyError: for an unknown benchmark name.
    """
    from hf_iis.data.layouts import default_data_root, read_folder

    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    folder, layout = BENCHMARKS[name]
    root = Path(data_root) if data_root is not None else Path(default_data_root())
    instances = instances_from_samples(read_folder(root / folder, layout, limit=limit))
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

    Samples with fewer than ``min_masks`` masks are skipped.
    """
    from hf_iis.data.layouts import default_data_root, read_folder

    root = Path(data_root) if data_root is not None else Path(default_data_root())
    return [s for s in read_folder(root / folder, layout, limit=limit, ids=ids) if len(s.masks) >= min_masks]


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
