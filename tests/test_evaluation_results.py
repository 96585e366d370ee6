"""results.json rows as dataclasses: the JSON keys and their order are those results files have always had, and a
row read back writes the same dict."""

from __future__ import annotations

import json

import numpy as np

from hf_iis.evaluation import Instance, OracleSegmenter
from hf_iis.evaluation.metrics import summarize_curves
from hf_iis.evaluation.results import ClickMetrics, ResultRow, ScalingRow
from hf_iis.evaluation.runner import EvalConfig, run_evaluation

# the keys of a results.json row and of its "metrics" (NoC loop with 3 clicks, center click, random clicks), in the
# order every results file written so far has them (docs/results.md and scripts/object_centred_table.py read them)
ROW_KEYS = ["method", "kind", "model_path", "scaling", "settings", "dataset", "num_instances", "metrics", "command"]
METRIC_KEYS = ["num_instances", "max_clicks", "NoC@85", "NoF@85", "NoC@90", "NoF@90", "NoC@95", "NoF@95", "mIoU@1",
               "mIoU@2", "mIoU@3", "miou_curve", "decode seconds per click", "NoC instances", "mIoU@1 center",
               "center instances", "seconds per click", "encode seconds per image", "mIoU@1 random",
               "mIoU@1 random std", "mIoU@1 random per seed", "random seconds per call", "random instances",
               "bIoU@1 center", "biou_curve"]  # boundary IoU, added last
SCALING_KEYS = ["model", "model_path", "dataset", "num_instances", "tta", "triangulation", "sampling", "scaling",
                "mIoU@1 center", "mIoU@1 random", "mIoU@1 random std", "seconds per call", "seconds per call random",
                "encode seconds per image"]


class _Oracle(OracleSegmenter):
    settings_label = "the ground truth, eroded"


def test_the_runner_writes_the_same_keys_and_rows_read_back_write_the_same_dict(monkeypatch, tmp_path):
    from hf_iis.evaluation import peers, runner

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    instances = []
    for k in range(4):
        gt = np.zeros((40, 50), bool)
        gt[5 + k: 25 + k, 10: 30 + k] = True
        instances.append(Instance(f"toy{k}", image, gt, None))
    monkeypatch.setattr(runner, "load_benchmark", lambda name, root=None, limit=None: instances)
    monkeypatch.setitem(peers.PEERS, "oracle", lambda: _Oracle(erode_px=2))
    cfg = EvalConfig(datasets=["Toy"], peers=["oracle"], protocols=["noc", "miou1", "random"], noc_limit=3,
                     random_limit=2, seeds=2, max_clicks=3, overlays=0, progress=False, out=str(tmp_path / "eval"))
    run_evaluation(cfg)
    (row,) = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]
    assert list(row) == ROW_KEYS and list(row["metrics"]) == METRIC_KEYS
    back = ResultRow.from_dict(row)
    assert back.to_dict() == row and list(back.to_dict()["metrics"]) == METRIC_KEYS
    m = back.metrics
    assert m.noc_instances == 3 and m.random_instances == 2 and m.center_instances == 4
    assert m.miou_at(1) == row["metrics"]["mIoU@1"] and m.miou_at(4) is None
    assert m.noc[90] == row["metrics"]["NoC@90"] and m.nof[95] == row["metrics"]["NoF@95"]


def test_partial_metrics_round_trip_and_summaries_fill_the_fields():
    partial = {"NoC@85": 3.5, "NoC@90": 4.25, "mIoU@1 center": 81.5}
    m = ClickMetrics.from_dict(partial)
    assert m.noc == {85: 3.5, 90: 4.25} and m.nof == {} and m.miou_curve is None and m.miou1_random is None
    assert m.to_dict() == partial
    summary = summarize_curves([[0.5, 0.9], [0.95, 0.97]])
    m = ClickMetrics.from_dict(summary)
    assert m.to_dict() == summary and list(m.to_dict()) == list(summary)
    assert m.num_instances == 2 and m.nof == {85: 0, 90: 0, 95: 1} and m.miou_curve == summary["miou_curve"]
    # mIoU@k without the curve (a hand-written dict): the curve is rebuilt from the keys
    assert ClickMetrics.from_dict({"mIoU@1": 50.0, "mIoU@2": 60.0}).miou_curve == [50.0, 60.0]


