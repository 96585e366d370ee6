"""Conversion of `Sample`s to Hugging Face `datasets`, and the fixed training corpus (parquet shards).

One row per image, with the features of `hf_iis.data.rows` (the schema and the row decoder, `features()` and
`row_to_sample`, live there and are re-exported here):

    image   Image()        RGB; the source file's bytes when they decode to exactly the Sample's pixels, else PNG
    masks   List(Image())  one mode-"L" PNG per object / region, 0 background, 255 object
    ignore  Image()        mode-"L" PNG, 255 = ignore pixel (GrabCut's band, COCO crowd regions); None if nothing
    id      string         e.g. "000000281693" (COCO image id) or "100007" (BSDS500 id)
    source  string         layout name, e.g. "coco_mval"

The training corpus (`build_corpus`) is COCO-MVal + the BSDS500 test split. COCO-MVal instances of one COCO image
(file `<class><nn>_<cocoid>.jpg`; 800 instances on 722 images) become one row with several masks. The validation
split is fixed: the COCO-MVal images whose `validation_score(cocoid)` (a SHA-256 hash of the COCO id, mapped to
[0, 1)) is below `val_fraction`, so every instance of one image lands in the same split; BSDS500 is all train.
With `extra_root=` (the folder of the four extra public datasets, as `scripts/extract_extra_data.py` writes it) the
corpus also holds ECSSD (minus its exclusion list), CCP 0001-0900, the Weizmann horses and CamVid train + val, and
the validation split gains a small fixed slice of them (`hf_iis.data.extra_corpus`: 5 % of ECSSD / CCP / Weizmann
images, 10 % of the CamVid val frames, by `validation_score("<layout>/<id>")`). Benchmarks (GrabCut, Berkeley,
DAVIS, BSDS500 train/val) and the reserved slices (CCP 0901-1004, CamVid test) are refused as training sources.

Bad instances (missing / corrupt file, mask-image size mismatch, no non-empty mask) are skipped, logged as warnings
and counted in `ConversionStats`; empty and duplicate masks are dropped from kept rows and counted too.
`datasets` is imported lazily, so `import hf_iis.data` works without it.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hf_iis.data.corpus_splits import (  # noqa: F401 - re-exported: the corpus API in one place
    COCO_MVAL_NAME,
    VALIDATION_SOURCES,
    group_key,
    split_of,
    validation_score,
)
from hf_iis.data.extra_corpus import (
    EXTRA_VALIDATION_RULE,
    extra_sources,
)
from hf_iis.data.extra_layouts import EXTRA_LAYOUTS
from hf_iis.data.layouts import (
    LAYOUTS,
    check_training_ids,
    check_training_source,
    default_data_root,
    list_ids,
    read_sample,
)
from hf_iis.data.row_encoding import (  # noqa: F401 - re-exported
    ConversionStats,
    sample_to_row,
    samples_to_dataset,
)
from hf_iis.data.rows import features, row_to_sample  # noqa: F401 - row_to_sample re-exported
from hf_iis.data.sample import Sample, SampleError, dedupe

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, IterableDataset

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation")
DEFAULT_SOURCES = ("coco_mval", "bsds500")
EXTRA_SOURCES = ("ecssd", "ccp", "weizmann", "camvid")
"""Added to `DEFAULT_SOURCES` when `build_corpus` gets an `extra_root` (see `hf_iis.data.extra_corpus`)."""
SourceSpec = str | tuple[str, str | Path] | tuple[str, str | Path, dict[str, Any]]




def _resolve_source(source: SourceSpec, data_root: Path,
                    extra_root: Path | None = None) -> list[tuple[str, Path, dict[str, Any]]]:
    if isinstance(source, str):
        if source in EXTRA_LAYOUTS:
            if extra_root is None:
                raise ValueError(f"source {source!r} lies in the extra-data root: pass extra_root= "
                                 "(scripts/build_datasets.py --extra-root)")
            return [spec for spec in extra_sources(extra_root, data_root) if spec[0] == source]
        folder = LAYOUTS[source].folder
        if folder is None:
            raise ValueError(f"layout {source!r} has no default folder: pass (layout, root[, options])")
        return [(source, data_root / folder, {})]
    layout, root, *rest = source
    return [(layout, Path(root), dict(rest[0]) if rest else {})]


def _read_or_skip(root: Path, layout: str, sample_id: str, stats: ConversionStats, **options: Any) -> Sample | None:
    try:
        sample = read_sample(root, layout, sample_id, **options)
    except SampleError as err:
        stats.skip(err.reason, str(err))
        return None
    except FileNotFoundError as err:
        stats.skip("missing_file", str(err))
        return None
    stats.instances[layout] += 1
    return sample


def merge_instances(samples: Sequence[Sample], row_id: str, stats: ConversionStats | None = None) -> Sample:
    """One row from instances of one image: the first image, all masks (pixel-identical repeats once).

    Instances whose image differs from the first one's are skipped ("image_mismatch").
    """
    stats = stats if stats is not None else ConversionStats()
    first = samples[0]
    masks: list[np.ndarray] = []
    for sample in samples:
        if sample.image.shape != first.image.shape or not np.array_equal(sample.image, first.image):
            stats.skip("image_mismatch", f"{sample.source}/{sample.id}: image differs from {first.source}/{first.id}")
            continue
        masks.extend(sample.masks)
    unique = dedupe(masks)
    if len(unique) < len(masks):
        stats.dropped_masks["duplicate"] += len(masks) - len(unique)
    return Sample(id=row_id, image=first.image, masks=unique, ignore=first.ignore, source=first.source,
                  image_file=first.image_file)


def _progress(items: list[str], desc: str, enabled: bool) -> Iterable[str]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="inst")


def grouped_samples(root: str | Path, layout: str, ids: list[str], stats: ConversionStats,
                    progress: bool = False, **options: Any) -> Iterator[Sample]:
    """Read `ids` (skipping bad ones) and yield one Sample per `group_key` (instances of one image merged)."""
    root = Path(root)
    ordered = sorted(ids, key=lambda i: (group_key(layout, i), i))
    for key, members in groupby(_progress(ordered, layout, progress), key=lambda i: group_key(layout, i)):
        samples = [s for s in (_read_or_skip(root, layout, i, stats, **options) for i in members) if s is not None]
        if not samples:
            continue
        yield samples[0] if len(samples) == 1 and key == samples[0].id else merge_instances(samples, key, stats)


def write_shards(dataset: Dataset, out_dir: str | Path, split: str, shard_size: int) -> list[Path]:
    """Write `dataset` as `out_dir/<split>-XXXXX-of-YYYYY.parquet`, `shard_size` rows each; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{split}-*.parquet"):
        old.unlink()
    if len(dataset) == 0:
        return []
    num = math.ceil(len(dataset) / shard_size)
    paths = [out_dir / f"{split}-{i:05d}-of-{num:05d}.parquet" for i in range(num)]
    for i, path in enumerate(paths):
        dataset.shard(num_shards=num, index=i, contiguous=True).to_parquet(str(path))
    return paths


