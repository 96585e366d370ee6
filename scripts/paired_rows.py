r"""Paired differences between the rows of one `scripts/evaluate.py` run, with 95 % bootstrap intervals.

    python scripts/paired_rows.py outputs/eval/v3/triangulation --baseline "default [tta=1]"
    python scripts/paired_rows.py outputs/eval/v3/benchmarks --baseline "default [tta=1]" --metric "NoC@90"
    python scripts/paired_rows.py runA runB --baseline "<a row of runA>" --metric "NoC@90"   # rows of two runs

Several runs are read as one when they measured the same instances (e.g. one setting per run); a method label that
two runs both hold is refused, since its rows could not be told apart.

Every method of the run's `instances.json` is compared with the baseline row on the same instances of each dataset
(`hf_iis.evaluation.metrics.paired_difference`: instances resampled together, so the interval is the difference's).
Metrics: `iou@1 center` and `biou@1 center` (×100, points), or a per-instance NoC (`NoC@85`, `NoC@90`: clicks;
20 counts a failure). Prints a markdown table: dataset, method, N, baseline mean, method mean, Δ [low, high].
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from hf_iis.cli_checks import report

METRICS = {"iou@1 center": 100.0, "biou@1 center": 100.0, "NoC@85": 1.0, "NoC@90": 1.0, "NoC@95": 1.0}
FIRST_OF_LOOP = {"iou@1 center": "ious", "biou@1 center": "boundary_ious"}
"""Instances that ran the NoC loop keep their per-click curves instead: the loop's first click is the center click
(`hf_iis.evaluation.protocols.run_center_click`), so mIoU@1 center covers every instance, as in evaluate.py."""


def _fail(message: str) -> None:
    sys.exit(report("paired_rows.py", message))


def paired_table(instances: list[dict], baseline: str, metric: str) -> str:
    """The markdown table of every method against `baseline`, per dataset (rows where both have the metric)."""
    from hf_iis.evaluation.metrics import paired_difference

    scale = METRICS[metric]
    scores: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in instances:
        value = row.get(metric)
        if value is None and metric in FIRST_OF_LOOP and row.get(FIRST_OF_LOOP[metric]):
            value = row[FIRST_OF_LOOP[metric]][0]  # an instance of the NoC loop: its first click is the center click
        if value is not None:
            scores[(row["dataset"], row["method"])][row["id"]] = float(value) * scale
    datasets = list(dict.fromkeys(dataset for dataset, _ in scores))
    lines = [f"| dataset | method | N | {baseline} | method | Δ {metric} [95 % CI] |", "|---|---|---|---|---|---|"]
    for dataset in datasets:
        base = scores.get((dataset, baseline))
        if not base:
            continue
        for (d, method), values in scores.items():
            if d != dataset or method == baseline:
                continue
            ids = [i for i in base if i in values]
            if not ids:
                continue
            diff = paired_difference([values[i] for i in ids], [base[i] for i in ids])
            mean_b = sum(base[i] for i in ids) / len(ids)
            mean_m = sum(values[i] for i in ids) / len(ids)
            lines.append(f"| {dataset} | {method} | {len(ids)} | {mean_b:.2f} | {mean_m:.2f} | "
                         f"{diff['diff']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="+", help="evaluate.py output folder(s) (holding instances.json)")
    parser.add_argument("--baseline", required=True, help="the baseline row's method label, as in table.md")
    parser.add_argument("--metric", default="iou@1 center", help=f"one of: {', '.join(METRICS)}")
    args = parser.parse_args()
    if args.metric not in METRICS:
        _fail(f"--metric {args.metric!r}: give one of {', '.join(METRICS)}")
    instances, owner = [], {}
    for run in args.run:
        path = run / "instances.json"
        if not path.is_file():
            _fail(f"{path} not found: give the output folder of a scripts/evaluate.py run")
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            _fail(f"{path} is not valid JSON ({error.msg}): give the output folder of a scripts/evaluate.py run")
        for method in sorted({row.get("method") for row in rows}):
            if method in owner:
                _fail(f"method {method!r} is in both {owner[method]} and {path}: give runs whose rows differ")
            owner[method] = path
        instances.extend(rows)
    path = " + ".join(str(run) for run in args.run)
    methods = sorted({row.get("method") for row in instances})
    if args.baseline not in methods:
        _fail(f"--baseline {args.baseline!r} is not a method of {path}; its methods: {methods}")
    print(paired_table(instances, args.baseline, args.metric))


if __name__ == "__main__":
    main()