def test_scaling_rows_keep_their_keys_including_a_null_sampling():
    row = ScalingRow(model="m", model_path="p/m", dataset="GrabCut", num_instances=3, tta=4, scaling="tta=4",
                     miou1_center=80.0, miou1_random=70.0, miou1_random_std=1.0, seconds_per_call=0.1,
                     seconds_per_call_random=0.05, encode_seconds_per_image=0.2)
    data = row.to_dict()
    assert list(data) == SCALING_KEYS and data["sampling"] is None and data["mIoU@1 center"] == 80.0
    assert ScalingRow.from_dict(data) == row and ScalingRow.from_dict(row) is row


def test_paired_rows_gives_each_method_minus_the_baseline_on_the_same_instances(tmp_path, capsys):
    """scripts/paired_rows.py: per dataset, the mean difference on the instances both rows have, a NoC-loop instance
    counted by its first click (hand-checkable: +10, +20 and +30 points → +20), and an unknown baseline is a one-line
    error naming the run's methods."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    rows = [{"method": "base", "dataset": "D", "id": "a", "iou@1 center": 0.5},
            {"method": "base", "dataset": "D", "id": "b", "iou@1 center": 0.6},
            {"method": "new", "dataset": "D", "id": "a", "iou@1 center": 0.6},
            {"method": "new", "dataset": "D", "id": "b", "iou@1 center": 0.8},
            {"method": "new", "dataset": "D", "id": "c", "iou@1 center": 0.1},  # no baseline: left out
            {"method": "base", "dataset": "D", "id": "e", "ious": [0.2, 0.9]},  # a NoC-loop instance: its first click
            {"method": "new", "dataset": "D", "id": "e", "ious": [0.5, 0.95]}]
    (tmp_path / "instances.json").write_text(json.dumps(rows))
    script = Path(__file__).resolve().parents[1] / "scripts" / "paired_rows.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--baseline", "base"],
                         capture_output=True, text=True, check=True).stdout
    assert "| D | new | 3 | 43.33 | 63.33 | +20.00 [+10.00, +30.00] |" in out
    bad = subprocess.run([sys.executable, str(script), str(tmp_path), "--baseline", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'nope' is not a method" in bad.stderr


def test_paired_rows_reads_the_rows_of_several_runs_and_refuses_a_label_two_runs_hold(tmp_path):
    """One setting per run (e.g. evaluate.py --map-choice): the rows of two runs on the same instances are paired as
    one run's would be (hand-checkable: 2 and 6 clicks against 4 and 4 -> 0); a label both runs hold is refused."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    for name, method, nocs in (("a", "base", (4, 4)), ("b", "other", (2, 6)), ("c", "base", (1, 1))):
        (tmp_path / name).mkdir()
        rows = [{"method": method, "dataset": "D", "id": i, "NoC@90": n} for i, n in zip("xy", nocs)]
        (tmp_path / name / "instances.json").write_text(json.dumps(rows))
    script = Path(__file__).resolve().parents[1] / "scripts" / "paired_rows.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "b"), "--baseline", "base",
                          "--metric", "NoC@90"], capture_output=True, text=True, check=True).stdout
    assert "| D | other | 2 | 4.00 | 4.00 | +0.00 [-2.00, +2.00] |" in out
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "c"), "--baseline",
                          "base"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'base' is in both" in bad.stderr


def test_summary_table_prints_the_quoted_columns_and_dashes_for_what_was_not_measured(tmp_path):
    """scripts/summary_table.py: a row's numbers in the docs' rounding, "–" where a row lacks a metric, a column no
    row has left out, "k of n" for a NoC subset; an unknown column is a one-line error."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    rows = [{"method": "m", "dataset": "D", "num_instances": 10,
             "metrics": {"mIoU@1 center": 74.234, "NoC@90": 4.625, "NoF@90": 2, "NoC instances": 5}},
            {"method": "peer", "dataset": "D", "num_instances": 10, "metrics": {"mIoU@1 center": 81.65}}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": rows}))
    script = Path(__file__).resolve().parents[1] / "scripts" / "summary_table.py"
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "| dataset | method | N | mIoU@1 center | NoC@90 | NoF@90 |"
    assert "| D | m | 10 (NoC: 5) | 74.2 | 4.62 | 2 |" in out and "| D | peer | 10 | 81.7 | – | – |" in out
    bad = subprocess.run([sys.executable, str(script), str(path), "--columns", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
