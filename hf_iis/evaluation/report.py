"""Evaluation outputs: results JSON, per-instance JSON / CSV, and the markdown report (``table.md``) with the
measured tables and the published one.

The measured table and the published table are built by different functions and never share rows. Rows are read
through :mod:`hf_iis.evaluation.results`, which holds the JSON keys.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hf_iis.evaluation.results import ResultRow, ScalingRow

__all__ = [
    "PUBLISHED",
    "hardware_info",
    "timestamp",
    "write_json",
    "write_csv",
    "write_outputs",
    "markdown_report",
    "measured_table",
    "published_table",
    "scaling_table",
    "proposals_table",
]

PUBLISHED: list[dict[str, str]] = [
    {"method": "RITM HRNet32", "train": "COCO+LVIS", "NoC85/NoC90 GrabCut": "1.46 / 1.56", "NoC90 Berkeley": "2.10",
     "NoC90 DAVIS": "5.34", "mIoU@1 GrabCut/Berkeley/DAVIS": "87.7 / 83.2 / 72.5"},
    {"method": "FocalClick SegF-B3-S2", "train": "COCO+LVIS", "NoC85/NoC90 GrabCut": "1.44 / 1.50",
     "NoC90 Berkeley": "1.92", "NoC90 DAVIS": "4.90", "mIoU@1 GrabCut/Berkeley/DAVIS": "87.0 / 84.2 / 76.4"},
    {"method": "SimpleClick ViT-B", "train": "COCO+LVIS", "NoC85/NoC90 GrabCut": "– / 1.48", "NoC90 Berkeley": "1.97",
     "NoC90 DAVIS": "5.06", "mIoU@1 GrabCut/Berkeley/DAVIS": "89.0 / 84.3 / 72.9"},
    {"method": "SAM ViT-H", "train": "SA-1B", "NoC85/NoC90 GrabCut": "– / 1.88", "NoC90 Berkeley": "2.09",
     "NoC90 DAVIS": "5.19", "mIoU@1 GrabCut/Berkeley/DAVIS": "–"},
    {"method": "SegNext SA×2", "train": "COCO+LVIS+HQSeg", "NoC85/NoC90 GrabCut": "–", "NoC90 Berkeley": "–",
     "NoC90 DAVIS": "4.43", "mIoU@1 GrabCut/Berkeley/DAVIS": "– / – / ~86"},
]
"""Published numbers (protocols.md): RITM / FocalClick READMEs, FocSAM (arXiv 2405.18706) for SimpleClick and
SAM, SegNext Table 1; mIoU@1 read from published click curves (approximate). RITM and SimpleClick use flip
averaging and a zoom-in crop; SegNext does not."""

_PUBLISHED_NOTE = (
    "Published by the methods' authors, not measured here (sources: RITM and FocalClick READMEs; FocSAM, "
    "arXiv 2405.18706, for SimpleClick and SAM; SegNext Table 1; mIoU@1 read from published click curves, "
    "approximate). RITM and SimpleClick include flip averaging and a zoom-in crop; SegNext does not. "
    "CPU s/click reported by FocSAM: SimpleClick ViT-B 1.26 s, SAM ViT-H 0.35 s."
)


def hardware_info() -> dict[str, Any]:
    """Machine description for results files: CPU, cores, memory, torch threads (and GPU when there is one)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    parts = [info["processor"], f"{info['cpu_count']} logical CPUs"]
    if "memory_gb" in info:
        parts.append(f"{info['memory_gb']} GB RAM")
    if "torch_threads" in info:
        parts.append(f"torch {info['torch']} with {info['torch_threads']} threads")
    if "gpu" in info:
        parts.append(info["gpu"])
    info["string"] = ", ".join(str(p) for p in parts)
    return info


def timestamp() -> str:
    """UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_csv(path: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write dict records as CSV with the union of their keys as columns (lists joined by spaces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in records:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in records:
            writer.writerow({k: _cell(v) for k, v in r.items()})
    return path


def _cell(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return " ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in v)
    return v


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def measured_table(rows: Sequence[ResultRow | dict[str, Any]]) -> str:
    """Markdown table of measured rows: :class:`~hf_iis.evaluation.results.ResultRow` or their ``results.json``
    dicts (``method, scaling, dataset, num_instances, metrics, command``); missing values print as "–". N is the
    benchmark's instance count (a NoC or random-click subset is noted above the table by ``markdown_report``)."""
    header = ["method / model", "scaling", "dataset", "N", "NoC85", "NoC90", "NoF90", "mIoU@1 center",
              "mIoU@1 random ± std", "s/click", "command"]
    body = []
    for r in map(ResultRow.from_dict, rows):
        m = r.metrics
        rand_txt = "–" if m.miou1_random is None else f"{m.miou1_random:.2f} ± {m.miou1_random_std or 0.0:.2f}"
        body.append([
            str(r.method), str(r.scaling or "–"), str(r.dataset), _fmt(r.num_instances),
            _fmt(m.noc.get(85)), _fmt(m.noc.get(90)), _fmt(m.nof.get(90)),
            _fmt(m.miou1_center), rand_txt, _fmt(m.seconds_per_click, 3), f"`{r.command}`",
        ])
    return _table(header, body)