def build_corpus(data_root: str | Path | None = None, out_dir: str | Path = "data_cache/corpus",
                 sources: Sequence[SourceSpec] | None = None, val_fraction: float = 0.1, shard_size: int = 250,
                 progress: bool = False, cache_dir: str | Path | None = None,
                 extra_root: str | Path | None = None) -> ConversionStats:
    """Build the training corpus as parquet shards `out_dir/{train,validation}-*.parquet` + README.md/dataset_info.json.

    Args:
        data_root: folder holding the layouts' default folders (default `default_data_root()`).
        sources: layout names (read from `data_root/<layout folder>`; the extra layouts "ecssd", "ccp", "weizmann",
            "camvid" from `extra_root` with their training options, see `hf_iis.data.extra_corpus`) or
            `(layout, root[, options])` tuples. Default: `DEFAULT_SOURCES`, plus `EXTRA_SOURCES` when `extra_root`
            is given. Benchmarks and reserved slices are refused with `ValueError` (`check_training_source`,
            `check_training_ids`).
        val_fraction: fraction of COCO-MVal *images* (hash of the COCO id) that form the validation split.
        shard_size: rows per parquet shard.
        cache_dir: scratch folder for Arrow files (default: a temporary folder inside `out_dir`, removed after).
        extra_root: folder of the extra datasets (`ECSSD/`, `CCP/`, `Weizmann/`, `CamVid/`); None: none of them.
    """
    data_root = Path(data_root) if data_root is not None else default_data_root()
    extra_root = Path(extra_root) if extra_root is not None else None
    if sources is None:
        sources = (*DEFAULT_SOURCES, *(EXTRA_SOURCES if extra_root is not None else ()))
    specs = [spec for s in sources for spec in _resolve_source(s, data_root, extra_root)]
    for layout, root, options in specs:
        check_training_source(root, layout, **options)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = ConversionStats()
    assigned = [_assign_splits(*spec, val_fraction=val_fraction) for spec in specs]
    shards: dict[str, list[Path]] = {}
    Path(cache_dir or out_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir or out_dir, prefix=".arrow-") as scratch:
        for split in SPLITS:
            samples = chain.from_iterable(
                grouped_samples(root, layout, assigned[k][split], stats, progress, **options)
                for k, (layout, root, options) in enumerate(specs)
            )
            dataset = samples_to_dataset(samples, stats, split=split, cache_dir=scratch)
            shards[split] = write_shards(dataset, out_dir, split, shard_size)
            del dataset
    _write_card(out_dir, stats, shards, specs, val_fraction)
    return stats


def _assign_splits(layout: str, root: Path, options: dict[str, Any], val_fraction: float) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {split: [] for split in SPLITS}
    ids = list_ids(root, layout, **options)
    check_training_ids(root, layout, ids, **options)
    for sample_id in ids:
        out[split_of(layout, group_key(layout, sample_id), val_fraction, options)].append(sample_id)
    return out


