"""Label a `datasets` dataset with the interactive pipeline: one mask per row, written back as a dataset.

The clicks of a row come from one of: a column of `[x, y, sign]` triples (`clicks_column`), the standard click
simulator on a ground-truth mask column (`mask_column`: the center click, then corrective clicks up to
`simulated_clicks`, `hf_iis.utils.clicker`), or one point given for every row (`point`).

Scaling out: the rows are cut into chunks of `chunk_size`; under `accelerate launch` each process takes its share
of the chunks not yet written (`PartialState.split_between_processes`), writes each as one parquet file (atomically,
so a killed run leaves whole chunks only), and the main process merges them, in row order, into `<out>/dataset`
(`datasets.load_from_disk`). Rerunning the same command skips the chunks already written; `<out>/label_info.json`
holds the settings, and a rerun with other settings is refused rather than mixing two labellings.

    python scripts/label_dataset.py --dataset my_saved_dataset --mask-column mask --out outputs/labels
    ACCELERATE_USE_CPU=1 accelerate launch --config_file configs/accelerate/cpu_2proc.yaml \
        scripts/label_dataset.py --dataset data/*.parquet --clicks-column clicks --out outputs/labels
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["LabelSpec", "add_label_arguments", "label_dataset", "open_dataset", "run_from_args"]

INFO_FILE = "label_info.json"


@dataclass(frozen=True)
class LabelSpec:
    """What to segment and how; exactly one of `clicks_column`, `mask_column`, `point` gives the clicks."""

    image_column: str = "image"
    id_column: str | None = None  # None: the row index is the id
    clicks_column: str | None = None
    mask_column: str | None = None
    point: tuple[float, float, int] | None = None
    simulated_clicks: int = 1  # with mask_column: the center click + corrective clicks up to this many
    tta: int = 1
    triangulation: int = 0
    zoom_in: bool | str = "auto"  # the pipeline's own default; False / True / "auto" (hf_iis.inference.zoom)
    chunk_size: int = 64

    def check(self, columns: list[str] | None = None) -> None:
        """ValueError naming the problem when the settings (and, given `columns`, the dataset's columns) do not
        fit."""
        from .scaling.tta import resolve_views

        sources = [s for s in (self.clicks_column, self.mask_column, self.point) if s is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one click source: --clicks-column COLUMN, --mask-column COLUMN "
                             f"(simulated clicks) or --point X,Y (got {len(sources)})")
        for what, value, low in (("simulated_clicks", self.simulated_clicks, 1), ("chunk_size", self.chunk_size, 1),
                                 ("tta", self.tta, 1), ("triangulation", self.triangulation, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
        resolve_views(self.tta)  # more views than there are: refused here, before the model loads
        from .scaling.zoom_geometry import check_zoom_in

        check_zoom_in(self.zoom_in)
        for what, name in (("--image-column", self.image_column), ("--id-column", self.id_column),
                           ("--clicks-column", self.clicks_column), ("--mask-column", self.mask_column)):
            if columns is not None and name is not None and name not in columns:
                raise ValueError(f"{what} {name!r} is not a column of the dataset; its columns: {columns}")


def open_dataset(source: str | Path, split: str | None = None):
    """A `datasets.Dataset` from a `save_to_disk` folder (a DatasetDict needs `split`), a parquet file, a folder of
    parquet files, or a glob of them."""
    import datasets

    text = str(source)
    path = Path(text)
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(text)
        if isinstance(loaded, datasets.DatasetDict):
            if split is None and len(loaded) == 1:
                split = next(iter(loaded))
            if split not in loaded:
                raise ValueError(f"{source} holds splits {sorted(loaded)}: choose one with --split")
            loaded = loaded[split]
        return loaded
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*.parquet"))
    elif any(c in text for c in "*?["):
        import glob

        files = sorted(glob.glob(text, recursive=True))
    else:
        files = [text] if path.is_file() else []
    if not path.exists() and not files:
        raise FileNotFoundError(f"--dataset {source}: no such file or folder (a save_to_disk folder or parquet files)")
    if not files or not all(f.endswith(".parquet") for f in files):
        raise ValueError(f"--dataset {source}: give a save_to_disk folder, a .parquet file, a folder of them or a "
                         "glob (no parquet file found)")
    try:
        return datasets.Dataset.from_parquet(files, split=split or "train")
    except ValueError as error:  # pyarrow's ArrowInvalid: not a parquet file
        raise ValueError(f"--dataset {source}: cannot read it as parquet ({error})") from None


def _as_mask(value: Any):
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 3:
        array = array[..., 0]
    return array > 0


def _given_clicks(value: Any, row: int) -> list[tuple[float, float, int]]:
    try:
        return [(float(c[0]), float(c[1]), int(c[2])) for c in value]
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"row {row}: the clicks column must hold [[x, y, sign], ...] (sign +1 / -1), got "
                         f"{value!r}") from None


def _segment_row(seg, record: dict[str, Any], spec: LabelSpec, row: int) -> dict[str, Any]:
    import numpy as np

    from .utils.clicker import center_click, next_click

    image = record[spec.image_column]
    image = image.convert("RGB") if hasattr(image, "convert") else np.asarray(image)
    options = {"tta": spec.tta, "triangulation": spec.triangulation, "zoom_in": spec.zoom_in}
    if spec.mask_column is not None:  # the standard simulator: center click, then corrective clicks
        gt = _as_mask(record[spec.mask_column])
        if not gt.any():
            raise ValueError(f"row {row}: the mask column's mask is empty, so no click can be simulated")
        clicks = [center_click(gt)]  # Click tuples: the pipeline reads (x, y, sign)
        out = seg(image, clicks=clicks, **options)
        while len(clicks) < spec.simulated_clicks:
            clicks.append(next_click(gt, np.asarray(out["mask"]) > 0, clicked=clicks))
            out = seg(image, clicks=clicks, **options)
    else:
        clicks = [spec.point] if spec.point is not None else _given_clicks(record[spec.clicks_column], row)
        try:
            out = seg(image, clicks=clicks, **options)
        except ValueError as error:
            raise ValueError(f"row {row}: {error}") from None
    mask = out["mask"].convert("L")
    ident = str(record[spec.id_column]) if spec.id_column else str(row)
    return {"index": row, "id": ident, "mask": mask, "score": float(out["score"]),
            "clicks": [[float(x), float(y), float(s)] for x, y, s in clicks]}


def _features():
    from datasets import Features, Image, Sequence, Value

    return Features({"index": Value("int64"), "id": Value("string"), "mask": Image(), "score": Value("float32"),
                     "clicks": Sequence(Sequence(Value("float32")))})


def _check_info(out: Path, info: dict[str, Any]) -> bool:
    """Whether `out` already holds this labelling (same settings); refuses one made with other settings."""
    path = out / INFO_FILE
    if not path.is_file():
        return False
    old = {"zoom_in": "auto", **json.loads(path.read_text())}  # written before zoom_in was a setting: the default
    changed = {k: (old.get(k), v) for k, v in info.items() if old.get(k) != v}
    if changed:
        raise ValueError(f"{out} holds a labelling made with other settings {changed}: pick another --out")
    return True


def label_dataset(source: str | Path, out: str | Path, spec: LabelSpec, model: str | None = None,
                  split: str | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Segment every row of `source` per `spec`, write `<out>/dataset` (columns index, id, mask, score, clicks);
    returns a summary. Under `accelerate launch` each process labels a share of the chunks (see the module doc).

    Everything is checked (the dataset, its columns, the spec, `out`, earlier settings) before the model loads or
    anything is written."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env
    from datasets import Dataset, concatenate_datasets
    from tqdm import tqdm

    from .checkpoint_paths import load_pipeline, resolve_checkpoint
    from .cli_checks import check_output_dir

    out = check_output_dir(out, "--out")
    spec.check()
    dataset = open_dataset(source, split)
    spec.check(list(dataset.column_names))
    model_path = resolve_checkpoint(model)
    rows = len(dataset)
    if rows == 0:
        raise ValueError(f"--dataset {source} has no rows")
    info = {"source": str(source), "split": split, "rows": rows, "model": str(model_path), **asdict(spec),
            "point": list(spec.point) if spec.point else None}
    _check_info(out, info)

    # PartialState, unlike Accelerator, does not read ACCELERATE_USE_CPU: without it a CPU launch (gloo) would run
    # every process as a lone one, each labelling everything
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    chunks_dir = out / "chunks"
    n_chunks = (rows + spec.chunk_size - 1) // spec.chunk_size

    def chunk_file(c: int) -> Path:
        return chunks_dir / f"chunk-{c:05d}-of-{n_chunks:05d}.parquet"

    todo = [c for c in range(n_chunks) if not chunk_file(c).is_file()]
    if state.is_main_process:
        chunks_dir.mkdir(parents=True, exist_ok=True)
        (out / INFO_FILE).write_text(json.dumps(info, indent=1))
    state.wait_for_everyone()
    started = time.perf_counter()
    written = 0
    with state.split_between_processes(todo) as mine:
        if mine:
            seg = load_pipeline(model_path, device=device or str(state.device))
            total = sum(min(spec.chunk_size, rows - c * spec.chunk_size) for c in mine)
            bar = tqdm(total=total, desc=f"labelling (process {state.process_index})", disable=not progress,
                       position=state.process_index)
            for c in mine:
                start = c * spec.chunk_size
                records = []
                for row in range(start, min(rows, start + spec.chunk_size)):
                    records.append(_segment_row(seg, dataset[row], spec, row))
                    bar.update(1)
                tmp = chunks_dir / f".tmp-{state.process_index}-{chunk_file(c).name}"
                Dataset.from_list(records, features=_features()).to_parquet(str(tmp))
                os.replace(tmp, chunk_file(c))  # whole chunks only: a killed run resumes at the next chunk
                written += len(records)
            bar.close()
    state.wait_for_everyone()
    summary = {"rows": rows, "chunks": n_chunks, "chunks_skipped": n_chunks - len(todo), "rows_written_now": written,
               "processes": state.num_processes, "seconds": round(time.perf_counter() - started, 1),
               "dataset": str(out / "dataset")}
    if state.is_main_process:
        parts = [Dataset.from_parquet(str(chunk_file(c)), features=_features()) for c in range(n_chunks)]
        merged = concatenate_datasets(parts)
        merged.save_to_disk(str(out / "dataset"))
    if state.num_processes > 1:  # as hf_iis.training.teardown.finish_run: barrier, settle, then tear gloo down
        state.wait_for_everyone()
        time.sleep(0.5)
        state.destroy_process_group()
    return summary


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """The labelling command's flags (`scripts/label_dataset.py`, `hf-iis label`)."""
    from .cli import parse_click
    from .cli_checks import non_negative_int, positive_int

    parser.add_argument("--dataset", required=True, help="a save_to_disk folder, a .parquet file, a folder of "
                        "parquet files, or a glob")
    parser.add_argument("--split", default=None, help="split of a DatasetDict folder (default: its only one)")
    parser.add_argument("--out", required=True, help="output folder: chunks/, label_info.json and dataset/")
    parser.add_argument("--model", default=None, help="checkpoint folder or hub id (default: the embedded model)")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--id-column", default=None, help="column of image ids (default: the row index)")
    clicks = parser.add_mutually_exclusive_group(required=True)
    clicks.add_argument("--clicks-column", help="a column of [[x, y, sign], ...] clicks (sign +1 / -1)")
    clicks.add_argument("--mask-column", help="a ground-truth mask column: simulated clicks (the center click, "
                        "then corrective ones up to --simulated-clicks)")
    clicks.add_argument("--point", type=parse_click, help="X,Y[,+|-]: the same click on every image")
    parser.add_argument("--simulated-clicks", type=positive_int, default=1)
    parser.add_argument("--tta", type=positive_int, default=1, help="TTA views (default 1)")
    parser.add_argument("--triangulation", type=non_negative_int, default=0)
    parser.add_argument("--chunk-size", type=positive_int, default=64, help="rows per written chunk (the unit of "
                        "resuming and of the processes' shares)")
    parser.add_argument("--device", default=None, help="torch device (default: the process's accelerate device)")
    parser.add_argument("--no-progress", action="store_true")


def run_from_args(args: argparse.Namespace) -> int:
    """Run `label_dataset` from parsed flags; prints the summary (main process)."""
    spec = LabelSpec(image_column=args.image_column, id_column=args.id_column, clicks_column=args.clicks_column,
                     mask_column=args.mask_column, point=args.point, simulated_clicks=args.simulated_clicks,
                     tta=args.tta, triangulation=args.triangulation, chunk_size=args.chunk_size)
    summary = label_dataset(args.dataset, args.out, spec, model=args.model, split=args.split, device=args.device,
                            progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
    return 0
