"""scripts/evaluate_multimask.py: chosen vs oracle first-click mIoU of a multi-map model, and its one-line errors."""

from __future__ import annotations

import json

from hf_iis import SignedClickImageProcessor
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from tests.conftest import load_script, tiny_saliency_model


def test_chosen_never_beats_the_oracle_and_shares_add_up(tmp_path, data_root):
    folder = tmp_path / "grown"
    grow_outputs(tiny_saliency_model(), 3).save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    script = load_script("evaluate_multimask")
    # GrabCut of the data folder (the shipped samples on a fresh clone), first 3 instances via a tiny data root
    assert script.main(["--model", str(folder), "--datasets", "GrabCut", "--data-root", str(data_root),
                        "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    row = json.loads((tmp_path / "out" / "multimask.json").read_text())["rows"][0]
    assert row["chosen"] <= row["oracle"] + 1e-9 and max(row["per_map"]) <= row["oracle"] + 1e-9
    assert abs(sum(row["chosen_share"]) - 1.0) < 1e-9 and row["n"] > 0


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    script = load_script("evaluate_multimask")
    assert script.main(["--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "give --datasets or --corpus" in capsys.readouterr().err
    assert script.main(["--model", str(tmp_path / "none"), "--datasets", "GrabCut", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no config.json there" in err[0]
