"""The `evaluate` metric module loads offline from its folder and returns what metrics.py returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hf_iis
from hf_iis.evaluation.metrics import iou, summarize_curves

METRIC_DIR = Path(hf_iis.__file__).parent / "metrics" / "interactive_segmentation"


@pytest.fixture(scope="module")
def evaluate():
    return pytest.importorskip("evaluate")


def test_curves_config_matches_summarize_curves(evaluate):
    rng = np.random.default_rng(0)
    curves = np.clip(np.sort(rng.random((6, 20)), axis=1) * 1.05, 0, 1)
    metric = evaluate.load(str(METRIC_DIR), "curves")
    out = metric.compute(predictions=curves.tolist())
    expected = summarize_curves(curves)
    for key in ("NoC@85", "NoC@90", "NoC@95", "NoF@85", "NoF@90", "NoF@95", "mIoU@1", "mIoU@5", "mIoU@20"):
        assert out[key] == pytest.approx(expected[key]), key
    assert out["miou_curve"] == pytest.approx(expected["miou_curve"])


def test_masks_config_matches_iou_with_ignore(evaluate):
    rng = np.random.default_rng(1)
    preds = [rng.random((7, 9)).astype(np.float32) for _ in range(3)]
    refs = [(rng.random((7, 9)) > 0.5).astype(np.uint8) for _ in range(3)]
    ignore = [None, (rng.random((7, 9)) > 0.8).astype(np.uint8), None]
    metric = evaluate.load(str(METRIC_DIR))
    out = metric.compute(predictions=preds, references=refs, ignore=ignore)
    expected = [iou(p >= 0.5, r > 0, None if g is None else g > 0) for p, r, g in zip(preds, refs, ignore, strict=True)]
    assert out["ious"] == pytest.approx(expected)
    assert out["mIoU"] == pytest.approx(100 * np.mean(expected))


def test_masks_config_accumulates_batches(evaluate):
    metric = evaluate.load(str(METRIC_DIR))
    gt = np.zeros((4, 4), np.uint8)
    gt[:2] = 1
    metric.add_batch(predictions=[gt.astype(np.float32)], references=[gt])
    metric.add(predictions=np.zeros((4, 4), np.float32), references=gt)
    assert metric.compute()["ious"] == [1.0, 0.0]


def test_import_hf_iis_stays_light():
    import subprocess
    import sys

    code = ("import sys, hf_iis, hf_iis.utils.clicker, hf_iis.evaluation, hf_iis.evaluation.runner; "
            "print(','.join(m for m in ('matplotlib', 'evaluate', 'skimage') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
