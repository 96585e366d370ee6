"""scripts/make_model_card.py: every model row of the evaluation becomes a model-index entry that round-trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from huggingface_hub import ModelCard

REPO = Path(__file__).resolve().parents[1]


def test_card_from_evaluation_json(tiny_checkpoint, tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    rows = [
        {"method": "tiny [tta=1]", "kind": "model", "scaling": "tta=1", "dataset": "GrabCut",
         "metrics": {"NoC@85": 3.5, "NoC@90": 4.25, "mIoU@1 center": 81.5, "mIoU@1 random": 77.25}},
        {"method": "tiny [tta=8]", "kind": "model", "scaling": "tta=8", "dataset": "Berkeley",
         "metrics": {"mIoU@1 center": 79.0, "mIoU@1 random": 74.5}},
        {"method": "GrabCut (OpenCV)", "kind": "peer", "scaling": "none", "dataset": "GrabCut",
         "metrics": {"NoC@90": 5.76, "mIoU@1 center": 53.8}},
    ]
    results = {"command": "python scripts/evaluate.py --model tiny", "settings": {"out": str(eval_dir)},
               "hardware": {"string": "2 test CPUs"}, "results": rows}
    (eval_dir / "results.json").write_text(json.dumps(results))
    (eval_dir / "table.md").write_text("# Evaluation\n\n## Measured\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                                       "## Published (not measured here)\n\n| p |\n|---|\n| 9 |\n")
    out = tmp_path / "card.md"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_model_card.py"), "--eval", str(eval_dir / "results.json"),
         "--model", str(tiny_checkpoint), "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    card = ModelCard.load(out)
    entries = {(r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert ("GrabCut", "noc90", 4.25) in entries and ("Berkeley", "miou1_random", 74.5) in entries
    assert len(card.data.eval_results) == 6  # 4 + 2 model metrics; the peer row is not the model's result
    text = out.read_text()
    assert "| 1 | 2 |" in text and "| 9 |" in text and "python scripts/evaluate.py --model tiny" in text
