"""Zero-shot proposals: many single positive clicks → an ordered, deduplicated list of masks → average recall.

Protocol (the seed's): single clicks on a regular grid plus uniformly random pixels are decoded independently;
each probability map is thresholded (``>= 0.5``, :func:`~hf_iis.evaluation.metrics.binarize`) and scored by its
mean probability inside the mask; masks are sorted by score and deduplicated by **mask** IoU (greedy mask NMS). The
average recall curve gives, for every ``n``, the mean over gt masks of the best IoU among the first ``n`` proposals;
the headline cut is ``n`` = number of gt masks. Points are ``(x, y)`` = (column, row) in original pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from hf_iis.evaluation.metrics import average_recall_curve, binarize, iou_matrix
from hf_iis.evaluation.segmenters import Segmenter
from hf_iis.utils.clicker import Click

__all__ = [
    "Proposal",
    "ProposalRun",
    "proposal_points",
    "mask_nms",
    "generate_proposals",
    "dedupe_masks",
    "run_proposals",
    "summarize_proposals",
]


@dataclass
class Proposal:
    """One proposal: ``mask`` ``(H, W)`` bool, ``score`` (mean probability inside), ``point`` ``(x, y)``."""

    mask: np.ndarray
    score: float
    point: tuple[float, float]


@dataclass
class ProposalRun:
    """One image: ``curve[n - 1]`` = average recall (fraction) with ``n`` proposals, ``headline`` at n = #gt."""

    id: str
    num_gt: int
    num_proposals: int
    curve: list[float]
    headline: float
    seconds: float


def proposal_points(height: int, width: int, grid: int = 8, n_random: int = 32, seed: int = 0) -> np.ndarray:
    """``(grid² + n_random, 2)`` float32 ``(x, y)``: the centres of a ``grid × grid`` lattice, then random pixels."""
    ys = (np.arange(grid) + 0.5) * height / grid
    xs = (np.arange(grid) + 0.5) * width / grid
    lattice = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    rand = np.stack([rng.integers(0, width, n_random), rng.integers(0, height, n_random)], axis=1)
    pts = np.concatenate([lattice, rand.astype(np.float64)]) if n_random else lattice
    return np.floor(pts).astype(np.float32)


def mask_nms(
    masks: Sequence[np.ndarray], scores: Sequence[float], iou_threshold: float = 0.7, stride: int = 2
) -> list[int]:
    """Greedy mask NMS: indices of kept masks in decreasing score order.

    A mask is dropped when its IoU with an already kept one exceeds ``iou_threshold``. IoUs are computed on
    masks subsampled by ``stride`` (speed; 1 = exact).
    """
    if len(masks) == 0:
        return []
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    small = np.stack([np.asarray(m, dtype=bool)[::stride, ::stride] for m in masks])
    ious = iou_matrix(small, small)
    kept: list[int] = []
    for i in order:
        if all(ious[i, j] <= iou_threshold for j in kept):
            kept.append(int(i))
    return kept


def dedupe_masks(masks: Sequence[np.ndarray], iou_threshold: float = 0.9) -> list[np.ndarray]:
    """Masks without near-duplicates (IoU > threshold with an earlier one), in order; for multi-annotator gt."""
    return [masks[i] for i in mask_nms(masks, np.arange(len(masks), 0, -1), iou_threshold)]


def _single_click_maps(segmenter: Segmenter, points: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` maps of independent single positive clicks, batched when the segmenter can."""
    if getattr(segmenter, "batch_single_clicks", False):
        return segmenter.predict_single_clicks(points, sign=1)
    return np.stack([segmenter.predict([Click(float(x), float(y), 1)], None) for x, y in points])


def generate_proposals(
    segmenter: Segmenter,
    image: np.ndarray,
    points: np.ndarray,
    threshold: float = 0.5,
    nms_iou: float = 0.7,
    min_area: int = 16,
) -> list[Proposal]:
    """Ordered, mask-NMS-deduplicated proposals of the single clicks at ``points`` ``(K, 2)`` ``(x, y)``."""
    segmenter.set_image(image)
    maps = _single_click_maps(segmenter, points)
    cands: list[Proposal] = []
    for prob, (x, y) in zip(maps, points, strict=True):
        mask = binarize(prob, threshold)
        if int(mask.sum()) >= min_area:
            cands.append(Proposal(mask, float(prob[mask].mean()), (float(x), float(y))))
    keep = mask_nms([c.mask for c in cands], [c.score for c in cands], nms_iou)
    return [cands[i] for i in keep]


def run_proposals(
    segmenter: Segmenter,
    samples: Sequence,
    grid: int = 8,
    n_random: int = 32,
    seed: int = 0,
    nms_iou: float = 0.7,
    gt_dedupe_iou: float = 0.9,
    progress: bool = True,
) -> list[ProposalRun]:
    """Average-recall curves on multi-mask ``Sample``s (``id, image, masks, ignore``).

    Gt masks are first deduplicated at ``gt_dedupe_iou`` (BSDS500 pools several annotators' regions).
    Curves run to ``grid² + n_random`` proposals (flat past the end of a shorter list).
    """
    runs: list[ProposalRun] = []
    for s in tqdm(samples, desc=f"proposals {segmenter.name}", disable=not progress, leave=False):
        h, w = s.image.shape[:2]
        points = proposal_points(h, w, grid, n_random, seed)
        start = time.perf_counter()
        props = generate_proposals(segmenter, s.image, points, nms_iou=nms_iou)
        seconds = time.perf_counter() - start
        gts = dedupe_masks(list(s.masks), gt_dedupe_iou)
        curve = average_recall_curve(gts, [p.mask for p in props], len(points), s.ignore)
        runs.append(ProposalRun(s.id, len(gts), len(props), [float(v) for v in curve],
                                float(curve[min(len(gts), len(curve)) - 1]), seconds))
    return runs


def summarize_proposals(runs: Sequence[ProposalRun]) -> dict[str, float | list[float]]:
    """Mean headline AR (percent, n = #gt per image), mean AR curve over n (percent), mean seconds per image."""
    return {
        "AR@#gt": float(100.0 * np.mean([r.headline for r in runs])),
        "ar_curve": [float(v) for v in 100.0 * np.mean([r.curve for r in runs], axis=0)],
        "mean #gt": float(np.mean([r.num_gt for r in runs])),
        "mean #proposals": float(np.mean([r.num_proposals for r in runs])),
        "seconds per image": float(np.mean([r.seconds for r in runs])),
    }
