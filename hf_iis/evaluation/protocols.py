"""The click protocols: the NoC loop (standard clicker, up to 20 clicks) and mIoU@1 with one random click.

Every protocol runs a :class:`~hf_iis.evaluation.segmenters.Segmenter` over
:class:`~hf_iis.evaluation.benchmarks.Instance`s and returns per-instance records; summaries are in
:mod:`hf_iis.evaluation.metrics`. The image is handed to the segmenter once per instance (``set_image``), so a
model encodes it once and corrective clicks reuse the cache. Clicks are deterministic functions of the instance
(the standard clicker, or a random click seeded by ``(seed, crc32(instance id))``), so every method is evaluated
on the same random clicks. Clicks are ``(x, y, sign)`` with ``x`` = column, ``y`` = row.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from hf_iis.evaluation.benchmarks import Instance
from hf_iis.evaluation.metrics import binarize, iou
from hf_iis.evaluation.results import MIOU1_RANDOM, MIOU1_RANDOM_PER_SEED, MIOU1_RANDOM_STD, SECONDS_PER_CALL
from hf_iis.evaluation.segmenters import Segmenter, TargetAware
from hf_iis.metrics.boundary_iou import boundary_iou
from hf_iis.utils.clicker import Click, next_click, random_click

__all__ = [
    "ClickRun",
    "RandomClickRun",
    "prepare",
    "run_click_loop",
    "run_instances",
    "random_click_run",
    "run_noc",
    "run_center_click",
    "instance_rng",
    "run_random_click",
    "summarize_random",
]


@dataclass
class ClickRun:
    """One instance through the NoC loop.

    Attributes:
        id: instance id.
        ious: IoU (fraction) after click ``k + 1``, ``len == max_clicks``.
        clicks: the clicks placed, in order.
        encode_seconds: wall time of ``set_image``.
        predict_seconds: wall time of each ``predict`` call.
        probabilities: the probability map after each click when ``keep_maps`` (else empty).
        boundary_ious: boundary IoU (fraction, `hf_iis.metrics.boundary_iou`) after click ``k + 1``.
    """

    id: str
    ious: list[float]
    clicks: list[Click]
    encode_seconds: float
    predict_seconds: list[float]
    probabilities: list[np.ndarray] = field(default_factory=list, repr=False)
    boundary_ious: list[float] = field(default_factory=list)

    @property
    def seconds_per_click(self) -> float:
        """(encode + all predict calls) / number of clicks: the amortised cost of one click."""
        return (self.encode_seconds + sum(self.predict_seconds)) / max(len(self.predict_seconds), 1)


@dataclass
class RandomClickRun:
    """One instance with one random positive click per seed.

    Attributes:
        id: instance id. seeds: the seeds. clicks: one click per seed. ious: IoU (fraction) per seed.
        encode_seconds: wall time of ``set_image``. predict_seconds: wall time per click (batched calls divided).
    """

    id: str
    seeds: list[int]
    clicks: list[Click]
    ious: list[float]
    encode_seconds: float
    predict_seconds: list[float]


def prepare(segmenter: Segmenter, instance: Instance) -> float:
    """Give the instance's image (and, to a :class:`TargetAware` oracle, its gt) to the segmenter; seconds."""
    start = time.perf_counter()
    segmenter.set_image(instance.image)
    if isinstance(segmenter, TargetAware):
        segmenter.set_target(instance.gt)
    return time.perf_counter() - start


def run_click_loop(
    segmenter: Segmenter,
    instance: Instance,
    max_clicks: int = 20,
    threshold: float = 0.5,
    keep_maps: bool = False,
    encode_seconds: float | None = None,
) -> ClickRun:
    """Up to ``max_clicks`` standard clicks on one instance, the previous probability map fed back.

    Always runs all ``max_clicks`` clicks (mIoU@k needs the whole curve). IoU is measured at the original
    resolution on ``probabilities >= threshold`` (:func:`~hf_iis.evaluation.metrics.binarize`) with the instance's
    ignore band excluded. Pass ``encode_seconds`` when the instance was already :func:`prepare`-d (the image is then
    not handed over again).
    """
    encode = prepare(segmenter, instance) if encode_seconds is None else encode_seconds
    gt, ignore = instance.gt, instance.ignore
    pred = np.zeros_like(gt)
    prev: np.ndarray | None = None
    clicks: list[Click] = []
    ious: list[float] = []
    bious: list[float] = []
    seconds: list[float] = []
    maps: list[np.ndarray] = []
    for _ in range(max_clicks):
        clicks.append(next_click(gt, pred, ignore=ignore, clicked=clicks))
        start = time.perf_counter()
        prob = segmenter.predict(list(clicks), prev)
        seconds.append(time.perf_counter() - start)
        if prob.shape != gt.shape:
            raise ValueError(f"{segmenter.name} returned shape {prob.shape} for an image of {gt.shape}")
        pred = binarize(prob, threshold)
        ious.append(iou(pred, gt, ignore))
        bious.append(boundary_iou(pred, gt, ignore))
        prev = prob
        if keep_maps:
            maps.append(prob)
    return ClickRun(instance.id, ious, clicks, encode, seconds, maps, bious)