def scaling_table(rows: Sequence[ScalingRow | dict[str, Any]]) -> str:
    """Markdown table of the inference-scaling study (:class:`~hf_iis.evaluation.results.ScalingRow` or its dict)."""
    header = ["model", "dataset", "instances", "scaling", "mIoU@1 center", "mIoU@1 random ± std", "decode s/call",
              "encode s/image"]
    body = [[str(r.model), str(r.dataset), _fmt(r.num_instances), r.scaling, _fmt(r.miou1_center),
             f"{r.miou1_random:.2f} ± {r.miou1_random_std:.2f}", _fmt(r.seconds_per_call, 3),
             _fmt(r.encode_seconds_per_image, 3)] for r in map(ScalingRow.from_dict, rows)]
    return _table(header, body)


def proposals_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of the zero-shot proposal protocol."""
    header = ["model", "data", "held out", "images", "mean #gt", "mean #proposals", "AR@#gt", "s/image"]
    body = [[str(r.get("model")), str(r.get("data")), "yes" if r.get("held_out") else "no",
             str(r.get("images")), _fmt(r["mean #gt"], 1),
             _fmt(r["mean #proposals"], 1), _fmt(r["AR@#gt"]), _fmt(r["seconds per image"], 2)] for r in rows]
    return _table(header, body)


def published_table() -> str:
    """Markdown table of the published reference numbers, with its provenance note."""
    header = list(PUBLISHED[0])
    body = [[r[k] for k in header] for r in PUBLISHED]
    return _table(header, body) + "\n" + _PUBLISHED_NOTE + "\n"


def _subset_notes(rows: Sequence[ResultRow]) -> list[str]:
    """One line per benchmark whose NoC loop or random clicks ran on a subset of its instances."""
    notes = {}
    for r in rows:
        n, m = r.num_instances, r.metrics
        counts = ((m.noc_instances, "NoC / mIoU@k"), (m.random_instances, "random clicks"))
        parts = [f"{label} on {k} of {n} instances" for k, label in counts if k is not None and k < n]
        if parts:
            notes[r.dataset] = (f"- {r.dataset}: " + ", ".join(parts) + " (a fixed, evenly spaced subset: "
                                f"instance indices round(i·(n−1)/(k−1))); mIoU@1 center on all {n}.\n")
    return list(notes.values()) + (["\n"] if notes else [])


def markdown_report(results: dict[str, Any]) -> str:
    """``table.md`` of a run's results dict: the measured rows, the scaling study, the multi-click comparison and
    the proposals (each when present), then the published table apart."""
    md = [f"# Evaluation ({results['timestamp']})\n", f"Hardware: {results['hardware']['string']}\n",
          f"Command: `{results['command']}`\n"]
    if results["results"]:
        rows = [ResultRow.from_dict(r) for r in results["results"]]
        md += ["## Measured\n", "s/click = (image encoding + all predict calls) / clicks, over the NoC loop "
               "(the center-click call when NoC is not run). Peers use no inference-time scaling.\n"]
        md += _subset_notes(rows)
        skipped = [f"- not run: {r['method']} ({r['reason']}).\n" for r in results.get("skipped", [])]
        md += skipped + (["\n"] if skipped else [])
        md += [measured_table(rows)]
    if results["scaling"]:
        md += ["\n## Inference-scaling study (measured)\n", scaling_table(results["scaling"])]
    if results["multiclick"]:
        md += ["\n## Multi-click: model vs average of single-click maps (measured)\n"]
        md += [measured_table([{"method": r["method"], "scaling": "tta=1", "dataset": r["dataset"], "metrics": r,
                                "num_instances": r.get("num_instances"), "command": results["command"]}
                               for r in results["multiclick"]])]
    if results["proposals"]:
        md += ["\n## Zero-shot proposals (measured)\n", proposals_table(results["proposals"])]
    md += ["\n## Published (not measured here)\n", published_table()]
    return "\n".join(md)


def write_outputs(out: str | Path, results: dict[str, Any], instance_records: Sequence[dict[str, Any]]) -> None:
    """Write a run's files under ``out``: ``results.json``, ``instances.json``, ``instances.csv``, ``table.md``."""
    out = Path(out)
    write_json(out / "results.json", results)
    write_json(out / "instances.json", instance_records)
    write_csv(out / "instances.csv", instance_records)
    (out / "table.md").write_text(markdown_report(results))