def convert_folder(root: str | Path, layout: str, out_dir: str | Path, split: str = "train", shard_size: int = 250,
                   limit: int | None = None, progress: bool = False, cache_dir: str | Path | None = None,
                   **options: Any) -> ConversionStats:
    """Convert any single layout folder (benchmarks included: this is not a training corpus) to parquet shards.

    One row per instance (no grouping), bad instances skipped and counted; writes `out_dir/<split>-*.parquet`.
    """
    stats = ConversionStats()
    ids = list_ids(root, layout, **options)[:limit]
    samples = (s for s in (_read_or_skip(Path(root), layout, i, stats, **options)
                           for i in _progress(ids, layout, progress)) if s is not None)
    Path(cache_dir or out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir or out_dir, prefix=".arrow-") as scratch:
        dataset = samples_to_dataset(samples, stats, split=split, cache_dir=scratch)
        shards = {split: write_shards(dataset, out_dir, split, shard_size)}
        del dataset
    _write_card(Path(out_dir), stats, shards, [(layout, Path(root), options)], None)
    return stats


def _options_text(options: dict[str, Any]) -> str:
    return "".join(f", {k}={v}" for k, v in options.items() if k != "exclude_file")


def _write_card(out_dir: Path, stats: ConversionStats, shards: dict[str, list[Path]],
                specs: Sequence[tuple[str, Path, dict[str, Any]]], val_fraction: float | None) -> None:
    splits = [s for s, paths in shards.items() if paths]
    extra = any(layout in EXTRA_LAYOUTS for layout, _, _ in specs)
    extra_rule = f", plus {EXTRA_VALIDATION_RULE}, validation_score(key) = sha256(key)[:8 bytes] / 2**64"
    rule = (None if val_fraction is None else
            f"validation = COCO-MVal images with sha256(coco_id)[:8 bytes] / 2**64 < {val_fraction}"
            + (extra_rule if extra else "")
            + "; all instances of one COCO image share a row and a split; every other source is train")
    info = {
        "features": features().to_dict(),
        "splits": {s: {"num_rows": stats.rows[s], "num_masks": stats.masks[s],
                       "files": [p.name for p in shards[s]]} for s in splits},
        "sources": [{"layout": layout, "root": str(root), "options": options} for layout, root, options in specs],
        "validation_rule": rule,
        "counts": stats.to_dict(),
    }
    (out_dir / "dataset_info.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    data_files = "".join(f"  - split: {s}\n    path: {s}-*.parquet\n" for s in splits)
    table = "".join(f"| {s} | {stats.rows[s]} | {stats.masks[s]} |\n" for s in splits)
    sources = ", ".join(f"`{layout}` ({root.name}{_options_text(opts)})" for layout, root, opts in specs)
    (out_dir / "README.md").write_text(
        f"---\nconfigs:\n- config_name: default\n  data_files:\n{data_files}---\n\n"
        "# hf_iis segmentation corpus\n\n"
        f"Built by `hf_iis.data.hf_datasets` from {sources}. One row per image: `image` (RGB), `masks` (list of "
        "mode-L PNG masks, 255 = object), `ignore` (mode-L PNG or null, 255 = ignore), `id`, `source`.\n\n"
        f"| split | images | masks |\n|---|---|---|\n{table}\n"
        + (f"Validation split (fixed): {rule}.\n\n" if rule else "")
        + "Skipped instances and dropped masks are counted in `dataset_info.json` (`counts`).\n"
        "Load with `hf_iis.data.load_corpus(dir, split)` or `datasets.load_dataset(\"parquet\", data_files=...)`.\n"
    )


def load_corpus(out_dir: str | Path, split: str = "train", streaming: bool = False,
                cache_dir: str | Path | None = None) -> Dataset | IterableDataset:
    """`load_dataset("parquet", ...)` over `out_dir/<split>-*.parquet`; an `IterableDataset` when `streaming`."""
    from datasets import load_dataset

    files = sorted(Path(out_dir).glob(f"{split}-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no {split}-*.parquet shards in {out_dir}: build the corpus first with "
                                f"`python scripts/build_datasets.py --data-root <data folder> --out {out_dir}` "
                                "(README, 'Data')")
    return load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split, streaming=streaming,
                        cache_dir=None if cache_dir is None else str(cache_dir))


def push_to_hub(out_dir: str | Path, repo_id: str, private: bool | None = None,
                token: str | None = None) -> DatasetDict:
    """Push every split found in `out_dir` to the Hub as one `DatasetDict` (needs network and a token)."""
    from datasets import DatasetDict

    splits = {s: load_corpus(out_dir, s) for s in SPLITS if any(Path(out_dir).glob(f"{s}-*.parquet"))}
    dataset = DatasetDict(splits)
    dataset.push_to_hub(repo_id, private=private, token=token)
    return dataset
