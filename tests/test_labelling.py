"""The labelling command (`hf_iis.labelling`, `scripts/label_dataset.py`, `hf-iis label`): masks of a tiny dataset
written back as a dataset, equal to single pipeline calls; resuming skips written chunks; 2 real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, load_script


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """5 rows: a 48x64 / 40x56 image, a rectangle mask, given clicks and an id; saved with save_to_disk and as
    parquet."""
    import datasets

    rng = np.random.default_rng(0)
    rows = []
    for k in range(5):
        h, w = (48, 64) if k % 2 == 0 else (40, 56)
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[10 : 30, 12 + k : 40] = 255
        rows.append({"image": image, "mask": mask, "name": f"img{k}",
                     "clicks": [[20.0 + k, 20.0, 1.0], [2.0, 2.0, -1.0]]})
    features = datasets.Features({"image": datasets.Image(), "mask": datasets.Image(), "name": datasets.Value("string"),
                                  "clicks": datasets.Sequence(datasets.Sequence(datasets.Value("float32")))})
    ds = datasets.Dataset.from_list(rows, features=features)
    root = tmp_path_factory.mktemp("label_data")
    ds.save_to_disk(str(root / "saved"))
    ds.to_parquet(str(root / "rows.parquet"))
    return root


def _argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--out", str(out), "--chunk-size", "2", "--no-progress", *extra]


def test_labels_equal_single_calls_and_resume_skips_written_chunks(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    import datasets

    from hf_iis.checkpoint_paths import load_pipeline

    script = load_script("label_dataset")
    out = tmp_path / "labels"
    argv = _argv(tiny_dataset / "saved", out, "--model", str(tiny_checkpoint), "--clicks-column", "clicks",
                 "--id-column", "name")
    assert script.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 5 and summary["chunks"] == 3 and summary["rows_written_now"] == 5
    labels = datasets.load_from_disk(str(out / "dataset"))
    assert labels.column_names == ["index", "id", "mask", "score", "clicks"]
    assert labels["id"] == [f"img{k}" for k in range(5)] and labels["index"] == list(range(5))

    source = datasets.load_from_disk(str(tiny_dataset / "saved"))
    seg = load_pipeline(str(tiny_checkpoint))
    for k in (0, 3):
        single = seg(source[k]["image"].convert("RGB"), clicks=[tuple(c) for c in source[k]["clicks"]])
        assert np.array_equal(np.asarray(labels[k]["mask"]), np.asarray(single["mask"].convert("L")))
        assert labels[k]["score"] == pytest.approx(single["score"], abs=1e-5)

    (out / "chunks" / "chunk-00001-of-00003.parquet").unlink()  # as if killed during the second chunk
    assert script.main(argv) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["chunks_skipped"] == 2 and again["rows_written_now"] == 2
    assert datasets.load_from_disk(str(out / "dataset"))["id"] == labels["id"]

    other = argv[:-2]  # the same --out with other settings: refused, nothing rewritten
    assert script.main([*other, "--tta", "2"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_simulated_and_point_clicks_from_parquet(tiny_checkpoint, tiny_dataset, tmp_path):
    import datasets

    from hf_iis.cli import main

    out = tmp_path / "sim"
    assert main(["label", *_argv(tiny_dataset / "rows.parquet", out, "--model", str(tiny_checkpoint),
                                 "--mask-column", "mask", "--simulated-clicks", "2")]) == 0
    labels = datasets.load_from_disk(str(out / "dataset"))
    assert len(labels) == 5 and all(len(c) == 2 for c in labels["clicks"])
    first = labels[0]["clicks"][0]
    assert first[2] == 1.0 and 10 <= first[1] < 30  # the center click lies in the mask
    out = tmp_path / "point"
    assert main(["label", *_argv(tiny_dataset / "rows.parquet", out, "--model", str(tiny_checkpoint),
                                 "--point", "20,20")]) == 0
    assert datasets.load_from_disk(str(out / "dataset"))["clicks"][4] == [[20.0, 20.0, 1.0]]


@pytest.mark.parametrize("extra, message", [
    (["--clicks-column", "nope"], "'nope' is not a column"),
    (["--mask-column", "mask", "--image-column", "picture"], "'picture' is not a column"),
    (["--point", "1,2", "--chunk-size", "0"], "positive integer"),
    (["--point", "1,2", "--mask-column", "mask"], "not allowed with"),
])
def test_wrong_arguments_are_one_line_and_write_nothing(tiny_checkpoint, tiny_dataset, tmp_path, capsys, extra,
                                                        message):
    out = tmp_path / "x"
    assert load_script("label_dataset").main(["--dataset", str(tiny_dataset / "saved"), "--out", str(out),
                                              "--model", str(tiny_checkpoint), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("label_dataset.py: error:") and message in err, err
    assert not out.exists()


@pytest.mark.slow
def test_two_process_launch_splits_the_chunks_and_merges(tiny_checkpoint, tiny_dataset, tmp_path):
    import datasets

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/cpu_2proc.yaml",
           "--main_process_port", str(port), "scripts/label_dataset.py",
           *_argv(tiny_dataset / "saved", out, "--model", str(tiny_checkpoint), "--clicks-column", "clicks")]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1")
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"rows"')]
    assert len(summaries) == 1 and summaries[0]["processes"] == 2  # printed by the main process only
    labels = datasets.load_from_disk(str(out / "dataset"))
    assert labels["index"] == list(range(5))
    single = tmp_path / "single"
    assert load_script("label_dataset").main(
        _argv(tiny_dataset / "saved", single, "--model", str(tiny_checkpoint), "--clicks-column", "clicks")) == 0
    one = datasets.load_from_disk(str(single / "dataset"))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(labels["mask"], one["mask"]))
