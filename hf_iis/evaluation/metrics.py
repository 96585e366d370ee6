"""Interactive-segmentation metrics: IoU with an ignore band, NoC / NoF, mIoU@k, proposal average recall.

All masks are ``(H, W)`` arrays at the original image resolution. IoU values are fractions in ``[0, 1]``;
the summaries report mIoU in percent (100 = perfect), NoC in clicks and NoF as a count of instances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hf_iis.evaluation.results import MIOU_CURVE, miou_key, noc_key, nof_key, threshold_tag
from hf_iis.metrics.mask_iou import iou  # this module's IoU, shared with boundary IoU

__all__ = [
    "THRESHOLDS",
    "binarize",
    "iou",
    "noc",
    "nof",
    "miou_curve",
    "summarize_curves",
    "iou_matrix",
    "average_recall_curve",
    "paired_difference",
]

THRESHOLDS: tuple[float, ...] = (0.85, 0.90, 0.95)
"""The IoU targets of NoC@85 / @90 / @95."""


def binarize(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(H, W)`` bool mask ``probabilities >= threshold`` (the protocol thresholds probabilities at 0.5).

    The one place a probability map becomes a mask in the evaluation, the scripts and the metric module; the same
    rule as :meth:`hf_iis.inference.predictor.Prediction.mask` and the pipeline's ``mask``, so a pixel at exactly the
    threshold is foreground everywhere.
    """
    return np.asarray(probabilities) >= threshold


def noc(curve: Sequence[float] | np.ndarray, threshold: float, max_clicks: int = 20) -> int:
    """Number of clicks until the IoU curve first reaches ``threshold``; ``max_clicks`` when it never does.

    ``curve[k]`` is the IoU after ``k + 1`` clicks; only the first ``max_clicks`` entries count.
    """
    reached = np.asarray(curve, dtype=np.float64)[:max_clicks] >= threshold
    return int(np.argmax(reached)) + 1 if reached.any() else int(max_clicks)


def nof(curves: Sequence[Sequence[float]] | np.ndarray, threshold: float, max_clicks: int = 20) -> int:
    """Number of failures: instances whose curve never reaches ``threshold`` within ``max_clicks`` clicks.

    (RITM's code counts ``NoC == max_clicks``, which also counts an instance that succeeds exactly at the last
    click; we follow the written definition.)
    """
    return int(sum(not (np.asarray(c, dtype=np.float64)[:max_clicks] >= threshold).any() for c in curves))


def miou_curve(curves: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """``(K,)`` mean IoU after ``k + 1`` clicks over instances, given ``(N, K)`` per-instance curves (fractions)."""
    arr = np.asarray(curves, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"curves must be a non-empty (N, K) array, got shape {arr.shape}")
    return arr.mean(axis=0)


def summarize_curves(
    curves: Sequence[Sequence[float]] | np.ndarray,
    max_clicks: int | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, float | int | list[float]]:
    """NoC@τ, NoF@τ and mIoU@k of ``(N, K)`` per-instance IoU curves.

    Returns:
        ``{"num_instances", "max_clicks", "NoC@85", "NoF@85", ... (one pair per threshold),
        "mIoU@1" ... "mIoU@K" (percent), "miou_curve": [K percents]}``.
    """
    arr = np.asarray(curves, dtype=np.float64)
    k = arr.shape[1] if max_clicks is None else int(max_clicks)
    out: dict[str, float | int | list[float]] = {"num_instances": int(arr.shape[0]), "max_clicks": k}
    for t in thresholds:
        out[noc_key(threshold_tag(t))] = float(np.mean([noc(c, t, k) for c in arr]))
        out[nof_key(threshold_tag(t))] = nof(arr, t, k)
    mean = 100.0 * miou_curve(arr[:, :k])
    for i, v in enumerate(mean, start=1):
        out[miou_key(i)] = float(v)
    out[MIOU_CURVE] = [float(v) for v in mean]
    return out


def iou_matrix(
    gts: Sequence[np.ndarray] | np.ndarray,
    proposals: Sequence[np.ndarray] | np.ndarray,
    ignore: np.ndarray | None = None,
) -> np.ndarray:
    """``(G, P)`` IoU of every gt mask against every proposal (all ``(H, W)`` bool), ignore pixels excluded."""
    g = np.asarray(gts, dtype=bool).reshape(len(gts), -1)
    p = np.asarray(proposals, dtype=bool).reshape(len(proposals), -1)
    if ignore is not None:
        valid = ~np.asarray(ignore, dtype=bool).reshape(-1)
        g, p = g[:, valid], p[:, valid]
    gf, pf = g.astype(np.float32), p.astype(np.float32)
    inter = gf @ pf.T
    union = gf.sum(1)[:, None] + pf.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)


def average_recall_curve(
    gts: Sequence[np.ndarray] | np.ndarray,
    proposals: Sequence[np.ndarray] | np.ndarray,
    max_proposals: int | None = None,
    ignore: np.ndarray | None = None,
) -> np.ndarray:
    """Average recall of gt masks by an ordered proposal list, as a curve over the number of proposals.

    ``curve[n - 1]`` = mean over gt masks of the best IoU among the first ``n`` proposals (fractions). Past
    the end of the list the curve stays flat. With no proposal at all the curve is zeros.

    Args:
        gts: ``G`` gt masks ``(H, W)`` bool.
        proposals: ``P`` proposal masks ``(H, W)`` bool, best first.
        max_proposals: curve length (default ``max(P, 1)``).
        ignore: optional ``(H, W)`` bool pixels excluded from every IoU.
    """
    n_out = max(len(proposals), 1) if max_proposals is None else int(max_proposals)
    if len(gts) == 0:
        raise ValueError("average recall needs at least one gt mask")
    if len(proposals) == 0:
        return np.zeros(n_out)
    best = np.maximum.accumulate(iou_matrix(gts, proposals, ignore), axis=1).mean(axis=0)  # (P,)
    if n_out <= best.size:
        return best[:n_out]
    return np.concatenate([best, np.full(n_out - best.size, best[-1])])


def paired_difference(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``candidate − baseline`` over paired instances, with a percentile bootstrap confidence interval.

    Both sequences hold one score per instance, in the same instance order. Resampling instances (not the two
    methods separately) keeps the pairing, so the interval reflects how much the *difference* depends on which
    instances happen to be in a small set: with 87 validation masks a 1-point gap in mIoU is often noise.

    Returns:
        {"diff", "low", "high"}, in the units of the inputs.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"need two equal-length 1-D score lists, got shapes {a.shape} and {b.shape}")
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_resamples, d.size))].mean(axis=1)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high)}
