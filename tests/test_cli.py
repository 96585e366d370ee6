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


def test_segment_says_what_runs_first_and_takes_device_and_dtype(tiny_checkpoint, photo, tmp_path, capsys):
    image_path = tmp_path / "photo.png"
    Image.fromarray(photo).save(image_path)
    code = main(["segment", str(image_path), "--click", "200,150", "--tta", "2", "--triangulation", "3",
                 "--model", str(tiny_checkpoint), "--out", str(tmp_path / "m.png"), "--device", "cpu",
                 "--dtype", "bf16"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("segmenting ") and "2 TTA views x 3 triangulation pixels (stratified)" in lines[0]
    assert lines[1].startswith("mask:")


def test_cli_scaling_range_is_the_spaces():
    """The Space's sliders and the CLI take the same TTA and triangulation ranges."""
    pytest.importorskip("gradio")
    from hf_iis import cli
    from hf_iis.space import handlers

    assert (cli.MAX_TTA, cli.MAX_TRIANGULATION) == (handlers.MAX_TTA, handlers.MAX_TRIANGULATION)


def test_export_writes_a_model_card_by_default(tiny_checkpoint, tmp_path, capsys):
    import shutil

    hub = tmp_path / "hub"
    assert main(["export", "--model", str(tiny_checkpoint), "--out", str(hub)]) == 0
    card = (hub / "README.md").read_text()
    assert card.startswith("---\n") and "pipeline_tag: image-segmentation" in card and "hf-iis export" in card
    assert "a short one" in capsys.readouterr().out
    carded = tmp_path / "carded"  # a checkpoint with its own card (as the shipped ones): that card is reused
    shutil.copytree(tiny_checkpoint, carded)
    (carded / "README.md").write_text("---\nlicense: apache-2.0\n---\n# the checkpoint's own card\n")
    assert main(["export", "--model", str(carded), "--out", str(tmp_path / "hub2")]) == 0
    assert (tmp_path / "hub2" / "README.md").read_text().startswith((carded / "README.md").read_text())
    assert main(["export", "--model", str(carded), "--out", str(tmp_path / "hub3"), "--no-card"]) == 0
    assert not (tmp_path / "hub3" / "README.md").exists()


def test_demo_prints_readable_lines(tiny_checkpoint, tmp_path, capsys):
    pytest.importorskip("skimage")
    assert main(["demo", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "'tta'" not in out  # no Python dict
    assert "plain (no scaling): mask covers" in out and "scaled (4 TTA views): mask covers" in out
