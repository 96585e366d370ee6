"""`scripts/evaluate.py --triangulation-modes`: a row per triangulation mode for every K > 0, labelled apart, the
conditioned mode reaching the predictor, bad modes refused before any work, and models that cannot run it left out
with a reason."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from hf_iis.evaluation import runner
from hf_iis.evaluation.segmenters import ModelSegmenter
from hf_iis.utils.clicker import Click
from tests.conftest import load_script


class Recorder:
    """A predictor stand-in that records its keywords; `model` says which kind of model it serves."""

    def __init__(self, model_type: str = "signed_click_segmenter") -> None:
        self.model = SimpleNamespace(config=SimpleNamespace(model_type=model_type))
        self.calls: list[dict] = []

    def set_image(self, image):
        pass

    def predict(self, clicks=None, prev_mask=None, triangulation_mode="independent", **kwargs):
        self.calls.append({"triangulation_mode": triangulation_mode, **kwargs})
        return SimpleNamespace(probabilities=np.zeros((4, 4), np.float32))


class NoModeKeyword:
    """A predictor whose `predict` predates the keyword."""

    def predict(self, clicks=None, prev_mask=None, tta=1, triangulation=0, triangulation_sampling="uniform", seed=0):
        return SimpleNamespace(probabilities=np.zeros((4, 4), np.float32))


def test_the_segmenter_passes_the_mode_and_labels_it_only_with_triangulation():
    recorder = Recorder()
    seg = ModelSegmenter(recorder, triangulation=4, triangulation_mode="conditioned")
    seg.predict([Click(1.0, 1.0, 1)], None)
    assert recorder.calls[-1]["triangulation_mode"] == "conditioned"
    assert seg.settings_label == "tta=1, tri=4 uniform conditioned"
    assert ModelSegmenter(recorder, triangulation=4).settings_label == "tta=1, tri=4 uniform"
    assert ModelSegmenter(recorder, triangulation_mode="conditioned").settings_label == "tta=1"  # K = 0: no mode
    ModelSegmenter(NoModeKeyword(), triangulation=2).predict([Click(1.0, 1.0, 1)], None)  # not given: no TypeError


def test_which_predictors_run_the_conditioned_mode():
    from hf_iis.evaluation.segmenters import runs_conditioned_triangulation

    assert runs_conditioned_triangulation(Recorder())
    assert not runs_conditioned_triangulation(Recorder("signed_click_student"))  # takes the keyword, refuses it
    assert not runs_conditioned_triangulation(NoModeKeyword())


def test_modes_multiply_only_triangulation_rows_and_a_student_skips_the_conditioned_ones(monkeypatch, tmp_path):
    predictors = {"teacher": Recorder(), "student": Recorder("signed_click_student")}
    monkeypatch.setattr("hf_iis.inference.predictors.load_predictor", lambda path: predictors[path])
    cfg = runner.EvalConfig(models=["teacher", "student"], triangulation=[0, 4], sampling=["uniform", "stratified"],
                            triangulation_modes=["independent", "conditioned"], out=str(tmp_path / "o"))
    methods, _, skipped = runner._model_methods(cfg)
    teacher = [m for m in methods if m.model_path == "teacher"]
    assert [m.segmenter.name for m in teacher] == [
        "teacher [tta=1]",  # K = 0: one row, whatever the modes
        "teacher [tta=1, tri=4 uniform]", "teacher [tta=1, tri=4 uniform conditioned]",
        "teacher [tta=1, tri=4 stratified]", "teacher [tta=1, tri=4 stratified conditioned]"]
    assert [m.settings["triangulation_mode"] for m in teacher] == [None] + ["independent", "conditioned"] * 2
    assert [m.segmenter.name for m in methods if m.model_path == "student"] == [
        "student [tta=1]", "student [tta=1, tri=4 uniform]", "student [tta=1, tri=4 stratified]"]
    assert [s["method"] for s in skipped] == ["student [tta=1, tri=4 uniform conditioned]",
                                              "student [tta=1, tri=4 stratified conditioned]"]
    assert all("triangulation_mode='conditioned'" in s["reason"] for s in skipped)


def test_the_scaling_grid_takes_modes_too():
    from hf_iis.evaluation.scaling import scaling_grid

    grid = scaling_grid((1,), (4,), ("uniform",), ((2, 4, "stratified"), (2, 0, "stratified")),
                        ("independent", "conditioned"))
    assert [g.label for g in grid] == ["tta=1", "tta=1, tri=4 uniform", "tta=1, tri=4 uniform conditioned",
                                       "tta=2, tri=4 stratified", "tta=2, tri=4 stratified conditioned", "tta=2"]


@pytest.mark.parametrize("flag", ["--triangulation-modes", "--scaling-triangulation-modes"])
@pytest.mark.parametrize("value", ["independent,bogus", "", "Conditioned"])
def test_a_bad_mode_is_one_line_naming_the_accepted_ones_before_any_work(flag, value, tmp_path, capsys):
    out = tmp_path / "never"
    assert load_script("evaluate").main([flag, value, "--peers", "none", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"evaluate.py: error: {flag}"), err
    assert "independent, conditioned" in err[0]
    assert not out.exists()


def test_the_library_refuses_a_bad_mode_too(tmp_path):
    with pytest.raises(ValueError, match="triangulation_mode"):
        runner.check_config(runner.EvalConfig(triangulation_modes=["nope"], out=str(tmp_path / "o")))
    with pytest.raises(ValueError, match="independent, conditioned"):
        runner.check_config(runner.EvalConfig(triangulation_modes=[], out=str(tmp_path / "o")))


def test_both_modes_run_end_to_end_as_distinct_rows(tiny_checkpoint, data_root, tmp_path):
    out = tmp_path / "eval"
    argv = ["--model", str(tiny_checkpoint), "--datasets", "GrabCut", "--data-root", str(data_root),
            "--protocols", "noc,miou1,scaling", "--max-clicks", "2", "--limit", "1", "--peers", "none",
            "--overlays", "0", "--triangulation", "0,2", "--triangulation-modes", "independent,conditioned",
            "--scaling-tta", "1", "--scaling-triangulation", "2", "--scaling-sampling", "uniform",
            "--scaling-combos", "none", "--scaling-triangulation-modes", "independent,conditioned", "--seeds", "1",
            "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("evaluate").main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["triangulation_modes"] == ["independent", "conditioned"]
    rows = results["results"]
    assert [r["scaling"] for r in rows] == ["tta=1", "tta=1, tri=2 uniform", "tta=1, tri=2 uniform conditioned"]
    assert len({r["method"] for r in rows}) == 3
    assert [r["settings"]["triangulation_mode"] for r in rows] == [None, "independent", "conditioned"]
    for r in rows:
        for value in (r["metrics"]["mIoU@1 center"], *r["metrics"]["miou_curve"]):
            assert 0.0 <= value <= 100.0 and np.isfinite(value)
    assert "tri=2 uniform conditioned" in (out / "table.md").read_text()
    with (out / "instances.csv").open() as f:
        assert len({r["method"] for r in csv.DictReader(f)}) == 3
    assert (out / "plots" / "miou_vs_clicks_GrabCut.png").is_file()
    scaling = results["scaling"]  # the built-in scaling study takes its own modes
    assert [r["scaling"] for r in scaling] == ["tta=1", "tta=1, tri=2 uniform", "tta=1, tri=2 uniform conditioned"]
    assert [r.get("triangulation_mode") for r in scaling] == [None, "independent", "conditioned"]
    assert all(0.0 <= r["mIoU@1 center"] <= 100.0 for r in scaling)
