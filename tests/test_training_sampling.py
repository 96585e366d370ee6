"""The seed's click sampler: positives only inside m, negatives only outside m, never in padding or ignore."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hf_iis.training.sampling import choose_masks, eligible_masks, sample_click_pairs

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12))


@st.composite
def mask_and_valid(draw):
    shape = draw(shapes)
    mask = draw(arrays(bool, shape))
    valid = draw(arrays(bool, shape))
    return mask, valid


@settings(max_examples=200, deadline=None)
@given(mask_and_valid(), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_positives_inside_negatives_outside(data, k, seed):
    mask, valid = data
    rng = np.random.default_rng(seed)
    if not (mask & valid).any():
        with pytest.raises(ValueError):
            sample_click_pairs(mask, valid, k, rng)
        return
    pairs = sample_click_pairs(mask, valid, k, rng)
    assert pairs.positives.shape == (k, 2) and pairs.negatives.shape == (k, 2)
    for x, y in pairs.positives.astype(int):
        assert mask[y, x] and valid[y, x]
    assert pairs.negative_ok.all() == (~mask & valid).any()
    for (x, y), ok in zip(pairs.negatives.astype(int), pairs.negative_ok):
        if ok:
            assert not mask[y, x] and valid[y, x]


def test_sampler_is_uniform_over_the_mask():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    pairs = sample_click_pairs(mask, np.ones_like(mask), 4000, np.random.default_rng(0))
    _, counts = np.unique(pairs.positives @ np.array([1, 10]), return_counts=True)
    assert len(counts) == 4 and counts.min() > 900  # ~1000 each
    _, neg_counts = np.unique(pairs.negatives @ np.array([1, 10]), return_counts=True)
    assert len(neg_counts) == 12 and neg_counts.min() > 250  # ~333 each


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 6), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_choose_masks_draws_only_eligible(num_masks, n, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((num_masks, 6, 6)) < 0.1
    valid = rng.random((6, 6)) < 0.8
    chosen = choose_masks(masks, valid, n, rng, min_pixels=2)
    pool = set(eligible_masks(masks, valid, 2).tolist())
    assert set(chosen.tolist()) <= pool
    assert len(chosen) == (n if pool else 0)
    if len(pool) >= n:
        assert len(set(chosen.tolist())) == n  # without replacement when there are enough


def test_area_weighting_draws_masks_in_proportion_to_their_area():
    """Masks of 10 and 30 valid pixels: uniform draws them 1:1, area-weighted 1:3; an unknown weighting is refused."""
    valid = np.ones((10, 10), dtype=bool)
    masks = np.zeros((2, 10, 10), dtype=bool)
    masks[0, 0, :] = True  # 10 pixels
    masks[1, 1:4, :] = True  # 30 pixels
    rng = np.random.default_rng(0)
    uniform = np.array([choose_masks(masks, valid, 1, rng)[0] for _ in range(4000)])
    area = np.array([choose_masks(masks, valid, 1, rng, weighting="area")[0] for _ in range(4000)])
    assert abs(uniform.mean() - 0.5) < 0.03
    assert abs(area.mean() - 0.75) < 0.03
    with pytest.raises(ValueError, match="weighting"):
        choose_masks(masks, valid, 1, rng, weighting="size")


def test_train_transform_refuses_an_unknown_mask_sampling():
    from hf_iis.training.augment import AugmentParams, InputFormat
    from hf_iis.training.collate import TrainTransform

    with pytest.raises(ValueError, match="data.mask_sampling"):
        TrainTransform(AugmentParams(), InputFormat(64), mask_sampling="big")