def run_instances(
    segmenter: Segmenter,
    instances: Sequence[Instance],
    max_clicks: int = 20,
    seeds: Sequence[int] = (),
    threshold: float = 0.5,
    progress: bool = True,
    desc: str | None = None,
) -> tuple[list[ClickRun], list[RandomClickRun]]:
    """The click loop (``max_clicks`` > 0) and the random clicks (``seeds`` non-empty) in one pass over the
    instances, so each image is handed to the segmenter (and encoded) once. Either list is empty when skipped."""
    loops: list[ClickRun] = []
    rands: list[RandomClickRun] = []
    it = tqdm(instances, desc=desc or f"clicks {segmenter.name}", disable=not progress, leave=False)
    for inst in it:
        encode = prepare(segmenter, inst)
        if max_clicks > 0:
            loops.append(run_click_loop(segmenter, inst, max_clicks, threshold, encode_seconds=encode))
        if len(seeds):
            rands.append(random_click_run(segmenter, inst, seeds, threshold, encode_seconds=encode))
    return loops, rands


def run_noc(
    segmenter: Segmenter,
    instances: Sequence[Instance],
    max_clicks: int = 20,
    threshold: float = 0.5,
    progress: bool = True,
    desc: str | None = None,
) -> list[ClickRun]:
    """:func:`run_click_loop` over all instances (tqdm progress over instances)."""
    return run_instances(segmenter, instances, max_clicks, (), threshold, progress, desc or f"NoC {segmenter.name}")[0]


def run_center_click(
    segmenter: Segmenter, instances: Sequence[Instance], threshold: float = 0.5, progress: bool = True
) -> list[ClickRun]:
    """mIoU@1 with the center click: the NoC loop stopped after its first (center) click."""
    return run_noc(segmenter, instances, 1, threshold, progress, desc=f"center {segmenter.name}")


def instance_rng(instance_id: str, seed: int) -> np.random.Generator:
    """The random generator of one (instance, seed): independent of the method and of the instance order."""
    return np.random.default_rng([int(seed), zlib.crc32(instance_id.encode())])


def _random_clicks(instance: Instance, seeds: Sequence[int]) -> list[Click]:
    return [random_click(instance.gt, instance_rng(instance.id, s), +1, instance.ignore) for s in seeds]


def random_click_run(
    segmenter: Segmenter,
    instance: Instance,
    seeds: Sequence[int] = (0, 1, 2),
    threshold: float = 0.5,
    encode_seconds: float | None = None,
) -> RandomClickRun:
    """One uniformly random positive click per seed on one instance, each decoded on its own (no prev mask).

    A segmenter with ``batch_single_clicks`` true decodes all seeds' clicks as one batch through its
    ``predict_single_clicks(points (K, 2) (x, y), sign)``; otherwise each click is one ``predict`` call.
    """
    encode = prepare(segmenter, instance) if encode_seconds is None else encode_seconds
    clicks = _random_clicks(instance, seeds)
    if getattr(segmenter, "batch_single_clicks", False):
        start = time.perf_counter()
        maps = list(segmenter.predict_single_clicks(np.array([(c.x, c.y) for c in clicks]), sign=1))
        per_click = [(time.perf_counter() - start) / len(clicks)] * len(clicks)
    else:
        maps, per_click = [], []
        for c in clicks:
            start = time.perf_counter()
            maps.append(segmenter.predict([c], None))
            per_click.append(time.perf_counter() - start)
    ious = [iou(binarize(m, threshold), instance.gt, instance.ignore) for m in maps]
    return RandomClickRun(instance.id, list(seeds), clicks, ious, encode, per_click)


def run_random_click(
    segmenter: Segmenter,
    instances: Sequence[Instance],
    seeds: Sequence[int] = (0, 1, 2),
    threshold: float = 0.5,
    progress: bool = True,
) -> list[RandomClickRun]:
    """mIoU@1 with one uniformly random positive click per seed (drawn over the object's pixels), see
    :func:`random_click_run`."""
    return run_instances(segmenter, instances, 0, seeds, threshold, progress, f"random {segmenter.name}")[1]


def summarize_random(runs: Sequence[RandomClickRun]) -> dict[str, float | list[float]]:
    """mIoU@1 (percent) per seed over instances, their mean and sample standard deviation across seeds."""
    ious = np.array([r.ious for r in runs], dtype=np.float64)  # (N, S)
    per_seed = 100.0 * ious.mean(axis=0)
    std = float(per_seed.std(ddof=1)) if per_seed.size > 1 else 0.0
    return {
        MIOU1_RANDOM: float(per_seed.mean()),
        MIOU1_RANDOM_STD: std,
        MIOU1_RANDOM_PER_SEED: [float(v) for v in per_seed],
        SECONDS_PER_CALL: float(np.mean([s for r in runs for s in r.predict_seconds])),
    }
