"""The runner's fixed subsets (NoC / random clicks on a spread of a large benchmark, the center click on all) and a
benchmark name with a dash through results, instance records, table and plot file names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_iis.evaluation import Instance, OracleSegmenter
from hf_iis.evaluation.runner import EvalConfig, run_evaluation, spread_subset


def test_spread_subset_is_fixed_and_evenly_spaced():
    assert spread_subset(10, None) == list(range(10)) and spread_subset(10, 10) == list(range(10))
    assert spread_subset(10, 20) == list(range(10))
    assert spread_subset(10, 4) == [0, 3, 6, 9]
    assert spread_subset(3862, 200)[:3] == [0, 19, 39] and spread_subset(3862, 200)[-1] == 3861
    assert len(spread_subset(3862, 200)) == 200 and spread_subset(5, 1) == [0] and spread_subset(5, 0) == []


class _Oracle(OracleSegmenter):
    settings_label = "the ground truth, eroded"


def _toy_instances(n: int) -> list[Instance]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    out = []
    for k in range(n):
        gt = np.zeros((40, 50), bool)
        gt[5 + k: 25 + k, 10: 30 + k] = True
        out.append(Instance(f"toy{k}", image, gt, None))
    return out


def test_noc_and_random_on_a_subset_center_click_on_all(monkeypatch, tmp_path):
    from hf_iis.evaluation import peers, runner

    instances = _toy_instances(7)
    monkeypatch.setattr(runner, "load_benchmark", lambda name, root=None, limit=None: instances[:limit])
    monkeypatch.setitem(peers.PEERS, "oracle2", lambda: _Oracle(erode_px=2))
    cfg = EvalConfig(datasets=["Toy-regions"], peers=["oracle2"], protocols=["noc", "miou1", "random"],
                     noc_limit=3, random_limit=2, seeds=2, max_clicks=4, overlays=1, progress=False,
                     out=str(tmp_path / "eval"))
    results = run_evaluation(cfg)
    (row,) = results["results"]
    m = row["metrics"]
    assert row["dataset"] == "Toy-regions" and row["num_instances"] == 7
    assert m["NoC instances"] == 3 and m["random instances"] == 2 and m["center instances"] == 7
    assert len(m["miou_curve"]) == 4
    records = json.loads((tmp_path / "eval" / "instances.json").read_text())
    assert [r["id"] for r in records] == [f"toy{k}" for k in range(7)]
    assert [k for k, r in enumerate(records) if "ious" in r] == spread_subset(7, 3) == [0, 3, 6]
    assert [k for k, r in enumerate(records) if "iou@1 random" in r] == [0, 6]
    center = [r["ious"][0] if "ious" in r else r["iou@1 center"] for r in records]
    assert m["mIoU@1 center"] == pytest.approx(100 * np.mean(center))
    table = (tmp_path / "eval" / "table.md").read_text()
    assert "Toy-regions: NoC / mIoU@k on 3 of 7 instances, random clicks on 2 of 7 instances" in table
    plots = {p.name for p in (tmp_path / "eval" / "plots").iterdir()}
    assert {"miou_vs_clicks_Toy-regions.png", "miou_vs_seconds_Toy-regions.png", "overlays_Toy-regions.png"} <= plots


def test_without_limits_every_instance_runs_every_protocol(monkeypatch, tmp_path):
    from hf_iis.evaluation import peers, runner

    instances = _toy_instances(3)
    monkeypatch.setattr(runner, "load_benchmark", lambda name, root=None, limit=None: instances)
    monkeypatch.setitem(peers.PEERS, "oracle", _Oracle)
    cfg = EvalConfig(datasets=["Toy"], peers=["oracle"], protocols=["noc", "random"], seeds=2, max_clicks=2,
                     overlays=0, progress=False, out=str(tmp_path / "eval"))
    m = run_evaluation(cfg)["results"][0]["metrics"]
    assert m["NoC instances"] == m["random instances"] == m["center instances"] == 3
    assert m["mIoU@1 center"] == pytest.approx(100.0) and m["NoC@90"] == pytest.approx(1.0)
    assert "of 3 instances" not in (tmp_path / "eval" / "table.md").read_text()
