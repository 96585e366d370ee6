"""`scripts/zoom_figure.py`: the instance zoom helps most, and one-line errors before any model loads."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_script


def _records():
    rows = []
    for method, ious in (("off", {"a": [0.5, 0.6, 0.7], "b": [0.4, 0.5, 0.6]}),
                         ("on", {"a": [0.5, 0.7, 0.8], "b": [0.4, 0.8, 0.9]})):
        rows += [{"method": method, "dataset": "D", "id": i, "ious": v} for i, v in ious.items()]
    return rows


def test_pick_instance_takes_the_largest_gain_at_the_click_asked():
    script = load_script("zoom_figure")
    assert script.pick_instance(_records(), "D", 3, "off", "on") == ("b", 0.6, 0.9)
    assert script.pick_instance(_records(), "D", 1, "off", "on")[0] == "a"  # no gain anywhere: the first id
    with pytest.raises(ValueError, match="no NoC records of both"):
        script.pick_instance(_records(), "E", 3, "off", "on")


@pytest.mark.parametrize("extra, message", [
    (["--results", "/nonexistent.json"], "no such file"),
    (["--clicks", "0"], "--clicks must be >= 1"),
    (["--out", "/nonexistent/x.jpg"], "does not exist"),
    (["--out", "x.gif"], "give a .jpg or .png"),
    (["--dataset", "E"], "no NoC records of both"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, message):
    results = tmp_path / "instances.json"
    results.write_text(json.dumps(_records()))
    argv = ["--results", str(results), "--dataset", "D", "--off", "off", "--on", "on",
            "--out", str(tmp_path / "fig.jpg"), *extra]
    assert load_script("zoom_figure").main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoom_figure.py: error:") and message in err[0]
