"""Zero-shot proposals (mask NMS, ordering, average recall) and the inference-scaling study."""

from __future__ import annotations

import numpy as np
import pytest

from hf_iis.data.sample import Sample
from hf_iis.evaluation import Instance
from hf_iis.evaluation.proposals import (
    dedupe_masks,
    generate_proposals,
    mask_nms,
    proposal_points,
    run_proposals,
    summarize_proposals,
)
from hf_iis.utils.clicker import Click


class RegionSegmenter:
    """A click returns the region of a fixed label map that contains it (probability 0.9 inside)."""

    name = "region"

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def set_image(self, image: np.ndarray) -> None:
        pass

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        c = clicks[-1]
        return 0.9 * (self.labels == self.labels[int(c.y), int(c.x)]).astype(np.float32)


def _quadrants(size: int = 32) -> np.ndarray:
    labels = np.zeros((size, size), int)
    labels[: size // 2, size // 2 :] = 1
    labels[size // 2 :, : size // 2] = 2
    labels[size // 2 :, size // 2 :] = 3
    return labels


def test_proposal_points_grid_then_random_inside_the_image():
    pts = proposal_points(20, 30, grid=2, n_random=5, seed=0)
    assert pts.shape == (9, 2)
    np.testing.assert_allclose(pts[:4], [[7, 5], [22, 5], [7, 15], [22, 15]])
    assert (pts[:, 0] < 30).all() and (pts[:, 1] < 20).all() and (pts >= 0).all()


def test_mask_nms_keeps_the_best_of_duplicates_in_score_order():
    a = np.zeros((16, 16), bool)
    a[:8] = True
    a2 = a.copy()
    a2[8, 0] = True  # near-duplicate of a
    b = ~a
    assert mask_nms([a, a2, b], [0.5, 0.9, 0.7], iou_threshold=0.7, stride=1) == [1, 2]
    assert mask_nms([], []) == []
    assert len(dedupe_masks([a, a2, b])) == 2


def test_proposals_recall_every_region_at_n_equal_number_of_gt():
    labels = _quadrants()
    image = np.zeros((32, 32, 3), np.uint8)
    seg = RegionSegmenter(labels)
    props = generate_proposals(seg, image, proposal_points(32, 32, grid=2, n_random=12, seed=1))
    assert len(props) == 4  # 16 clicks, 4 distinct regions after mask NMS
    assert all(p.score == pytest.approx(0.9) for p in props)
    gts = [labels == k for k in range(4)]
    runs = run_proposals(seg, [Sample("quad", image, gts, None, "toy")], grid=2, n_random=12, progress=False)
    np.testing.assert_allclose(runs[0].curve[:4], [0.25, 0.5, 0.75, 1.0])
    assert runs[0].headline == 1.0 and runs[0].num_gt == 4
    summary = summarize_proposals(runs)
    assert summary["AR@#gt"] == 100.0 and len(summary["ar_curve"]) == 16


def test_scaling_study_rows_and_multiclick_comparison(tiny_checkpoint, photo):
    from hf_iis.evaluation.scaling import ScalingSetting, run_multiclick_comparison, run_scaling, scaling_grid
    from hf_iis.inference.predictor import SignedClickPredictor

    grid = scaling_grid((1, 2), (2,), ("uniform", "stratified"), ((2, 2, "stratified"),))
    assert grid == [ScalingSetting(1), ScalingSetting(2), ScalingSetting(1, 2, "uniform"),
                    ScalingSetting(1, 2, "stratified"), ScalingSetting(2, 2, "stratified")]
    gt = np.zeros(photo.shape[:2], bool)
    gt[100:200, 150:300] = True
    instances = [Instance("box", photo, gt, None)]
    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    rows = run_scaling(predictor, instances, grid[:3], seeds=(0, 1), progress=False)
    assert [r.scaling for r in rows] == ["tta=1", "tta=2", "tta=1, tri=2 uniform"]
    for r in rows:
        assert 0.0 <= r.miou1_center <= 100.0 and r.seconds_per_call > 0
        assert list(r.to_dict())[4:10] == ["tta", "triangulation", "sampling", "scaling", "mIoU@1 center",
                                           "mIoU@1 random"]  # the keys of results.json's "scaling" rows
    comparison = run_multiclick_comparison(predictor, instances, max_clicks=3, progress=False)
    assert len(comparison) == 2
    for summary, runs in comparison.values():
        assert len(summary.miou_curve) == 3 and len(runs) == 1 and summary.seconds_per_click > 0


def test_corpus_validation_split_feeds_the_proposal_protocol(tmp_path):
    pytest.importorskip("datasets")
    from hf_iis.data.hf_datasets import samples_to_dataset, write_shards
    from hf_iis.evaluation.benchmarks import load_corpus_split

    labels = _quadrants(16)
    image = np.full((16, 16, 3), 100, np.uint8)
    samples = [Sample("multi", image, [labels == k for k in range(3)], None, "toy"),
               Sample("single", image, [labels == 0], None, "toy")]
    write_shards(samples_to_dataset(samples, split="validation", cache_dir=tmp_path / "cache"), tmp_path,
                 "validation", 10)
    loaded = load_corpus_split(tmp_path, "validation", min_masks=2)
    assert [s.id for s in loaded] == ["multi"] and len(loaded[0].masks) == 3
    np.testing.assert_array_equal(loaded[0].masks[1], labels == 1)
