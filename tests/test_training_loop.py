"""The training loop: loss goes down, checkpoints resume exactly (also after SIGKILL), 2 real processes, streaming."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_iis.training.config import load_config
from hf_iis.training.toy import coco_mval_rows, make_dataset, write_corpus
from tests.conftest import REPO_ROOT

PYTHON = sys.executable
TINY = str(REPO_ROOT / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def rows(data_root):
    return coco_mval_rows(data_root, n=6, max_side=128)


@pytest.fixture(scope="module")
def corpus(rows, tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), {"train": rows[:4], "validation": rows[4:]})


def _cfg(out: Path, corpus: Path, *overrides: str):
    return load_config(TINY, [f"output_dir={out}", f"data.path={corpus}", "val_images=2", *overrides])


def _weights(run: Path, name: str = "final") -> dict[str, torch.Tensor]:
    return load_file(str(run / name / "model.safetensors"))


def test_tiny_model_loss_decreases(rows):
    """Overfit one fixed batch with the full objective (first pass + iterative pass)."""
    from hf_iis.training.augment import AugmentParams
    from hf_iis.training.collate import TrainTransform, collate_click_sets
    from hf_iis.training.loop import build_model, build_optimizer, input_format_for
    from hf_iis.training.objective import SignedClickObjective

    torch.manual_seed(0)
    cfg = load_config(TINY, ["optim.backbone_lr=3e-3", "optim.lr=3e-3"])
    ds = make_dataset(rows[:2])
    model = build_model(cfg)
    transform = TrainTransform(AugmentParams.no_augmentation(), input_format_for(model.config), pairs_per_mask=2,
                               seed=0)
    batch = collate_click_sets([transform.sample(ds[i]) for i in range(2)])
    inputs = {k: batch[k] for k in ("pixel_values", "points", "labels", "image_index", "target_masks", "target_valid")}
    objective = SignedClickObjective(model).train()
    optimizer = build_optimizer(model, cfg)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # spinning OpenMP threads on a shared CPU make a 0.1 s step take seconds
    for step in range(25):
        out = objective(**inputs, corrective_clicks=1 if step % 2 else 0)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(out["loss_first"]))
    torch.set_num_threads(threads)
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5, losses


def test_train_writes_logs_checkpoints_and_models(corpus, tmp_path):
    from hf_iis.training.loop import train
    from hf_iis.training.tracking import read_jsonl

    run = tmp_path / "run"
    summary = train(_cfg(run, corpus, "optim.max_steps=4", "save_every=2", "eval_every=2", "log_every=2"),
                    progress=False)
    assert summary["step"] == 4 and summary["world_size"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    for name in ("final", "best"):
        assert (run / name / "model.safetensors").is_file() and (run / name / "config.json").is_file()
    assert (run / "final" / "preprocessor_config.json").is_file()
    resolved = load_config(run / "config.yaml")
    assert resolved.optim.max_steps == 4 and resolved.data.path == str(corpus)
    log = read_jsonl(run / "log.jsonl")
    assert "config" in log[0]
    steps = [r["step"] for r in log if "train/loss" in r]
    assert steps == [2, 4]
    assert any("val/miou@1" in r for r in log)
    from hf_iis import SignedClickModel
    from hf_iis.models.signed_click.losses import loss_weights_from_config

    model = SignedClickModel.from_pretrained(run / "final")
    assert model.config.image_size == 64
    # one source: the run config's loss weights are the saved model config's, its processor normalises as its config
    assert {k: v for k, v in loss_weights_from_config(model.config).items() if v} == resolved.model.loss_weights
    processor = json.loads((run / "final" / "preprocessor_config.json").read_text())
    assert processor["image_mean"] == model.config.pixel_mean and processor["image_std"] == model.config.pixel_std
    assert processor["size"] == model.config.image_size


def test_trainer_named_steps(corpus, tmp_path):
    """The Trainer's steps by hand: 4 rows in batches of 2; an epoch ends with the step that reads into the next."""
    from hf_iis import SignedClickModel
    from hf_iis.training.checkpoint import list_checkpoints
    from hf_iis.training.trainer import Trainer

    run = tmp_path / "steps"
    trainer = Trainer(_cfg(run, corpus, "optim.max_steps=5", "save_every=0", "eval_every=0", "val_images=0"),
                      progress=False)
    assert trainer.resume() is False and trainer.global_step == 0  # nothing to resume yet
    assert isinstance(trainer.model, SignedClickModel)
    trainer.objective.train()
    assert trainer.run_epoch() is None and (trainer.global_step, trainer.stream.epoch) == (3, 1)
    assert trainer.run_epoch() is None and (trainer.global_step, trainer.stream.epoch) == (5, 2)
    assert trainer.run_epoch() == "done" and trainer.global_step == 5
    trainer.validate()  # no validation set: exports final/
    assert trainer.save().name == "step_00000005"
    assert (run / "final" / "model.safetensors").is_file()
    assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [5]
    again = Trainer(_cfg(run, corpus, "optim.max_steps=5", "val_images=0"), progress=False)
    assert again.resume() is True and again.global_step == 5 and again.stream.state() == trainer.stream.state()


