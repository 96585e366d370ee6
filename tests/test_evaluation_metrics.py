"""Metric definitions (IoU with ignore band, NoC / NoF, mIoU@k, average recall) and the click loops on synthetic
instances with the oracle and empty segmenters."""

from __future__ import annotations

import numpy as np
import pytest

from hf_iis.evaluation import (
    EmptySegmenter,
    Instance,
    OracleSegmenter,
    iou,
    noc,
    nof,
    run_center_click,
    run_noc,
    run_random_click,
    summarize_curves,
    summarize_random,
)
from hf_iis.evaluation.metrics import average_recall_curve, binarize, iou_matrix


def test_iou_with_ignore_band_hand_computed():
    # 1-D picture of a 1x6 image: gt = [1 1 1 0 0 0], pred = [0 1 1 1 1 0], ignore = [0 0 0 1 0 0]
    gt = np.array([[1, 1, 1, 0, 0, 0]], bool)
    pred = np.array([[0, 1, 1, 1, 1, 0]], bool)
    ignore = np.array([[0, 0, 0, 1, 0, 0]], bool)
    assert iou(pred, gt) == pytest.approx(2 / 5)  # intersection {1,2}, union {0..4}
    assert iou(pred, gt, ignore) == pytest.approx(2 / 4)  # pixel 3 leaves the union only
    ignore2 = np.array([[1, 0, 0, 1, 0, 0]], bool)
    assert iou(pred, gt, ignore2) == pytest.approx(2 / 3)  # a missed gt pixel in the band does not count either
    ignore3 = np.array([[0, 1, 0, 0, 0, 0]], bool)
    assert iou(pred, gt, ignore3) == pytest.approx(1 / 4)  # an ignored hit leaves the intersection too


def test_iou_empty_masks_and_shape_check():
    z = np.zeros((3, 3), bool)
    assert iou(z, z) == 1.0
    assert iou(z, ~z) == 0.0
    with pytest.raises(ValueError):
        iou(z, np.zeros((3, 4), bool))


def test_binarize_includes_the_threshold():
    """probability >= threshold, as Prediction.mask() and the pipeline's mask: one rule everywhere."""
    assert binarize(np.array([0.49, 0.5, 0.51])).tolist() == [False, True, True]
    assert binarize(np.array([0.3, 0.7]), threshold=0.7).tolist() == [False, True]


def test_noc_nof_and_miou():
    curves = [
        [0.5, 0.86, 0.91, 0.96],  # NoC85 = 2, NoC90 = 3, NoC95 = 4
        [0.95, 0.95, 0.95, 0.95],  # 1, 1, 1
        [0.1, 0.2, 0.3, 0.88],  # 4, never (=4), never (=4)
    ]
    assert [noc(c, 0.85, 4) for c in curves] == [2, 1, 4]
    assert [noc(c, 0.90, 4) for c in curves] == [3, 1, 4]
    assert nof(curves, 0.85, 4) == 0  # the third reaches 0.85 exactly at the last click: not a failure
    assert nof(curves, 0.90, 4) == 1
    assert nof(curves, 0.95, 4) == 1
    s = summarize_curves(curves)
    assert s["NoC@85"] == pytest.approx(7 / 3)
    assert s["NoC@90"] == pytest.approx(8 / 3)
    assert s["NoF@90"] == 1
    assert s["mIoU@1"] == pytest.approx(100 * (0.5 + 0.95 + 0.1) / 3)
    assert s["mIoU@4"] == pytest.approx(100 * (0.96 + 0.95 + 0.88) / 3)
    assert len(s["miou_curve"]) == 4


def test_noc_counts_only_the_first_max_clicks():
    assert noc([0.1, 0.2, 0.99], 0.9, max_clicks=2) == 2


def test_average_recall_curve():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[2:, :2] = True
    half_a = np.zeros((4, 4), bool)
    half_a[:2, :2] = True
    # proposals: half of a (IoU 0.5 with a), then b exactly, then a exactly
    curve = average_recall_curve([a, b], [half_a, b, a], max_proposals=5)
    np.testing.assert_allclose(curve, [0.25, 0.75, 1.0, 1.0, 1.0])
    assert average_recall_curve([a], [], max_proposals=3).tolist() == [0, 0, 0]
    assert iou_matrix([a], [a, b]).tolist() == [[1.0, 0.0]]


