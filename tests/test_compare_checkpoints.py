"""`scripts/compare_checkpoints.py`: paired validation comparison of checkpoints, end to end on a tiny corpus."""

from __future__ import annotations

import json

import pytest

from hf_iis.training.toy import coco_mval_rows, write_corpus
from tests.conftest import load_script


def _tiny_student(folder):
    """A randomly initialised tiny student checkpoint, saved as distillation saves it."""
    import torch

    from hf_iis import SignedClickImageProcessor
    from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


def test_a_checkpoint_against_itself_differs_by_exactly_zero(tiny_checkpoint, data_root, tmp_path):
    rows = coco_mval_rows(data_root, n=3, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "cmp"
    argv = ["--baseline", str(tiny_checkpoint), "--candidate", f"same={tiny_checkpoint}", "--corpus", str(corpus),
            "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("compare_checkpoints").main(argv) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["masks"] == 2 and [r["name"] for r in report["rows"]] == ["baseline", "same"]
    for metric in ("center", "center tta=4", "random"):
        assert report["rows"][1][f"{metric} vs baseline"] == {"diff": 0.0, "low": 0.0, "high": 0.0}
        assert 0.0 <= report["rows"][0][metric] <= 100.0
    assert "| same |" in (out / "compare.md").read_text()


def test_candidate_needs_name_and_folder(tmp_path):
    with pytest.raises(SystemExit):
        load_script("compare_checkpoints").main(["--candidate", "just-a-folder", "--out", str(tmp_path)])


def test_metrics_subset_scores_only_those(tiny_checkpoint, data_root, tmp_path):
    rows = coco_mval_rows(data_root, n=2, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "cmp"
    argv = ["--baseline", str(tiny_checkpoint), "--candidate", f"same={tiny_checkpoint}", "--corpus", str(corpus),
            "--metrics", "center,random", "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("compare_checkpoints").main(argv) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["metrics"] == ["center", "random"]
    assert "center tta=4" not in report["rows"][1] and "random vs baseline" in report["rows"][1]


def test_unknown_metric_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        load_script("compare_checkpoints").main(["--candidate", "a=b", "--metrics", "center,tta8",
                                                 "--out", str(tmp_path)])


def test_a_distilled_student_is_compared_like_a_teacher(tiny_checkpoint, data_root, tmp_path):
    student = _tiny_student(tmp_path / "student")
    rows = coco_mval_rows(data_root, n=3, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "cmp"
    argv = ["--baseline", str(tiny_checkpoint), "--candidate", f"student={student}", "--corpus", str(corpus),
            "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("compare_checkpoints").main(argv) == 0
    row = json.loads((out / "compare.json").read_text())["rows"][1]
    assert row["name"] == "student" and all(0.0 <= row[m] <= 100.0 for m in ("center", "center tta=4", "random"))


def test_the_optional_triangulation_metric_scores_teacher_and_student(tiny_checkpoint, data_root, tmp_path):
    student = _tiny_student(tmp_path / "student")
    rows = coco_mval_rows(data_root, n=2, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "cmp"
    argv = ["--baseline", str(tiny_checkpoint), "--candidate", f"student={student}", "--corpus", str(corpus),
            "--metrics", "center,center triangulation", "--threads", "1", "--no-progress", "--out", str(out)]
    script = load_script("compare_checkpoints")
    calls = []  # (predictor class, predict keywords): the metric must really ask for triangulation, on both models
    loader = script.load_predictor

    def recording_loader(folder):
        predictor = loader(folder)
        predict = predictor.predict

        def recorded(clicks, **kwargs):
            calls.append((type(predictor).__name__, kwargs))
            return predict(clicks, **kwargs)

        predictor.predict = recorded
        return predictor

    script.load_predictor = recording_loader
    try:
        assert script.main(argv) == 0
    finally:
        script.load_predictor = loader
    wanted = {"tta": 1, "triangulation": 16, "triangulation_sampling": "foreground", "zoom_in": False,
              "upsample": "bilinear"}
    assert {name for name, kwargs in calls if kwargs == wanted} == {"SignedClickPredictor",
                                                                    "SignedClickStudentPredictor"}
    report = json.loads((out / "compare.json").read_text())
    assert report["metrics"] == ["center", "center triangulation"]
    assert all(0.0 <= row["center triangulation"] <= 100.0 for row in report["rows"])
    assert "center triangulation vs baseline" in report["rows"][1]


def test_by_source_table_splits_the_masks_by_their_corpus_source(tiny_checkpoint, data_root, tmp_path):
    rows = coco_mval_rows(data_root, n=3, max_side=96)
    rows[2] = {**rows[2], "source": "ecssd"}
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "cmp"
    argv = ["--baseline", str(tiny_checkpoint), "--candidate", f"same={tiny_checkpoint}", "--corpus", str(corpus),
            "--metrics", "center", "--by-source", "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("compare_checkpoints").main(argv) == 0
    report = json.loads((out / "compare.json").read_text())
    assert sorted(report["sources"]) == ["coco_mval", "ecssd"]
    text = (out / "compare.md").read_text()
    assert "coco_mval (N = 1)" in text and "ecssd (N = 1)" in text
    assert "(+0.00 [+0.00, +0.00])" in text


def test_source_table_means_and_differences_by_hand():
    table = load_script("compare_checkpoints").source_table(
        {"baseline": [10.0, 20.0, 30.0], "new": [20.0, 20.0, 60.0]}, ["a", "a", "b"], "center")
    assert table[2] == "| checkpoint | a (N = 2) | b (N = 1) |"
    assert table[4] == "| baseline | 15.00 | 30.00 |"
    assert table[5].startswith("| new | 20.00 (+5.00 [") and "| 60.00 (+30.00 [+30.00, +30.00]) |" in table[5]


def test_a_missing_candidate_or_a_file_as_out_is_refused_before_any_scoring(tiny_checkpoint, tmp_path, capsys,
                                                                            monkeypatch):
    """The folders and --out are checked first: a typo in the last candidate must not cost the baseline's minutes."""
    script = load_script("compare_checkpoints")
    monkeypatch.setattr(script, "score_model", lambda *a, **k: pytest.fail("scored before the arguments were checked"))
    with pytest.raises(SystemExit):
        script.main(["--baseline", str(tiny_checkpoint), "--candidate", f"typo={tmp_path / 'runs_typo'}",
                     "--out", str(tmp_path / "cmp")])
    assert "--candidate typo: checkpoint folder not found" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit):
        script.main(["--candidate", f"ok={tiny_checkpoint}", "--out", str(tmp_path / "a_file")])
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()
