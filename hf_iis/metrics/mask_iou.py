"""Mask IoU with an ignore band: the one IoU of the project (evaluation's metrics and boundary IoU use it)."""

from __future__ import annotations

import numpy as np

__all__ = ["iou"]


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two ``(H, W)`` bool masks; ``ignore`` pixels count in neither.

    Returns 1.0 when the union (outside the ignore band) is empty, i.e. both masks are empty there.
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    if ignore is not None:
        valid = ~np.asarray(ignore, dtype=bool)
        pred, gt = pred & valid, gt & valid
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union
