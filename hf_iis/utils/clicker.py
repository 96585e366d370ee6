"""The standard click simulator of interactive segmentation (RITM / SimpleClick / SegNext protocol).

Coordinates are ``(x, y) = (column, row)`` in pixels of the original image, like SAM and transformers.
Masks are ``(H, W)`` boolean arrays. A click's ``sign`` is ``+1`` (foreground) or ``-1`` (background).

Protocol (RITM's clicker, as SimpleClick and SegNext evaluate with it):

* false negatives ``fn = gt & ~pred`` and false positives ``fp = ~gt & pred``, ignore pixels excluded;
* each region is padded by 1 px of zeros (so the image border counts as boundary) and Euclidean-distance
  transformed; the distance is zeroed at pixels that were already clicked;
* the next click goes to the first (row-major) argmax of the map with the larger maximum, positive if
  ``max(fn) >= max(fp)``, negative otherwise.

With an empty prediction the first click is the interior point of the object farthest from its boundary
(:func:`center_click`).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["Click", "next_click", "center_click", "random_click", "error_distance_map", "clicks_to_array"]


class Click(NamedTuple):
    """One click: ``x`` = column, ``y`` = row (pixels, original resolution); ``sign`` = +1 or -1."""

    x: float
    y: float
    sign: int


def error_distance_map(region: np.ndarray, clicked: list[Click] | None = None) -> np.ndarray:
    """Distance of every pixel of ``region`` to the region's boundary (or the image border).

    Args:
        region: ``(H, W)`` bool; the error region.
        clicked: clicks whose pixels (rounded ``(x, y)``) get distance 0.

    Returns:
        ``(H, W)`` float64; 0 outside the region, the exact Euclidean distance to the nearest non-region pixel
        (the 1-px zero padding makes pixels outside the image count as non-region) inside it.
    """
    padded = np.pad(region.astype(np.uint8), 1, mode="constant")
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    # The precise transform is exact up to float32 rounding; squared distances are integers, so snapping them
    # makes equal distances compare equal and the row-major tie-breaking deterministic.
    dist = np.sqrt(np.rint(dist.astype(np.float64) ** 2))
    if clicked:
        h, w = region.shape
        for c in clicked:
            row, col = int(round(c.y)), int(round(c.x))
            if 0 <= row < h and 0 <= col < w:
                dist[row, col] = 0.0
    return dist


def _argmax_click(dist: np.ndarray, sign: int) -> Click:
    """The first (row-major) argmax of ``dist`` as a click of the given sign."""
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(float(col), float(row), int(sign))


def next_click(
    gt: np.ndarray,
    pred: np.ndarray,
    ignore: np.ndarray | None = None,
    clicked: list[Click] | None = None,
) -> Click:
    """The next simulated click for a prediction, by the standard protocol.

    Args:
        gt: ``(H, W)`` bool ground-truth mask.
        pred: ``(H, W)`` bool current prediction (already thresholded).
        ignore: optional ``(H, W)`` bool; True pixels (e.g. GrabCut's 128 band) are neither fn nor fp.
        clicked: clicks placed so far; their pixels are never chosen again.

    Returns:
        A :class:`Click` at ``(x, y) = (column, row)``: positive in the false-negative region if its largest
        distance is ``>=`` the false-positive one, else negative. Ties within a map go to the first pixel in
        row-major order. If the prediction has no error pixel at all, the click repeats the rule on the
        ground truth alone (a positive click at the object's deepest unclicked pixel), so a fixed-length
        click loop always gets a valid click.
    """
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} differ in shape")
    valid = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, dtype=bool)
    fn = gt & ~pred & valid
    fp = ~gt & pred & valid
    fn_dist = error_distance_map(fn, clicked)
    fp_dist = error_distance_map(fp, clicked)
    fn_max, fp_max = float(fn_dist.max()), float(fp_dist.max())
    if fn_max == 0.0 and fp_max == 0.0:
        return _argmax_click(error_distance_map(gt & valid, clicked), +1)
    if fn_max >= fp_max:
        return _argmax_click(fn_dist, +1)
    return _argmax_click(fp_dist, -1)


def center_click(gt: np.ndarray, ignore: np.ndarray | None = None) -> Click:
    """The first standard click: :func:`next_click` with an empty prediction (the object's deepest pixel)."""
    gt = np.asarray(gt, dtype=bool)
    return next_click(gt, np.zeros_like(gt), ignore=ignore)


def random_click(
    gt: np.ndarray,
    rng: np.random.Generator,
    sign: int = +1,
    ignore: np.ndarray | None = None,
) -> Click:
    """A click drawn uniformly over the mask's pixels (``sign=+1``) or over its complement (``sign=-1``).

    Args:
        gt: ``(H, W)`` bool mask.
        rng: numpy random generator (the only source of randomness).
        sign: +1 to draw inside ``gt``, -1 to draw outside it.
        ignore: optional ``(H, W)`` bool; ignore pixels are never drawn.

    Returns:
        A :class:`Click` at integer pixel coordinates ``(x, y) = (column, row)``.

    Raises:
        ValueError: if the region to draw from is empty or ``sign`` is not +1/-1.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign}")
    gt = np.asarray(gt, dtype=bool)
    region = gt if sign == 1 else ~gt
    if ignore is not None:
        region = region & ~np.asarray(ignore, dtype=bool)
    flat = np.flatnonzero(region)
    if flat.size == 0:
        raise ValueError("no pixel to draw a click from")
    row, col = np.unravel_index(int(flat[rng.integers(flat.size)]), gt.shape)
    return Click(float(col), float(row), int(sign))


def clicks_to_array(clicks: list[Click]) -> np.ndarray:
    """``(N, 3)`` float32 array of ``(x, y, sign)`` rows."""
    return np.asarray([tuple(c) for c in clicks], dtype=np.float32).reshape(-1, 3)
