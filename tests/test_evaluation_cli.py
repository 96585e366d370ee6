"""`scripts/evaluate.py` end to end on one real instance, and the report helpers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hf_iis.evaluation.report import PUBLISHED, hardware_info, measured_table, published_table
from hf_iis.evaluation.results import ResultRow
from tests.conftest import load_script


@pytest.mark.slow
def test_cli_writes_results_table_csv_and_plots(tiny_checkpoint, data_root, tmp_path):
    out = tmp_path / "eval"
    argv = ["--model", str(tiny_checkpoint), "--datasets", "GrabCut", "--data-root", str(data_root),
            "--protocols", "noc,miou1,random,scaling,proposals", "--peers", "grabcut", "--limit", "1",
            "--max-clicks", "2", "--seeds", "2", "--scaling-tta", "1,2", "--scaling-triangulation", "2",
            "--scaling-sampling", "stratified", "--scaling-combos", "none", "--proposal-limit", "1",
            "--proposal-data", "BSDS500:bsds500",
            "--overlays", "1", "--no-progress", "--out", str(out)]
    assert load_script("evaluate").main(argv) == 0

    results = json.loads((out / "results.json").read_text())
    assert {"timestamp", "hardware", "command", "settings", "results", "scaling", "multiclick", "proposals"} <= set(
        results)
    assert results["hardware"]["torch_threads"] >= 1 and results["hardware"]["string"]
    methods = {r["kind"]: r for r in results["results"]}
    model = methods["model"]
    assert model["model_path"] == str(tiny_checkpoint) and model["dataset"] == "GrabCut"
    assert model["num_instances"] == 1 and model["settings"]["tta"] == 1
    for key in ("NoC@85", "NoC@90", "NoF@90", "mIoU@1", "mIoU@2", "mIoU@1 center", "mIoU@1 random",
                "mIoU@1 random std", "seconds per click"):
        assert key in model["metrics"], key
    assert model["metrics"]["mIoU@1 center"] == pytest.approx(model["metrics"]["mIoU@1"])
    assert "peer" in methods and results["command"].startswith("python scripts/evaluate.py --model")
    assert [r["scaling"] for r in results["scaling"]] == ["tta=1", "tta=2", "tta=1, tri=2 stratified"]
    assert len(results["multiclick"]) == 2 and results["proposals"][0]["images"] == 1
    assert results["proposals"][0]["held_out"] is False and "note" in results["proposals"][0]

    table = (out / "table.md").read_text()
    measured, published = table.split("## Published")
    assert "## Measured" in measured and "RITM" not in measured
    assert "RITM HRNet32" in published and "not measured here" in published
    with (out / "instances.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and len({r["id"] for r in rows}) == 1  # one instance (real or shipped sample), two rows
    names = {p.name for p in (out / "plots").iterdir()}
    assert {"miou_vs_clicks_GrabCut.png", "miou_vs_seconds_GrabCut.png", "overlays_GrabCut.png",
            "proposals_ar.png"} <= names


def test_cli_rejects_unknown_protocol_benchmark_peer_and_corpus(tiny_checkpoint, tmp_path, capsys):
    """Each is one line on stderr naming the problem, exit status 2, no traceback."""
    script = load_script("evaluate")
    cases = [(["--protocols", "nope", "--peers", "none"], "unknown protocols"),
             (["--datasets", "Nowhere", "--peers", "none"], "unknown benchmark 'Nowhere'"),
             (["--datasets", "GrabCut", "--peers", "foo", "--limit", "1"], "unknown peer 'foo'"),
             (["--protocols", "proposals", "--peers", "none", "--proposal-data", f"{tmp_path}/none:corpus"],
              "build the corpus first"),
             (["--datasets", f"validation:{tmp_path}/none", "--peers", "none"], "no parquet corpus there")]
    for extra, message in cases:
        capsys.readouterr()
        argv = ["--model", str(tiny_checkpoint), *extra, "--no-progress", "--out", str(tmp_path / "o")]
        assert script.main(argv) == 2, extra
        err = capsys.readouterr().err
        last_line = err.strip().splitlines()[-1]  # after any weight-loading progress bar
        assert "Traceback" not in err
        assert last_line.startswith("evaluate.py: error:") and message in last_line, last_line


def test_the_validation_split_of_a_corpus_is_a_dataset(tiny_checkpoint, data_root, tmp_path):
    from hf_iis.training.toy import coco_mval_rows, write_corpus

    rows = coco_mval_rows(data_root, n=3, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "eval"
    argv = ["--model", str(tiny_checkpoint), "--datasets", f"validation:{corpus}", "--protocols", "noc",
            "--max-clicks", "2", "--peers", "none", "--overlays", "0", "--threads", "1", "--no-progress",
            "--out", str(out)]
    assert load_script("evaluate").main(argv) == 0
    row = json.loads((out / "results.json").read_text())["results"][0]
    assert row["dataset"] == f"validation:{corpus}" and row["num_instances"] == 2


def test_model_flag_accepts_repeats_and_comma_lists():
    script = load_script("evaluate")
    args = script.parse_args(["--model", "a,b", "--model", "c", "--tta", "1,4", "--peers", "none"])
    cfg = script.config_from_args(args, "cmd")
    assert cfg.models == ["a", "b", "c"] and cfg.tta == [1, 4] and cfg.peers == []


def test_measured_and_published_tables_are_separate():
    row = {"method": "m", "scaling": "tta=1", "dataset": "GrabCut", "num_instances": 50,
           "metrics": {"NoC@85": 1.5, "NoC@90": 2.0, "NoF@90": 0, "mIoU@1 center": 80.0, "mIoU@1 random": 75.0,
                       "mIoU@1 random std": 1.25, "seconds per click": 0.01},
           "command": "python scripts/evaluate.py"}
    md = measured_table([row])
    assert "75.00 ± 1.25" in md and "`python scripts/evaluate.py`" in md and md.count("\n") == 3
    assert "| dataset | N | NoC85 |" in md  # every results table says how many instances it measured
    assert "| m | tta=1 | GrabCut | 50 | 1.50 | 2.00 | 0 | 80.00 | 75.00 ± 1.25 | 0.010 |" in md
    assert measured_table([ResultRow.from_dict(row)]) == md
    pub = published_table()
    assert all(r["method"] in pub for r in PUBLISHED) and "m |" not in pub
    assert isinstance(hardware_info()["cpu_count"], int)


def test_overlay_plot_writes_png(tmp_path):
    from hf_iis.evaluation.plots import plot_overlays

    image = np.zeros((10, 12, 3), np.uint8)
    gt = np.zeros((10, 12), bool)
    gt[2:6, 3:9] = True
    path = plot_overlays([(image, gt, gt, [(5.0, 4.0, 1), (1.0, 1.0, -1)], "t")], tmp_path / "o.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
