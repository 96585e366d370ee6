"""The seed's click sampler.

For an image with ground-truth masks M and a boolean `valid` area (inside the image, outside the padding, not an
ignore pixel): a mask m is drawn uniformly from M, then K click pairs: a positive x uniform over the valid pixels of
m and a negative x̄ uniform over the valid pixels outside m. Points are (x, y) = (column, row) pixel centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ClickPairs:
    """K click pairs for one mask.

    Attributes:
        positives: (K, 2) float32 (x, y), inside the mask.
        negatives: (K, 2) float32 (x, y), outside the mask (zeros where `negative_ok` is False).
        negative_ok: (K,) bool; False when the mask covers the whole valid area (no pixel outside it).
    """

    positives: np.ndarray
    negatives: np.ndarray
    negative_ok: np.ndarray


def sample_pixels(region: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray | None:
    """`k` pixels drawn uniformly (with replacement) from the True pixels of `region` (H, W); (k, 2) (x, y) or None."""
    flat = np.flatnonzero(region)
    if flat.size == 0:
        return None
    picks = flat[rng.integers(0, flat.size, size=k)]
    rows, cols = np.divmod(picks, region.shape[1])
    return np.stack([cols, rows], axis=-1).astype(np.float32)


def eligible_masks(masks: np.ndarray, valid: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """Indices of the masks (M, H, W) with at least `min_pixels` valid pixels."""
    if len(masks) == 0:
        return np.zeros(0, dtype=np.int64)
    counts = (masks & valid[None]).reshape(len(masks), -1).sum(1)
    return np.flatnonzero(counts >= max(1, min_pixels))


def choose_masks(
    masks: np.ndarray, valid: np.ndarray, n: int, rng: np.random.Generator, min_pixels: int = 1
) -> np.ndarray:
    """`n` mask indices drawn uniformly from the eligible masks (without replacement when there are enough)."""
    pool = eligible_masks(masks, valid, min_pixels)
    if pool.size == 0:
        return pool
    return rng.choice(pool, size=n, replace=pool.size < n)


def sample_click_pairs(mask: np.ndarray, valid: np.ndarray, k: int, rng: np.random.Generator) -> ClickPairs:
    """K positives uniform in `mask & valid` and K negatives uniform in `~mask & valid`.

    Raises:
        ValueError: if `mask & valid` is empty (draw the mask with `choose_masks` first).
    """
    positives = sample_pixels(mask & valid, k, rng)
    if positives is None:
        raise ValueError("the mask has no valid pixel to click")
    negatives = sample_pixels(~mask & valid, k, rng)
    ok = np.full(k, negatives is not None)
    if negatives is None:
        negatives = np.zeros((k, 2), dtype=np.float32)
    return ClickPairs(positives, negatives, ok)
