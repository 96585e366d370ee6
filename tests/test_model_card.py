"""scripts/make_model_card.py: every model row of the evaluation becomes a model-index entry that round-trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_card_from_evaluation_json(tiny_checkpoint, tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    rows = [
        {"method": "tiny [tta=1]", "kind": "model", "scaling": "tta=1", "dataset": "GrabCut",
         "metrics": {"NoC@85": 3.5, "NoC@90": 4.25, "mIoU@1 center": 81.5, "mIoU@1 random": 77.25}},
        {"method": "tiny [tta=8]", "kind": "model", "scaling": "tta=8", "dataset": "Berkeley",
         "metrics": {"mIoU@1 center": 79.0, "mIoU@1 random": 74.5}},
        {"method": "lite0 [tta=1]", "kind": "model", "model_path": "some/other/checkpoint", "scaling": "tta=1",
         "dataset": "GrabCut", "metrics": {"NoC@90": 9.94, "mIoU@1 center": 58.88}},  # a baseline in the same run
        {"method": "GrabCut (OpenCV)", "kind": "peer", "scaling": "none", "dataset": "GrabCut",
         "metrics": {"NoC@90": 5.76, "mIoU@1 center": 53.8}},
    ]
    results = {"command": "python scripts/evaluate.py --model tiny", "settings": {"out": str(eval_dir)},
               "hardware": {"string": "2 test CPUs"}, "results": rows}
    (eval_dir / "results.json").write_text(json.dumps(results))
    (eval_dir / "table.md").write_text("# Evaluation\n\n## Measured\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                                       "## Published (not measured here)\n\n| p |\n|---|\n| 9 |\n")
    run = tmp_path / "run"  # one training stage as scripts/train.py leaves it: config.yaml + log.jsonl
    run.mkdir()
    (run / "config.yaml").write_text("model: {init_from: null, freeze_backbone_blocks: 2, image_size: 64}\n"
                                     "data: {batch_size: 8, pairs_per_mask: 1, view_prob: 0.5}\nval_images: 4\n")
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"time": 0.0, "config": {}}, {"step": 10, "time": 600.0, "sec_per_step": 60.0},
        {"step": 10, "time": 601.0, "val/miou@1": 0.25}, {"step": 20, "time": 1200.0, "sec_per_step": 60.0},
        {"step": 20, "time": 1201.0, "val/miou@1": 0.5}]))
    out = tmp_path / "card.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_model_card.py"), "--eval", str(eval_dir / "results.json"),
         "--model", str(tiny_checkpoint), "--out", str(out), "--run", f"{run}=2 test CPUs"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    card = ModelCard.load(out)
    entries = {(r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert ("GrabCut", "noc90", 4.25) in entries and ("Berkeley", "miou1_random", 74.5) in entries
    assert len(card.data.eval_results) == 6  # 4 + 2 model metrics; the peer and the other checkpoint are not its own
    text = out.read_text()
    assert "**Stage 1** (2 test CPUs)" in text and "20 steps in 20 min" in text and "25.0 → 50.0" in text
    assert "| 1 | 2 |" in text and "| 9 |" in text and "python scripts/evaluate.py --model tiny" in text