def test_resume_matches_uninterrupted_run(corpus, tmp_path):
    from hf_iis.training.loop import train

    common = ("optim.max_steps=6", "save_every=2", "eval_every=0", "iterative.prob=0.5")
    straight = tmp_path / "straight"
    train(_cfg(straight, corpus, *common), progress=False)
    broken = tmp_path / "broken"
    crashed = train(_cfg(broken, corpus, *common), progress=False, crash_at_step=4)
    assert crashed["crashed"] and not (broken / "final").exists()
    (broken / "checkpoints" / ".tmp-step_00000006").mkdir()  # a half-written checkpoint from the "crash"
    summary = train(_cfg(broken, corpus, *common), resume=True, progress=False)
    assert summary["step"] == 6
    a, b = _weights(straight), _weights(broken)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_legs_with_stop_at_step_match_one_uninterrupted_run(corpus, tmp_path):
    """Two legs (stop_at_step=4, then resume) follow the schedule of one 6-step run and end with its weights."""
    from hf_iis.training.loop import train

    common = ("optim.max_steps=6", "optim.warmup_steps=2", "save_every=2", "eval_every=0", "iterative.prob=0.5")
    straight = tmp_path / "straight"
    train(_cfg(straight, corpus, *common), progress=False)
    legs = tmp_path / "legs"
    first = train(_cfg(legs, corpus, *common, "stop_at_step=4"), progress=False)
    assert first["step"] == 4 and (legs / "final").is_dir()
    second = train(_cfg(legs, corpus, *common), resume=True, progress=False)
    assert second["step"] == 6
    a, b = _weights(straight), _weights(legs)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")


