"""Boundary IoU on masks small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hf_iis.metrics.boundary_iou import boundary_band, boundary_iou, dilation_pixels


def square(top: int, left: int, side: int = 10, shape=(20, 20)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_identical_masks_score_one():
    gt = square(5, 5)
    assert boundary_iou(gt, gt.copy(), dilation=1) == 1.0
    assert boundary_iou(gt, gt.copy()) == 1.0  # the paper's 2 % of the diagonal


def test_band_of_width_one_is_the_inner_ring():
    band = boundary_band(square(5, 5), 1)
    assert band.sum() == 10 * 10 - 8 * 8  # 36 pixels
    assert band[5, 5:15].all() and band[14, 5:15].all() and band[5:15, 5].all() and band[5:15, 14].all()
    assert not band[6:14, 6:14].any()
    assert boundary_band(square(5, 5), 2).sum() == 10 * 10 - 6 * 6


def test_square_shifted_by_two_columns():
    """Rings of [5, 14]² and [5, 14] × [7, 16]: they share the top and bottom rows over columns 7..14 (2 × 8 = 16
    pixels); the union is 36 + 36 − 16 = 56, so boundary IoU = 16 / 56 = 2 / 7, while mask IoU is 80 / 120."""
    gt, pred = square(5, 5), square(5, 7)
    assert boundary_iou(pred, gt, dilation=1) == pytest.approx(2 / 7)
    assert boundary_iou(gt, pred, dilation=1) == pytest.approx(2 / 7)  # symmetric


def test_image_border_is_contour():
    full = np.ones((6, 8), dtype=bool)
    band = boundary_band(full, 1)
    assert band.sum() == 6 * 8 - 4 * 6  # the outer ring of the image
    assert not band[1:5, 1:7].any()


def test_empty_cases():
    empty, gt = np.zeros((20, 20), dtype=bool), square(5, 5)
    assert boundary_iou(empty, empty) == 1.0  # nothing to find, nothing found: iou()'s convention
    assert boundary_iou(empty, gt) == 0.0
    assert boundary_iou(gt, empty) == 0.0


def test_ignore_pixels_count_in_neither_band():
    gt, pred = square(5, 5), square(5, 7)
    ignore = np.zeros_like(gt)
    ignore[:, :10] = True  # hides the left halves, where the two rings differ by their left columns
    # left: gt ring cols 10..14 (rows 5, 14 → 10 px) + col 14 rows 6..13 (8) = 18; pred ring: rows 5, 14 cols 10..16
    # (14) + col 16 rows 6..13 (8) = 22; shared: rows 5, 14 cols 10..14 = 10; union 18 + 22 − 10 = 30
    assert boundary_iou(pred, gt, ignore, dilation=1) == pytest.approx(10 / 30)


def test_dilation_from_the_diagonal():
    assert dilation_pixels((480, 640)) == 16  # 0.02 × 800
    assert dilation_pixels((321, 481)) == 12  # 0.02 × 578.3
    assert dilation_pixels((10, 10)) == 1  # at least one pixel


@pytest.mark.parametrize("kwargs", [{"dilation": 0}, {"dilation": 1.5}, {"dilation_ratio": 0.0},
                                    {"dilation_ratio": 2.0}])
def test_bad_band_widths_are_refused(kwargs):
    with pytest.raises(ValueError, match="dilation"):
        boundary_iou(square(5, 5), square(5, 5), **kwargs)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        boundary_iou(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_click_loop_and_runner_report_boundary_iou():
    """The NoC loop records boundary IoU per click and the evaluation row carries its mean beside mIoU."""
    from hf_iis.evaluation.benchmarks import Instance
    from hf_iis.evaluation.protocols import run_click_loop
    from hf_iis.evaluation.runner import EvalConfig, _evaluate_method, _Method
    from hf_iis.evaluation.segmenters import OracleSegmenter

    gt = np.zeros((40, 40), dtype=bool)
    gt[8:32, 8:32] = True
    instance = Instance("square", np.zeros((40, 40, 3), dtype=np.uint8), gt)
    exact = run_click_loop(OracleSegmenter(), instance, max_clicks=2)
    assert exact.boundary_ious == [1.0, 1.0]
    eroded = run_click_loop(OracleSegmenter(erode_px=1), instance, max_clicks=1)
    # 24² square eroded to 22²: bands (d = round(0.02 · 56.6) = 1) of 92 and 84 pixels share none, mask IoU 484/576
    assert eroded.boundary_ious == [0.0] and eroded.ious[0] == pytest.approx(484 / 576)

    method = _Method(OracleSegmenter(erode_px=1), "peer", None, "none", {})
    row, records, _ = _evaluate_method(method, "toy", [instance], EvalConfig(protocols=["noc"], max_clicks=2))
    assert row.metrics.biou1_center == 0.0 and row.metrics.biou_curve == [0.0, 0.0]
    assert row.to_dict()["metrics"]["bIoU@1 center"] == 0.0 and records[0]["boundary_ious"] == [0.0, 0.0]
