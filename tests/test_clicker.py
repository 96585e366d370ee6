"""The standard click simulator: first click placement, signs, ignore band, clicked pixels, random clicks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hf_iis.utils.clicker import Click, center_click, error_distance_map, next_click, random_click


def brute_force_click(region: np.ndarray) -> tuple[int, int]:
    """Independent reference: (x, y) of the first row-major pixel of `region` farthest from any non-region pixel,
    the 1-px frame outside the image counting as non-region."""
    h, w = region.shape
    outside = [(r, c) for r, c in itertools.product(range(-1, h + 1), range(-1, w + 1))
               if not (0 <= r < h and 0 <= c < w) or not region[r, c]]
    out = np.array(outside, dtype=np.float64)
    best, best_rc = -1.0, None
    for r, c in itertools.product(range(h), range(w)):
        if region[r, c]:
            d = np.sqrt(((out - (r, c)) ** 2).sum(1)).min()
            if d > best + 1e-9:
                best, best_rc = d, (r, c)
    return best_rc[1], best_rc[0]


def test_square_first_click_is_its_center():
    gt = np.zeros((40, 50), bool)
    gt[10:31, 5:26] = True  # 21 x 21 square: rows 10..30, columns 5..25
    assert center_click(gt) == Click(15.0, 20.0, 1)


def test_rectangle_first_click_is_on_the_middle_row_first_of_the_plateau():
    gt = np.zeros((40, 60), bool)
    gt[10:31, 5:46] = True  # 21 rows x 41 columns: every column 15..35 of row 20 is 11 px from the boundary
    assert center_click(gt) == Click(15.0, 20.0, 1)


def test_l_shape_first_click_matches_brute_force_and_lies_in_the_corner():
    gt = np.zeros((24, 24), bool)
    gt[2:21, 2:10] = True  # vertical bar
    gt[13:21, 2:22] = True  # horizontal bar
    click = center_click(gt)
    assert (click.x, click.y) == brute_force_click(gt)
    assert click.sign == 1 and gt[int(click.y), int(click.x)]
    assert 2 <= click.x < 10 and 13 <= click.y < 21  # the corner where the bars overlap is deepest


def test_image_border_counts_as_boundary():
    gt = np.ones((9, 15), bool)  # the whole image: distances come from the 1-px zero frame
    assert center_click(gt) == Click(4.0, 4.0, 1)
    dist = error_distance_map(gt)
    assert dist[0, 0] == 1.0 and dist[4, 7] == 5.0


@pytest.mark.parametrize("seed", range(5))
def test_next_click_matches_brute_force_on_random_errors(seed):
    rng = np.random.default_rng(seed)
    gt = rng.random((12, 14)) > 0.4
    pred = rng.random((12, 14)) > 0.5
    click = next_click(gt, pred)
    fn, fp = gt & ~pred, ~gt & pred
    fn_max, fp_max = error_distance_map(fn).max(), error_distance_map(fp).max()
    region = fn if fn_max >= fp_max else fp
    assert click.sign == (1 if fn_max >= fp_max else -1)
    assert (click.x, click.y) == brute_force_click(region)


def test_negative_click_when_false_positive_region_is_larger():
    gt = np.zeros((30, 30), bool)
    gt[5:10, 5:10] = True
    pred = np.zeros_like(gt)
    pred[5:10, 5:9] = True  # misses one column of the object: fn depth 1
    pred[15:28, 15:28] = True  # a big false positive: depth 7
    click = next_click(gt, pred)
    assert click == Click(21.0, 21.0, -1)


def test_equal_depths_give_a_positive_click():
    gt = np.zeros((20, 40), bool)
    gt[5:10, 5:10] = True
    pred = np.zeros_like(gt)
    pred[5:10, 25:30] = True  # fn and fp regions are the same 5x5 square shape
    assert next_click(gt, pred).sign == 1


def test_ignore_band_is_neither_fn_nor_fp():
    gt = np.zeros((20, 20), bool)
    gt[2:18, 2:18] = True
    ignore = np.zeros_like(gt)
    ignore[2:18, 2:18] = True
    ignore[8:11, 8:11] = False  # only a 3x3 patch of the object counts
    click = center_click(gt, ignore)
    assert click == Click(9.0, 9.0, 1)


def test_clicked_pixels_are_not_chosen_again():
    gt = np.zeros((21, 21), bool)
    gt[5:16, 5:16] = True
    first = center_click(gt)
    second = next_click(gt, np.zeros_like(gt), clicked=[first])
    assert first == Click(10.0, 10.0, 1)
    assert (second.x, second.y) != (first.x, first.y) and second.sign == 1
    assert gt[int(second.y), int(second.x)]


def test_perfect_prediction_still_returns_a_click_inside_the_object():
    gt = np.zeros((10, 10), bool)
    gt[2:8, 2:8] = True
    click = next_click(gt, gt.copy())
    assert click.sign == 1 and gt[int(click.y), int(click.x)]


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        next_click(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


masks = arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=60, deadline=None)
@given(mask=masks, seed=st.integers(0, 2**32 - 1), sign=st.sampled_from([1, -1]))
def test_random_click_draws_inside_for_positive_and_outside_for_negative(mask, seed, sign):
    region = mask if sign == 1 else ~mask
    if not region.any():
        with pytest.raises(ValueError):
            random_click(mask, np.random.default_rng(seed), sign)
        return
    click = random_click(mask, np.random.default_rng(seed), sign)
    assert click.sign == sign
    assert float(click.x).is_integer() and float(click.y).is_integer()
    assert region[int(click.y), int(click.x)]


def test_random_click_is_uniform_over_the_mask():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[4, 2] = mask[3, 5] = True
    rng = np.random.default_rng(0)
    counts: dict[tuple[float, float], int] = {}
    for _ in range(3000):
        c = random_click(mask, rng)
        counts[(c.x, c.y)] = counts.get((c.x, c.y), 0) + 1
    assert set(counts) == {(1.0, 1.0), (2.0, 4.0), (5.0, 3.0)}
    assert all(abs(v - 1000) < 120 for v in counts.values())


def test_random_click_respects_ignore():
    mask = np.ones((5, 5), bool)
    ignore = np.ones_like(mask)
    ignore[2, 3] = False
    assert random_click(mask, np.random.default_rng(1), ignore=ignore) == Click(3.0, 2.0, 1)
