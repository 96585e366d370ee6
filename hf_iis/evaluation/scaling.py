"""The inference-scaling study: one model under TTA views × probabilistic triangulation settings.

For each setting: mIoU@1 with the center click and with random clicks (several seeds), and seconds per call
(decode only; the encoder's time per image is reported apart). Plus the multi-click comparison of the seed's
"average of per-click estimates" against the model's own multi-click mode (prev mask fed back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hf_iis.evaluation.benchmarks import Instance
from hf_iis.evaluation.metrics import summarize_curves
from hf_iis.evaluation.protocols import ClickRun, run_instances, run_noc, summarize_random
from hf_iis.evaluation.results import (
    MIOU1_RANDOM,
    MIOU1_RANDOM_STD,
    SECONDS_PER_CALL,
    ClickMetrics,
    ScalingRow,
)
from hf_iis.evaluation.segmenters import AveragedClicksSegmenter, ModelSegmenter

__all__ = ["ScalingSetting", "scaling_grid", "run_scaling", "run_multiclick_comparison"]


@dataclass(frozen=True)
class ScalingSetting:
    """``tta`` views, ``triangulation`` auxiliary pixels (0 = off) drawn with ``sampling``, in triangulation
    ``mode`` (`hf_iis.scaling.conditioned_triangulation`)."""

    tta: int = 1
    triangulation: int = 0
    sampling: str = "uniform"
    mode: str = "independent"

    @property
    def label(self) -> str:
        """E.g. ``"tta=4, tri=16 stratified"``, or ``"tta=4, tri=16 stratified conditioned"`` in that mode."""
        if not self.triangulation:
            return f"tta={self.tta}"
        mode = "" if self.mode == "independent" else f" {self.mode}"  # as ModelSegmenter.settings_label names it
        return f"tta={self.tta}, tri={self.triangulation} {self.sampling}{mode}"


def scaling_grid(
    tta_values: Iterable[int] = (1, 2, 4, 8),
    triangulation_values: Iterable[int] = (4, 16, 64),
    samplings: Iterable[str] = ("uniform", "stratified"),
    combos: Iterable[tuple[int, int, str]] = ((2, 4, "stratified"), (4, 16, "stratified"), (8, 64, "stratified")),
    modes: Iterable[str] = ("independent",),
) -> list[ScalingSetting]:
    """TTA alone, triangulation alone (each sampling, then each mode), then the given (tta, triangulation,
    sampling) combinations (each mode); a setting without triangulation has no mode and appears once."""
    modes = list(modes)
    grid = [ScalingSetting(int(t)) for t in tta_values]
    grid += [ScalingSetting(1, int(k), s, m) for k in triangulation_values if k for s in samplings for m in modes]
    grid += [ScalingSetting(int(t), int(k), s, m if k else "independent") for t, k, s in combos for m in modes]
    seen: set[ScalingSetting] = set()
    return [g for g in grid if not (g in seen or seen.add(g))]


def run_scaling(
    predictor: Any,
    instances: Sequence[Instance],
    settings: Sequence[ScalingSetting],
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = True,
    map_choice: str = "first_click",
) -> list[ScalingRow]:
    """One row per setting: mIoU@1 center / random (percent), decode s/call, encode s/image (``model``,
    ``dataset`` and ``num_instances`` are left for the caller to fill in); ``map_choice`` as ``ModelSegmenter``'s."""
    rows = []
    for st in settings:
        seg = ModelSegmenter(predictor, st.tta, st.triangulation, st.sampling, triangulation_mode=st.mode,
                             map_choice=map_choice)
        center, rand_runs = run_instances(seg, instances, 1, seeds, progress=progress, desc=f"scaling {st.label}")
        rand = summarize_random(rand_runs)
        rows.append(ScalingRow(
            tta=st.tta,
            triangulation=st.triangulation,
            sampling=st.sampling if st.triangulation else None,
            scaling=st.label,
            miou1_center=float(100.0 * np.mean([r.ious[0] for r in center])),
            miou1_random=rand[MIOU1_RANDOM],
            miou1_random_std=rand[MIOU1_RANDOM_STD],
            seconds_per_call=float(np.mean([r.predict_seconds[0] for r in center])),
            seconds_per_call_random=rand[SECONDS_PER_CALL],
            encode_seconds_per_image=float(np.mean([r.encode_seconds for r in center])),
            triangulation_mode=st.mode if st.triangulation else None,
        ))
    return rows


def run_multiclick_comparison(
    predictor: Any,
    instances: Sequence[Instance],
    max_clicks: int = 20,
    tta: int = 1,
    progress: bool = True,
    map_choice: str = "first_click",
) -> dict[str, tuple[ClickMetrics, list[ClickRun]]]:
    """The model's own multi-click mode vs the average of its single-click maps, on the standard clicks.

    Returns ``{name: (NoC / NoF / mIoU@k of :func:`summarize_curves` and seconds per click, runs)}``.
    """
    out = {}
    label = "" if map_choice == "first_click" else f", maps={map_choice}"
    for seg in (ModelSegmenter(predictor, tta=tta, name=f"model multi-click [tta={tta}{label}]",
                               map_choice=map_choice),
                AveragedClicksSegmenter(predictor, tta=tta, name=f"average of single clicks [tta={tta}]")):
        runs = run_noc(seg, instances, max_clicks, progress=progress)
        summary = ClickMetrics.from_dict(summarize_curves([r.ious for r in runs], max_clicks))
        summary.seconds_per_click = float(np.mean([r.seconds_per_click for r in runs]))
        out[seg.name] = (summary, runs)
    return out
