"""Wrong arguments to the scripts and the CLI: one line `<prog>: error: ...` on stderr, exit status 2, no traceback,
and nothing written or computed first.

Each case runs the command's `main(argv)` in-process. Where a case passes `--model /nonexistent/model` (or another
input that would fail later), the expected message proves the check comes first: had the command loaded a model or
read the data before checking its outputs, the message would name that instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

NO_MODEL = "/nonexistent/model"


@pytest.fixture()
def paths(tmp_path) -> dict[str, Path]:
    """Files of every wrong kind the cases need."""
    p = {"dir": tmp_path / "a_dir", "file": tmp_path / "a_file.txt", "missing": tmp_path / "missing",
         "garbage": tmp_path / "garbage.yaml", "list": tmp_path / "list.yaml", "binary": tmp_path / "binary.yaml",
         "image": tmp_path / "photo.png", "out": tmp_path / "out", "corpus": tmp_path / "corpus"}
    p["dir"].mkdir()
    p["corpus"].mkdir()
    (p["corpus"] / "train-00000.parquet").write_bytes(b"")  # passes the path check (the shard is never read)
    p["file"].write_text("not a folder\n")
    p["garbage"].write_text("optim: {lr: [1, 2\nseed: : :\n")
    p["list"].write_text("- optim\n- data\n")
    p["binary"].write_bytes(bytes(range(256)) * 4)
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(p["image"])
    return p


def _config_cases(prog: str, base: list[str]) -> list[tuple]:
    return [
        (prog, base + ["--config", "{garbage}"], "is not valid YAML"),
        (prog, base + ["--config", "{list}"], "must be a YAML mapping"),
        (prog, base + ["--config", "{binary}"], "is not a text file"),
        (prog, base + ["--config", "{missing}"], "not found"),
        (prog, base + ["--config", "{dir}"], "is a folder; give a YAML file"),
        (prog, base + ["--set", "bogus=1"], "unknown"),
        (prog, base + ["--set", "seed=[1"], "not valid YAML"),
        (prog, base + ["--set", "novalue"], "is not key=value"),
    ]


CASES = [
    # scripts/train.py
    *_config_cases("train", ["--output-dir", "{out}"]),
    ("train", ["--output-dir", "{out}", "--set", "optim.max_steps=-5"], "'optim.max_steps' must be a number >= 1"),
    ("train", ["--output-dir", "{out}", "--set", "optim=3"], "section 'optim' must be a mapping"),
    ("train", ["--output-dir", "{out}", "--set", "optim.mixed_precision=fp64"], "must be no, bf16 or fp16"),
    ("train", ["--output-dir", "{file}", "--data", "{dir}"], "is a file, not a folder"),
    ("train", ["--output-dir", "{out}", "--data", "{missing}"], "not found: build the corpus first"),
    ("train", ["--output-dir", "{out}", "--data", "{dir}"], "has no train-*.parquet shards"),
    ("train", ["--output-dir", "{out}"], "set data.path"),
    ("train", ["--output-dir", "{out}", "--max-steps", "x"], "--max-steps"),
    ("train", ["stray"], "unexpected argument"),
    ("train", ["--output-dir", "{out}", "--data", "{corpus}", "--resume", "{dir}"],
     "not a checkpoint folder (no trainer_state.json)"),
    # a missing checkpoint folder must not reach transformers as a hub id (a network lookup, then a traceback)
    ("train", ["--output-dir", "{out}", "--data", "{corpus}", "--set", "model.init_from={missing}"],
     "model.init_from {missing}: not found; give a checkpoint folder"),
    ("train", ["--output-dir", "{out}", "--data", "{corpus}", "--set", "model.init_from={dir}"],
     "model.init_from {dir}: checkpoint folder {dir} has no config.json"),
    # scripts/distill.py train
    *_config_cases("distill", ["train", "--output-dir", "{out}"]),
    ("distill", ["train", "--output-dir", "{out}", "--max-steps", "0"], "expected a positive integer, got 0"),
    ("distill", ["train", "--output-dir", "{out}", "--set", "batch_size=-1"], "'batch_size' must be a number >= 1"),
    ("distill", ["train", "--output-dir", "{out}", "--set", "lr=fast"], "'lr' expects"),
    ("distill", ["train", "--output-dir", "{file}", "--cache", "{dir}"], "is a file, not a folder"),
    ("distill", ["train", "--output-dir", "{out}", "--cache", "{missing}"], "no teacher-target cache"),
    ("distill", ["train", "--output-dir", "{out}", "--cache", "{missing}", "--resume", "{dir}"],
     "not a checkpoint folder (no trainer_state.json)"),
    # scripts/distill.py cache: refused before the teacher loads or cache_info.json is written
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{out}", "--images", "-1"],
     "argument --images: expected a positive integer, got -1"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{out}", "--images", "0"],
     "expected a positive integer, got 0"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{out}", "--part", "2/2"],
     "--part '2/2': expected K/N with 0 <= K < N"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{out}", "--tta", "0"],
     "argument --tta: expected a positive integer, got 0"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{out}", "--tta", "13"],
     "between 1 and 12 views"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--image-dir", "{dir}", "--out", "{file}"], "is a file"),
    ("distill", ["cache", "--teacher", NO_MODEL, "--out", "{out}"], "give at least one --corpus or --image-dir"),
    # scripts/build_datasets.py
    ("build_datasets", ["--data-root", "{missing}", "--out", "{out}"], "not found: give --data-root"),
    ("build_datasets", ["--data-root", "{dir}", "--out", "{file}"], "is a file, not a folder"),
    ("build_datasets", ["--layout", "grabcut", "--out", "{out}"], "--layout needs --root"),
    ("build_datasets", ["--layout", "grabcut", "--root", "{missing}", "--out", "{out}"], "no such folder"),
    ("build_datasets", ["--coco-json", "{garbage}", "--out", "{out}"], "is not valid JSON"),
    ("build_datasets", ["--data-root", "{dir}", "--shard-size", "0"], "expected a positive integer"),
    # scripts/push_to_hub.py
    ("push_to_hub", ["--repo-id", "a/b/c", "--dry-run"], "Repo id must be in the form"),
    ("push_to_hub", ["--repo-id", "me/x", "--model", "{missing}", "--dry-run"], "not found"),
    ("push_to_hub", ["--repo-id", "me/x", "--model", "{dir}", "--dry-run"], "has no config.json"),
    ("push_to_hub", ["--dry-run"], "the following arguments are required: --repo-id"),
    # scripts/evaluate.py: refused before any model loads
    ("evaluate", ["--model", NO_MODEL, "--limit", "-1", "--out", "{out}"], "--limit: expected a positive integer"),
    ("evaluate", ["--model", NO_MODEL, "--limit", "0", "--out", "{out}"], "--limit: expected a positive integer"),
    ("evaluate", ["--model", NO_MODEL, "--noc-limit", "0", "--out", "{out}"], "expected a positive integer"),
    ("evaluate", ["--model", NO_MODEL, "--out", "{file}"], "is a file, not a folder"),
    ("evaluate", ["--model", NO_MODEL, "--tta", "2,x", "--out", "{out}"], "--tta '2,x': give a comma list"),
    ("evaluate", ["--model", NO_MODEL, "--scaling-combos", "4by16", "--out", "{out}"], "give TTAxK[:SAMPLING]"),
    ("evaluate", ["--model", NO_MODEL, "--protocols", "", "--out", "{out}"], "no protocol to run"),
    # scripts/label_dataset.py
    ("label_dataset", ["--dataset", "{missing}", "--out", "{out}", "--point", "1,2"], "no such file or folder"),
    ("label_dataset", ["--dataset", "{dir}", "--out", "{file}", "--point", "1,2"], "is a file, not a folder"),
    ("label_dataset", ["--dataset", "{corpus}", "--out", "{out}", "--point", "1,2", "--tta", "13"],
     "between 1 and 12 views"),
    # hf-iis: every output path and setting is checked before the model loads
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{dir}"], "is a folder"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/e.txt"],
     "must end in .png or .bmp or .tif or .tiff (got '.txt')"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/mask"],
     "(got no extension)"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{file}/m.png"],
     "is a file, so no folder can be made there"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png", "--overlay",
             "{file}/x.png"], "--overlay"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png", "--tta", "9"],
     "give 1..8 views (the Space's range)"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png", "--tta", "0"],
     "give 1..8 views"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png",
             "--triangulation", "65"], "0 (off) .. 64"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png", "--device",
             "toaster"], "unknown device 'toaster'; available here: cpu"),
    ("cli", ["segment", "{image}", "--click", "5,5", "--model", NO_MODEL, "--out", "{out}/m.png", "--dtype",
             "int8"], "invalid choice"),
    ("cli", ["segment", "{missing}", "--click", "5,5", "--out", "{out}/m.png"], "not found"),
    ("cli", ["export", "--model", NO_MODEL, "--out", "{file}"], "is a file, not a folder"),
    ("cli", ["export", "--model", NO_MODEL, "--out", "{out}", "--card", "{missing}"], "--card"),
    ("cli", ["demo", "--model", NO_MODEL, "--out", "{file}"], "is a file, not a folder"),
    ("cli", ["segment", "{image}"], "the following arguments are required"),
]


def _run(name: str, argv: list[str]) -> int:
    if name == "cli":
        from hf_iis.cli import main

        return main(argv)
    return load_script(name).main(argv)


PROGS = {"cli": "hf-iis", "train": "train.py", "distill": "distill.py", "build_datasets": "build_datasets.py",
         "push_to_hub": "push_to_hub.py", "evaluate": "evaluate.py", "label_dataset": "label_dataset.py"}


@pytest.mark.parametrize("name, argv, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_wrong_argument_is_one_error_line_and_nothing_is_written(name, argv, message, paths, capsys):
    argv = [a.format(**paths) for a in argv]
    message = message.format(**paths)
    assert _run(name, argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"{PROGS[name]}: error: ") and message in err, err
    assert not paths["out"].exists(), "a refused command wrote its output folder"


def test_refused_train_run_leaves_no_config_yaml(paths, capsys):
    """The run folder exists already (a rerun): a bad value is refused before config.yaml is (re)written."""
    paths["out"].mkdir()
    assert load_script("train").main(["--output-dir", str(paths["out"]), "--data", str(paths["dir"]),
                                      "--max-steps", "-5"]) == 2
    assert "'optim.max_steps' must be a number >= 1, got -5" in capsys.readouterr().err
    assert load_script("train").main(["--output-dir", str(paths["out"]), "--data", str(paths["dir"]),
                                      "--set", "optim.max_steps=-5"]) == 2
    assert not (paths["out"] / "config.yaml").exists()


def test_cuda_device_without_a_gpu_is_refused_before_the_model_loads(paths, capsys):
    import torch

    from hf_iis.cli import main

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert main(["segment", str(paths["image"]), "--click", "5,5", "--model", NO_MODEL, "--out",
                 str(paths["out"] / "m.png"), "--device", "cuda"]) == 2
    assert "device 'cuda' is not available on this machine; available: cpu" in capsys.readouterr().err
