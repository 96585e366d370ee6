"""Real benchmark files: metrics on a fixed GrabCut subset, the classical peers, and the model adapter."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from hf_iis.evaluation import (
    EmptySegmenter,
    OracleSegmenter,
    iou,
    load_benchmark,
    run_center_click,
    run_noc,
    summarize_curves,
)
from hf_iis.utils.clicker import center_click
from tests.conftest import require_full_data

GRABCUT_SUBSET = ["106024", "124080", "153077"]  # the first three ids in sorted order


@pytest.fixture(scope="module")
def grabcut3(data_root):
    return load_benchmark("GrabCut", data_root, limit=3)


def _independent_iou(data_root, sample_id: str) -> float:
    """IoU of the 3-px-eroded gt against the gt, from the raw .bmp, with numpy/scipy only."""
    raw = np.asarray(Image.open(data_root / "GrabCut" / "boundary_GT" / f"{sample_id}.bmp").convert("L"))
    gt, valid = raw == 255, raw != 128
    eroded = binary_erosion(gt, np.ones((7, 7), bool), border_value=0)
    return float((eroded & gt & valid).sum() / ((eroded | gt) & valid).sum())


def test_grabcut_subset_is_the_expected_one(grabcut3):
    require_full_data("GrabCut's first three ids")
    assert [i.id for i in grabcut3] == GRABCUT_SUBSET
    assert grabcut3[0].ignore is None or not grabcut3[0].ignore.any()
    assert grabcut3[1].ignore is not None and grabcut3[1].ignore.any()  # 128 band present


def test_eroded_oracle_metrics_on_real_grabcut_match_independent_computation(data_root, grabcut3):
    require_full_data("hand-checked IoUs of GrabCut's first three masks")
    expected = [_independent_iou(data_root, i) for i in GRABCUT_SUBSET]
    np.testing.assert_allclose(expected, [0.792128, 0.885057, 0.850668], atol=1e-6)  # hand-checked once
    runs = run_noc(OracleSegmenter(erode_px=3), grabcut3, max_clicks=20, progress=False)
    np.testing.assert_allclose([r.ious[0] for r in runs], expected, rtol=0, atol=1e-12)
    s = summarize_curves([r.ious for r in runs])
    assert s["mIoU@1"] == pytest.approx(100 * np.mean(expected))
    assert s["mIoU@1"] == pytest.approx(84.2618, abs=1e-3)
    assert s["NoC@85"] == pytest.approx((20 + 1 + 1) / 3)  # 0.792 never reaches 0.85; the others do at click 1
    assert s["NoC@90"] == 20.0 and s["NoF@90"] == 3 and s["NoF@85"] == 1


def test_center_click_lies_inside_each_real_object(grabcut3):
    for inst in grabcut3:
        c = center_click(inst.gt, inst.ignore)
        assert c.sign == 1 and inst.gt[int(c.y), int(c.x)]


@pytest.mark.parametrize("peer, dataset", [("grabcut", "GrabCut"), ("random_walker", "Berkeley")])
def test_peer_runs_on_a_real_image_and_beats_an_empty_prediction(data_root, peer, dataset):
    from hf_iis.evaluation.peers import make_peer

    inst = load_benchmark(dataset, data_root, limit=1)
    runs = run_noc(make_peer(peer), inst, max_clicks=2, progress=False)
    empty = run_noc(EmptySegmenter(), inst, max_clicks=2, progress=False)
    assert max(runs[0].ious) > empty[0].ious[-1] + 0.2
    assert all(0.0 <= v <= 1.0 for v in runs[0].ious)


def test_peer_factory_rejects_unknown_names():
    from hf_iis.evaluation.peers import make_peer

    with pytest.raises(KeyError):
        make_peer("sam")


def test_model_segmenter_encodes_once_per_image(tiny_checkpoint, grabcut3):
    from hf_iis.evaluation import ModelSegmenter
    from hf_iis.evaluation.protocols import run_instances, run_random_click, summarize_random
    from hf_iis.inference.predictor import SignedClickPredictor

    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    seg = ModelSegmenter(predictor, tta=1)
    runs = run_noc(seg, grabcut3[:2], max_clicks=3, progress=False)
    assert predictor.encode_count == 2  # one encoder batch per image, corrective clicks reuse the cache
    assert all(len(r.ious) == 3 and r.encode_seconds > 0 for r in runs)
    rand = run_random_click(seg, grabcut3[:1], seeds=(0, 1, 2), progress=False)
    assert predictor.encode_count == 3
    loops, rands = run_instances(seg, grabcut3[1:3], max_clicks=2, seeds=(0, 1), progress=False)
    assert predictor.encode_count == 5  # click loop and random clicks share one encoding per image
    assert [len(r.ious) for r in loops] == [2, 2] and [len(r.ious) for r in rands] == [2, 2]
    # the batched single-click path gives what one predict call per click gives
    class OneByOne(ModelSegmenter):
        batch_single_clicks = False

    slow = OneByOne(predictor, tta=1)
    rand_slow = run_random_click(slow, grabcut3[:1], seeds=(0, 1, 2), progress=False)
    np.testing.assert_allclose(rand[0].ious, rand_slow[0].ious, atol=1e-3)
    assert summarize_random(rand)["mIoU@1 random"] >= 0.0


def test_averaged_clicks_segmenter_averages_single_click_maps(tiny_checkpoint, grabcut3):
    from hf_iis.evaluation import AveragedClicksSegmenter
    from hf_iis.inference.predictor import SignedClickPredictor
    from hf_iis.utils.clicker import Click

    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    seg = AveragedClicksSegmenter(predictor)
    inst = grabcut3[0]
    seg.set_image(inst.image)
    clicks = [Click(200.0, 150.0, 1), Click(20.0, 20.0, -1)]
    avg = seg.predict(clicks, None)
    pos = predictor.predict_single_clicks(np.array([[200.0, 150.0]]), sign=1)[0]
    neg = predictor.predict_single_clicks(np.array([[20.0, 20.0]]), sign=-1)[0]
    np.testing.assert_allclose(avg, (pos + neg) / 2, atol=1e-6)
    assert avg.shape == inst.gt.shape and avg.dtype == np.float32


def test_center_click_protocol_with_model_runs_on_real_images(tiny_checkpoint, grabcut3):
    from hf_iis.evaluation import ModelSegmenter
    from hf_iis.inference.predictor import SignedClickPredictor

    seg = ModelSegmenter(SignedClickPredictor.from_pretrained(tiny_checkpoint), tta=2, triangulation=2,
                         sampling="stratified")
    runs = run_center_click(seg, grabcut3[:1], progress=False)
    assert len(runs[0].ious) == 1 and 0.0 <= runs[0].ious[0] <= 1.0
    assert iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0
