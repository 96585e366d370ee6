"""PNG plots of evaluation results (matplotlib, Agg backend; imported only when plotting).

Clicks are ``(x, y, sign)`` with ``x`` = column and ``y`` = row, drawn green (+) / red (−).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hf_iis.evaluation.results import ResultRow, ScalingRow

__all__ = ["plot_benchmark", "plot_miou_vs_clicks", "plot_miou_vs_seconds", "plot_ar_curves", "plot_overlays"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _finish_chart(fig, ax, path: str | Path, xlabel: str, ylabel: str, title: str, legend: bool = True) -> Path:
    """The shared dressing of the line and scatter charts (axis labels, title, grid, legend), then save."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_miou_vs_clicks(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """mIoU (percent) against the number of clicks, one line per method: ``{label: [mIoU@1, mIoU@2, ...]}``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish_chart(fig, ax, path, "number of clicks", "mIoU (%)", title)


def plot_miou_vs_seconds(points: Sequence[tuple[str, float, float]], path: str | Path, title: str = "") -> Path:
    """mIoU@1 (percent) against seconds per call, one labelled point per ``(label, seconds, miou)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, sec, miou in points:
        ax.scatter([sec], [miou], s=25)
        ax.annotate(label, (sec, miou), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    return _finish_chart(fig, ax, path, "seconds per call (log)", "mIoU@1 (%)", title, legend=False)


def plot_ar_curves(curves: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """Average recall (percent) against the number of proposals, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label)
    ax.set_xscale("log")
    return _finish_chart(fig, ax, path, "number of proposals (log)", "average recall (%)", title)


def plot_overlays(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[tuple[float, float, int]], str]],
    path: str | Path,
    columns: int = 3,
) -> Path:
    """Qualitative overlays: each item ``(image (H,W,3) uint8, gt (H,W) bool, pred (H,W) bool, clicks, title)``.

    The prediction is tinted blue, the gt outline drawn yellow, clicks as green (+) / red (−) dots.
    """
    plt = _pyplot()
    rows = max(1, -(-len(items) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (image, gt, pred, clicks, title) in zip(axes.ravel(), items, strict=False):
        shown = image.astype(np.float32) / 255.0
        tint = np.array([0.1, 0.4, 1.0], np.float32)
        shown[pred] = 0.5 * shown[pred] + 0.5 * tint
        ax.imshow(shown)
        ax.contour(gt.astype(np.float32), levels=[0.5], colors="yellow", linewidths=0.8)
        for x, y, s in clicks:
            ax.scatter([x], [y], c="lime" if s > 0 else "red", s=18, edgecolors="black", linewidths=0.5)
        ax.set_title(title, fontsize=7)
    return _save(fig, path)


def plot_benchmark(out: str | Path, dataset: str, curves: Mapping[str, Sequence[float]], results: dict[str, Any],
                   overlay_items: Sequence[tuple]) -> None:
    """A run's plots of one benchmark under ``out/plots``: mIoU vs clicks (``curves``), mIoU@1 vs seconds (the
    benchmark's rows of ``results["results"]`` and ``results["scaling"]``) and the overlays, each when it has data."""
    plots = Path(out) / "plots"
    if curves:
        plot_miou_vs_clicks(curves, plots / f"miou_vs_clicks_{dataset}.png", f"{dataset}: mIoU vs clicks")
    rows = [ResultRow.from_dict(r) for r in results["results"]]
    points = [(r.method, r.metrics.seconds_per_click, r.metrics.miou1_center)
              for r in rows if r.dataset == dataset and r.metrics.miou1_center is not None]
    points += [(f"{r.model} {r.scaling}", r.seconds_per_call, r.miou1_center)
               for r in map(ScalingRow.from_dict, results["scaling"]) if r.dataset == dataset]
    if points:
        plot_miou_vs_seconds(points, plots / f"miou_vs_seconds_{dataset}.png",
                             f"{dataset}: mIoU@1 (center) vs s/click (peers, models) or decode s/call (scaling)")
    if overlay_items:
        plot_overlays(overlay_items, plots / f"overlays_{dataset}.png", columns=4)
