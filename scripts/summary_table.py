r"""A compact markdown table of one or more `scripts/evaluate.py` runs: the columns the docs quote, one row per method
and dataset.

    python scripts/summary_table.py outputs/eval/v3/benchmarks/results.json
    python scripts/summary_table.py outputs/eval/v3/regions/results.json --columns "mIoU@1 center,NoC@90,NoF@90"

Columns (default: all that any row has): mIoU@1 center, mIoU@1 random (± std), NoC@85, NoC@90, NoF@90, mIoU@5,
mIoU@20, bIoU@1 center, s/click. A cell is "–" where the run did not measure it. "N" is the instances behind the
center-click numbers, with "(NoC: k)" when the click loop (NoC, NoF, mIoU@5/@20) ran on a fixed subset of k.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hf_iis.cli_checks import report

COLUMNS = {
    "mIoU@1 center": lambda m: _f(m.get("mIoU@1 center"), 1),
    "mIoU@1 random": lambda m: (None if m.get("mIoU@1 random") is None
                                else f"{m['mIoU@1 random']:.1f} ± {m.get('mIoU@1 random std', 0.0):.1f}"),
    "NoC@85": lambda m: _f(m.get("NoC@85"), 2),
    "NoC@90": lambda m: _f(m.get("NoC@90"), 2),
    "NoF@90": lambda m: None if m.get("NoF@90") is None else str(m["NoF@90"]),
    "mIoU@5": lambda m: _f(m.get("mIoU@5"), 1),
    "mIoU@20": lambda m: _f(m.get("mIoU@20"), 1),
    "bIoU@1 center": lambda m: _f(m.get("bIoU@1 center"), 1),
    "s/click": lambda m: _f(m.get("seconds per click"), 3),
}


def _f(value, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _fail(message: str) -> None:
    sys.exit(report("summary_table.py", message))


def _count(metrics: dict, total: int) -> str:
    k = metrics.get("NoC instances")
    return f"{total:,}" if k is None or k == total else f"{total:,} (NoC: {k:,})"


def summary(rows: list[dict], columns: list[str]) -> str:
    """The markdown table of `rows` (results.json "results" entries) with the given columns."""
    used = [c for c in columns if any(COLUMNS[c](row["metrics"]) is not None for row in rows)]
    lines = ["| dataset | method | N | " + " | ".join(used) + " |", "|---|---|---|" + "---|" * len(used)]
    for row in rows:
        cells = [COLUMNS[c](row["metrics"]) or "–" for c in used]
        lines.append(f"| {row['dataset']} | {row['method']} | {_count(row['metrics'], row['num_instances'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="results.json of scripts/evaluate.py (one or more)")
    parser.add_argument("--columns", default=",".join(COLUMNS), help=f"comma list of: {', '.join(COLUMNS)}")
    args = parser.parse_args()
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        _fail(f"--columns {args.columns!r}: give a comma list of {', '.join(COLUMNS)}")
    rows = []
    for path in args.results:
        try:
            rows += json.loads(path.read_text())["results"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            _fail(f"{path}: not a results.json of scripts/evaluate.py ({type(error).__name__})")
    print(summary(rows, columns))


if __name__ == "__main__":
    main()
