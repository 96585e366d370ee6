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


@pytest.mark.slow
def test_student_card_reads_every_number_from_its_files(tmp_path):
    import hf_iis
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    model_dir = tmp_path / "student"
    config = hf_iis.SignedClickStudentConfig.from_preset("tiny", teacher="teacher/dir",
                                                         teacher_scaling={"tta": 4, "triangulation": 0})
    SignedClickStudentModel(config).save_pretrained(model_dir)
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    rows = [{"method": "student [tta=1]", "kind": "model", "model_path": str(model_dir), "scaling": "tta=1",
             "dataset": "GrabCut", "metrics": {"mIoU@1 center": 61.25, "mIoU@1 random": 58.5}},
            {"method": "teacher [tta=4]", "kind": "model", "model_path": "teacher/dir", "scaling": "tta=4",
             "dataset": "GrabCut", "metrics": {"mIoU@1 center": 75.5}}]  # the baseline measured beside it
    (eval_dir / "results.json").write_text(json.dumps({"command": "python scripts/evaluate.py --model s,t",
                                                       "settings": {"out": str(eval_dir)},
                                                       "hardware": {"string": "2 test CPUs"}, "results": rows}))
    (eval_dir / "table.md").write_text("# Evaluation\n\n## Measured\n\n| a | b |\n|---|---|\n| 61.25 | 75.5 |\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("backbone_from: teacher/dir\nbatch_size: 8\nlr: 0.001\nbackbone_lr: 0.0001\n"
                                     "warmup_steps: 100\nloss_weights: {bce: 1.0, soft_iou: 0.5}\n"
                                     "sequence_weight: 0.5\n")
    (run / "cache_info.json").write_text(json.dumps({"teacher": "teacher/dir", "images": 2400, "stride": 4,
                                                     "spec": {"tta": 4, "clicks": 16, "sequences": 4}}))
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"time": 0.0, "config": {}}, {"step": 10, "time": 36.0, "train/loss": 2.5, "train/single_kl": 0.75},
        {"step": 3000, "time": 7200.0, "train/loss": 0.875, "train/single_kl": 0.125, "sec_per_step": 2.4}]))
    bench = {"model": str(model_dir), "hardware": "2 test CPUs", "image": [640, 480], "encode_ms": 25.5,
             "first_click_ms": 27.25, "extra_decode_ms": 0.5, "peak_rss_mb": 1000.0,
             "grid_ms": {"warm": {"tta=1,triangulation=0": 1.25, "tta=4,triangulation=0": 2.5,
                                  "tta=1,triangulation=16": 4.75}}}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    out = tmp_path / "card.md"
    cmd = [sys.executable, str(REPO / "scripts" / "make_student_card.py"), "--model", str(model_dir), "--run",
           str(run), "--eval", str(eval_dir / "results.json"), "--latency", str(tmp_path / "bench.json"),
           "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    card = ModelCard.load(out)
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {("miou1_center", 61.25),
                                                                                 ("miou1_random", 58.5)}
    text = out.read_text()
    assert "3000 steps of batch 8 in 2.0 h (2.40 s per step)" in text and "2.500 (step 10) → 0.875" in text
    assert "at tta=4 on 2400 unlabelled images" in text and "| 61.25 | 75.5 |" in text
    assert "| 25.5 | 27.2 | 0.5 | 1.2 | 2.5 | 4.8 | 1000 |" in text  # the latency JSON's own numbers
    teacher_dir = tmp_path / "not_a_student"
    teacher_dir.mkdir()
    (teacher_dir / "config.json").write_text(json.dumps({"model_type": "signed_click"}))
    bad = subprocess.run([*cmd[:3], str(teacher_dir), *cmd[4:]], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert bad.returncode != 0 and "is not a student checkpoint" in bad.stderr


def test_a_decoder_stage_is_described_from_its_config_and_log(tmp_path):
    """A stage trained by scripts/train_decoder.py (decoder*.yaml + log.jsonl, no config.yaml) gets its own paragraph
    with the numbers read from its files, and stages are numbered in order."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_model_card

    run = tmp_path / "crops_run"
    run.mkdir()
    (run / "decoder_crops.yaml").write_text("teacher: some/model\ncache: c1\nextra_caches: [c2]\nbatch_size: 16\n"
                                            "lr: 1.0e-4\nmask_sampling: uniform\ncorrective_prob: 0.5\n")
    (run / "log.jsonl").write_text("\n".join(json.dumps({"step": s, "loss": 1.0}) for s in (10, 20, 1320)))
    text = make_model_card.training_section([f"{run}=2 test CPUs"])
    assert text.startswith("**Stage 1** (2 test CPUs): `scripts/train_decoder.py train`")
    assert "1320 steps of 16 views" in text and "`c1`, `c2`" in text and "from `some/model`" in text


def test_a_decoder_stage_quotes_its_head_md(tmp_path):
    """What a decoder stage's config cannot say (how its starting model was made, a head refitted afterwards) comes
    from the run folder's head.md, joined into the stage's paragraph; without the file the paragraph ends as before."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_model_card

    run = tmp_path / "sframe_run"
    run.mkdir()
    (run / "decoder_x.yaml").write_text("teacher: t\ncache: c\nbatch_size: 16\n")
    (run / "log.jsonl").write_text(json.dumps({"step": 342, "loss": 1.0}))
    plain = make_model_card.training_section([str(run)])
    assert plain.endswith("probability None.")
    (run / "head.md").write_text("The IoU head was refitted\nalone.\n")
    assert make_model_card.training_section([str(run)]) == plain + " The IoU head was refitted alone."