def _toy_instances(n: int = 3) -> list[Instance]:
    out = []
    for k in range(n):
        image = np.full((24, 32, 3), 40 * k, np.uint8)
        gt = np.zeros((24, 32), bool)
        gt[4 + k : 15 + k, 6 : 20 + k] = True
        ignore = np.zeros_like(gt)
        ignore[3 + k, :] = True
        out.append(Instance(f"toy{k}", image, gt, ignore if k % 2 else None))
    return out


def test_oracle_has_noc_one_and_miou_100():
    runs = run_noc(OracleSegmenter(), _toy_instances(), max_clicks=20, progress=False)
    s = summarize_curves([r.ious for r in runs])
    assert s["NoC@85"] == s["NoC@90"] == s["NoC@95"] == 1.0
    assert s["NoF@95"] == 0
    assert s["mIoU@1"] == 100.0 and s["mIoU@20"] == 100.0
    center = run_center_click(OracleSegmenter(), _toy_instances(), progress=False)
    assert [r.ious for r in center] == [[1.0]] * 3
    rand = summarize_random(run_random_click(OracleSegmenter(), _toy_instances(), seeds=(0, 1, 2), progress=False))
    assert rand["mIoU@1 random"] == 100.0 and rand["mIoU@1 random std"] == 0.0


def test_empty_segmenter_has_noc_20_and_every_instance_fails():
    instances = _toy_instances()
    runs = run_noc(EmptySegmenter(), instances, max_clicks=20, progress=False)
    s = summarize_curves([r.ious for r in runs])
    assert s["NoC@85"] == s["NoC@90"] == 20.0
    assert s["NoF@85"] == s["NoF@90"] == len(instances)
    assert s["mIoU@20"] == 0.0
    assert all(len(r.clicks) == 20 and len(r.predict_seconds) == 20 for r in runs)
    assert all(c.sign == 1 for r in runs for c in r.clicks)  # nothing predicted: every click is positive


def test_click_loop_feeds_back_the_previous_map_and_clicks_accumulate():
    seen = []

    class Recorder(OracleSegmenter):
        def predict(self, clicks, prev_mask):
            seen.append((len(clicks), None if prev_mask is None else float(prev_mask.sum())))
            return super().predict(clicks, prev_mask) * 0.0 + (len(clicks) % 2)

    run_noc(Recorder(), _toy_instances(1), max_clicks=3, progress=False)
    h, w = 24, 32
    assert seen == [(1, None), (2, float(h * w)), (3, 0.0)]


def test_random_clicks_are_the_same_for_every_method():
    inst = _toy_instances()
    a = run_random_click(OracleSegmenter(), inst, seeds=(0, 1), progress=False)
    b = run_random_click(EmptySegmenter(), inst[::-1], seeds=(0, 1), progress=False)
    assert [r.clicks for r in a] == [r.clicks for r in b[::-1]]
    assert all(i.gt[int(c.y), int(c.x)] for i, r in zip(inst, a, strict=True) for c in r.clicks)


def test_paired_difference_by_hand():
    """Differences 1, 1, 1, 1: every resample means 1, so the interval collapses onto the difference."""
    from hf_iis.evaluation.metrics import paired_difference

    out = paired_difference([2, 3, 4, 5], [1, 2, 3, 4])
    assert out == {"diff": 1.0, "low": 1.0, "high": 1.0}


def test_paired_difference_interval_covers_zero_for_noise_and_not_for_a_shift():
    from hf_iis.evaluation.metrics import paired_difference

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    noise = paired_difference(base + rng.normal(0, 0.2, 200), base)
    shift = paired_difference(base + 0.1 + rng.normal(0, 0.05, 200), base)
    assert noise["low"] < 0 < noise["high"]
    assert 0.08 < shift["low"] < shift["diff"] < shift["high"] < 0.12
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1, 2], [1])
