r"""The "how object-centred is a benchmark" tables, from the results.json of ``scripts/evaluate.py`` runs.

    python scripts/object_centred_table.py outputs/eval/peers_all/results.json            # peers only
    python scripts/object_centred_table.py outputs/eval/peers_all/results.json outputs/eval/default/results.json

One row per benchmark; columns: instances, the four saliency baselines (U²-Net-p / U²-Net, zero-click and
click-component), OpenCV GrabCut, and the click model (the first ``kind == "model"`` row found in the files, else a
placeholder pointing to docs/results.md). Three tables: mIoU@1 with the center click, NoC90 with NoF90, and mIoU@1
with one random click. Prints markdown to stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hf_iis.evaluation.results import ResultRow

BENCHMARKS = ["GrabCut", "Berkeley", "CCP-parts", "CCP-person", "CamVid-regions"]
PEER_COLUMNS = [("u2netp_zero", "U²-Net-p zero-click"), ("u2netp_component", "U²-Net-p click-component"),
                ("u2net_zero", "U²-Net zero-click"), ("u2net_component", "U²-Net click-component"),
                ("grabcut", "OpenCV GrabCut")]
MODEL_PLACEHOLDER = "model: see docs/results.md"


def _rows(paths: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        rows += json.loads(Path(path).read_text())["results"]
    return rows


def _cells(row: dict[str, Any] | None, what: str) -> str:
    if row is None:
        return "–"
    m = ResultRow.from_dict(row).metrics
    if what == "center":
        return "–" if m.miou1_center is None else f"{m.miou1_center:.1f}"
    if what == "noc":
        return "–" if 90 not in m.noc else f"{m.noc[90]:.2f} ({m.nof.get(90)})"
    if m.miou1_random is None:
        return "–"
    return f"{m.miou1_random:.1f} ± {m.miou1_random_std:.1f}"


def _count(row: dict[str, Any] | None, what: str) -> str:
    """Instances behind the numbers: all, or 'k of n' when the protocol ran on a subset."""
    if row is None:
        return "–"
    r = ResultRow.from_dict(row)
    n, m = r.num_instances, r.metrics
    k = {"center": m.center_instances, "noc": m.noc_instances, "random": m.random_instances}[what]
    return f"{n:,}" if k is None or k == n else f"{k:,} of {n:,}"


def tables(rows: list[dict[str, Any]]) -> str:
    """The three markdown tables (see the module doc)."""
    peers = {(r["settings"].get("peer"), r["dataset"]): r for r in rows if r["kind"] == "peer"}
    models = {}
    for r in rows:
        if r["kind"] == "model":
            models.setdefault(r["dataset"], r)
    model_name = next((f"{Path(r['model_path']).name} [{r['scaling']}]" for r in models.values()), None)
    titles = {"center": "mIoU@1, center click", "noc": "NoC90 (NoF90), standard clicker, 20 clicks",
              "random": "mIoU@1, one random click (mean ± std over seeds)"}
    out = []
    for what, title in titles.items():
        header = ["benchmark", "instances"] + [label for _, label in PEER_COLUMNS] + [
            f"click model: {model_name}" if model_name else "click model"]
        lines = [f"**{title}**\n", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for bench in BENCHMARKS:
            present = [peers.get((key, bench)) for key, _ in PEER_COLUMNS]
            if not any(present) and bench not in models:
                continue
            first = next((r for r in present if r is not None), models.get(bench))
            model_cell = _cells(models[bench], what) if bench in models else MODEL_PLACEHOLDER
            lines.append("| " + " | ".join([bench, _count(first, what)] + [_cells(r, what) for r in present]
                                           + [model_cell]) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="results.json files of scripts/evaluate.py")
    args = p.parse_args(argv)
    print(tables(_rows(args.results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
