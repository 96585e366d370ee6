"""`hf-iis segment` end to end, and its error messages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hf_iis.cli import main, parse_click


def test_parse_click():
    assert parse_click("10,20") == (10.0, 20.0, 1)
    assert parse_click("10.5, 20,-") == (10.5, 20.0, -1)
    with pytest.raises(Exception, match="sign must be"):
        parse_click("1,2,x")
    with pytest.raises(Exception, match="X,Y"):
        parse_click("1")


def test_segment_writes_mask_and_overlay(tiny_checkpoint, photo, tmp_path, capsys):
    image_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(image_path)
    code = main(["segment", str(image_path), "--click", "200,150", "--click", "20,20,-", "--tta", "2",
                 "--triangulation", "2", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "m.png"),
                 "--overlay", str(tmp_path / "o.png")])
    assert code == 0
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == photo.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert Image.open(tmp_path / "o.png").size == (photo.shape[1], photo.shape[0])
    assert "mask:" in capsys.readouterr().out


@pytest.mark.slow
def test_segment_reports_errors_without_traceback(tiny_checkpoint, photo, tmp_path):
    image_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(image_path)
    result = subprocess.run(
        [sys.executable, "-m", "hf_iis.cli", "segment", str(image_path), "--click", "9999,1",
         "--model", str(tiny_checkpoint), "--out", str(tmp_path / "m.png")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "outside the" in result.stderr and "Traceback" not in result.stderr


def test_segment_loads_an_exported_hub_folder_and_names_damaged_weights(tiny_checkpoint, photo, tmp_path,
                                                                        capsys):
    """A folder written by `hf-iis export` (auto_map, custom_pipelines) loads without trust_remote_code; a truncated
    model.safetensors is an error naming the checkpoint, not a loader traceback."""
    image_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(image_path)
    hub = tmp_path / "hub"
    assert main(["export", "--model", str(tiny_checkpoint), "--out", str(hub)]) == 0
    assert main(["segment", str(image_path), "--click", "200,150", "--model", str(hub),
                 "--out", str(tmp_path / "m.png")]) == 0
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (damaged / name).write_bytes((hub / name).read_bytes())
    (damaged / "model.safetensors").write_bytes((hub / "model.safetensors").read_bytes()[:1000])
    capsys.readouterr()
    assert main(["segment", str(image_path), "--click", "200,150", "--model", str(damaged),
                 "--out", str(tmp_path / "m2.png")]) == 2
    assert f"cannot load checkpoint {damaged}" in capsys.readouterr().err