@pytest.mark.slow
def test_sigkill_then_resume_reaches_the_same_final_step(corpus, tmp_path):
    run = tmp_path / "killed"
    args = [PYTHON, "scripts/train.py", "--config", TINY, "--data", str(corpus), "--output-dir", str(run),
            "--no-progress", "--set", "optim.max_steps=40", "--set", "save_every=2", "--set", "eval_every=0",
            "--set", "val_images=0"]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and not list((run / "checkpoints").glob("step_00000004")):
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    from hf_iis.training.checkpoint import list_checkpoints

    assert list_checkpoints(run / "checkpoints")  # complete checkpoints survived
    done = subprocess.run([*args, "--resume"], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads([line for line in done.stdout.splitlines() if line.startswith('{"step"')][-1])
    assert summary["step"] == 40
    assert (run / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_process_cpu_run(corpus, tmp_path):
    """The real launch line (gloo, 2 processes); both ranks finish, each with its own data shard."""
    run = tmp_path / "ddp"
    cmd = [PYTHON, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "scripts/train.py", "--config", TINY, "--data", str(corpus), "--output-dir", str(run), "--no-progress",
           "--set", "optim.max_steps=4", "--set", "save_every=2", "--set", "eval_every=2"]
    try:
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=dict(_env(), ACCELERATE_USE_CPU="1"), capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired as hung:  # say where it stopped: a hang at exit looks like a finished run
        out = (hung.stdout or b"").decode(errors="replace") if isinstance(hung.stdout, bytes) else (hung.stdout or "")
        pytest.fail(f"2-process run did not exit in 300 s; last stdout: {out[-1500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"step"')]
    assert [s["world_size"] for s in summaries] == [2]  # printed by the main process only
    ckpt = run / "checkpoints" / "step_00000004"
    states = [json.loads((ckpt / f"data_state_{r}.json").read_text()) for r in (0, 1)]
    assert all(s["batch"] >= 1 for s in states)
    assert (ckpt / "random_states_1.pkl").is_file() and (run / "final" / "model.safetensors").is_file()


@pytest.mark.slow
def test_streaming_dataset_trains_and_resumes(corpus, tmp_path):
    from hf_iis.training.loop import train

    run = tmp_path / "stream"
    overrides = ("data.streaming=true", "optim.max_steps=3", "save_every=2", "eval_every=0", "data.shuffle_buffer=4")
    crashed = train(_cfg(run, corpus, *overrides), progress=False, crash_at_step=2)
    assert crashed["crashed"]
    assert json.loads((run / "checkpoints" / "step_00000002" / "data_state_0.json").read_text())["batch"] >= 1
    summary = train(_cfg(run, corpus, *overrides), resume=True, progress=False)
    assert summary["step"] == 3


def test_bf16_and_gradient_accumulation(corpus, tmp_path):
    from accelerate.state import AcceleratorState

    from hf_iis.training.loop import train
    from hf_iis.training.tracking import read_jsonl

    run = tmp_path / "bf16"
    AcceleratorState._reset_state()  # accelerate's state is a per-process singleton: other tests ran in fp32
    try:
        summary = train(_cfg(run, corpus, "optim.mixed_precision=bf16", "optim.grad_accum=2", "optim.max_steps=2",
                             "save_every=0", "eval_every=0", "log_every=1"), progress=False)
    finally:
        AcceleratorState._reset_state()
    assert summary["step"] == 2
    losses = [r["train/loss"] for r in read_jsonl(run / "log.jsonl") if "train/loss" in r]
    assert len(losses) == 2 and all(v == v and v > 0 for v in losses)  # finite, positive
    state = json.loads((run / "checkpoints" / "step_00000002" / "data_state_0.json").read_text())
    assert state["epoch"] * 2 + state["batch"] == 4  # 2 steps x 2 micro-batches; 2 batches per epoch here


def test_init_from_continues_at_the_configured_image_size(tmp_path):
    """Fine-tuning a saved model at a new resolution re-targets its config (and so its processor and click encoding)."""
    from hf_iis.training.loop import build_model

    small = build_model(load_config(TINY, ["model.pretrained_backbone=false", "model.image_size=64"]))
    small.save_pretrained(tmp_path / "m")
    same = build_model(load_config(TINY, [f"model.init_from={tmp_path / 'm'}", "model.image_size=64"]))
    larger = build_model(load_config(TINY, [f"model.init_from={tmp_path / 'm'}", "model.image_size=96"]))
    assert same.config.image_size == 64 and larger.config.image_size == 96
    for name, tensor in small.state_dict().items():
        assert torch.equal(tensor, larger.state_dict()[name]), name


def test_validation_scores_the_random_and_the_center_click(rows):
    """The center click is the mask's deepest pixel (the benchmarks' first click); both metrics are IoUs."""
    from scipy import ndimage

    from hf_iis.training.augment import InputFormat
    from hf_iis.training.loop import build_model
    from hf_iis.training.validation import build_validation_set, evaluate_miou_at_1

    valset = build_validation_set(make_dataset(rows[:3]), InputFormat(64), max_images=3)
    for mask, valid, center in zip(valset.masks[:, 0].numpy(), valset.valid[:, 0].numpy(), valset.center_points):
        depth = ndimage.distance_transform_edt(np.pad(mask & valid, 1))[1:-1, 1:-1]
        x, y = (int(v) for v in center[0])
        assert mask[y, x] and depth[y, x] == depth.max()
    model = build_model(load_config(TINY, ["model.pretrained_backbone=false"]))
    scores = evaluate_miou_at_1(model, valset)
    assert scores["n"] == 3 and 0.0 <= scores["miou@1"] <= 1.0 and 0.0 <= scores["miou@1_center"] <= 1.0
