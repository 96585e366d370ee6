"""Boundary IoU (Cheng, Girshick, Dollár, Berg, Kirillov, CVPR 2021): the IoU of two masks restricted to the band of
width d inside each mask's contour, which, unlike mask IoU, does not forgive boundary errors on large objects.

    B(M) = M \\ erode(M, d)            (the mask's pixels within d of its contour; the image border counts as contour)
    boundary IoU = |B(G) ∩ B(P)| / |B(G) ∪ B(P)|

d follows the paper and its reference code (github.com/bowenc0221/boundary-iou-api, `mask_to_boundary`):
d = max(1, round(0.02 · image diagonal)), a 3 × 3 erosion iterated d times on the mask padded with background. On
the click benchmarks that is 16 px on a 640 × 480 GrabCut photo and 12 px on a 481 × 321 Berkeley one, i.e. about
4 pixels of the model's 320-px input frame. Pass `dilation` (pixels) instead of the ratio for a fixed band.

Ignore pixels (a benchmark's unlabelled band) count in neither set: the bands' IoU is mask IoU (`mask_iou.iou`).
Both bands empty (two empty masks) gives 1.0, the convention of `iou`; one empty band and one not gives 0.0.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .mask_iou import iou

__all__ = ["DILATION_RATIO", "boundary_band", "boundary_iou", "dilation_pixels"]

DILATION_RATIO = 0.02
"""Band width as a fraction of the image diagonal: the paper's value, so numbers compare with published ones."""

_KERNEL = np.ones((3, 3), dtype=np.uint8)  # 8-connected: d iterations reach every pixel within Chebyshev distance d


def dilation_pixels(shape: tuple[int, ...], dilation_ratio: float = DILATION_RATIO) -> int:
    """Band width d in pixels of an image of `shape` (H, W, ...): max(1, round(ratio · diagonal))."""
    if not 0.0 < float(dilation_ratio) <= 1.0:
        raise ValueError(f"dilation_ratio must be in (0, 1], got {dilation_ratio!r}")
    height, width = shape[:2]
    return max(1, int(round(dilation_ratio * math.hypot(height, width))))


def boundary_band(mask: np.ndarray, dilation: int) -> np.ndarray:
    """(H, W) bool: the pixels of `mask` within `dilation` pixels of its contour (the image border included)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if isinstance(dilation, bool) or not isinstance(dilation, (int, np.integer)) or dilation < 1:
        raise ValueError(f"dilation must be a whole number of pixels >= 1, got {dilation!r}")
    # a background border of one pixel: the object's pixels along the image edge belong to the band, as in the paper
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, _KERNEL, iterations=int(dilation))[1:-1, 1:-1]
    return mask & (eroded == 0)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None, *,
                 dilation_ratio: float = DILATION_RATIO, dilation: int | None = None) -> float:
    """Boundary IoU (fraction) of two (H, W) bool masks; `dilation` (pixels) overrides `dilation_ratio`."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    d = dilation_pixels(gt.shape, dilation_ratio) if dilation is None else dilation
    return iou(boundary_band(pred, d), boundary_band(gt, d), ignore)
