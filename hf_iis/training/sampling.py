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


MASK_SAMPLINGS = ("uniform", "area")


def choose_masks(
    masks: np.ndarray, valid: np.ndarray, n: int, rng: np.random.Generator, min_pixels: int = 1,
    weighting: str = "uniform",
) -> np.ndarray:
    """`n` mask indices drawn from the eligible masks (without replacement when there are enough).

    weighting="uniform" is the seed's P(m) = 1/|M|. weighting="area" draws m with probability proportional to its
    valid area |m|; with x then uniform in m, the pair (m, x) is "x uniform over the image, m uniform among the masks
    that contain x", so a click is no longer explained more often by the small nested regions (BSDS500's fine
    annotators) than by the object around it.
    """
    if weighting not in MASK_SAMPLINGS:
        raise ValueError(f"unknown mask weighting {weighting!r}; choose one of {MASK_SAMPLINGS}")
    pool = eligible_masks(masks, valid, min_pixels)
    if pool.size == 0:
        return pool
    p = None
    if weighting == "area":
        areas = (masks[pool] & valid[None]).reshape(pool.size, -1).sum(1).astype(np.float64)
        p = areas / areas.sum()
    return rng.choice(pool, size=n, replace=pool.size < n, p=p)


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
