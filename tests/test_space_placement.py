"""The Space's device and precision: --device / --dtype, else HF_IIS_DEVICE / HF_IIS_DTYPE, passed to
`load_pipeline`; a device the machine lacks (or an unknown dtype) is one `error:` line at start-up, before the model
loads; bfloat16 on the CPU serves clicks."""

from __future__ import annotations

import os
import subprocess
import sys

import gradio as gr
import numpy as np
import pytest
import torch
from test_space_handlers import SPACE_DIR, unpack

from hf_iis import space
from hf_iis.space.placement import placement

torch.set_num_threads(1)

MISSING = "cuda:99" if torch.cuda.is_available() else "cuda"  # a device this machine lacks


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    for variable in ("HF_IIS_DEVICE", "HF_IIS_DTYPE"):
        monkeypatch.delenv(variable, raising=False)


def test_arguments_then_environment_then_as_loaded(monkeypatch):
    assert placement() == (None, None)
    monkeypatch.setenv("HF_IIS_DEVICE", "cpu")
    monkeypatch.setenv("HF_IIS_DTYPE", "bf16")
    assert placement() == (torch.device("cpu"), torch.bfloat16)
    assert placement(dtype="float32") == (torch.device("cpu"), torch.float32)  # an argument wins
    monkeypatch.setenv("HF_IIS_DEVICE", " ")  # an empty setting is unset
    assert placement()[0] is None


def test_a_missing_device_or_an_unknown_dtype_is_one_line_naming_the_setting(monkeypatch):
    monkeypatch.setenv("HF_IIS_DEVICE", MISSING)
    with pytest.raises(ValueError, match=rf"^HF_IIS_DEVICE={MISSING}: device '{MISSING}' is not available on this "
                                         r"machine; available: cpu"):
        placement()
    with pytest.raises(ValueError, match=rf"^--device={MISSING}: "):
        placement(MISSING)
    monkeypatch.delenv("HF_IIS_DEVICE")
    monkeypatch.setenv("HF_IIS_DTYPE", "int8")
    with pytest.raises(ValueError, match=r"^HF_IIS_DTYPE=int8: unsupported dtype 'int8'; use torch.float32, "
                                         r"torch.bfloat16 or torch.float16"):
        placement()


def test_start_up_on_a_missing_device_exits_with_one_error_line_before_loading(monkeypatch, capsys, tiny_checkpoint):
    import hf_iis.space.ui

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the device was checked")

    monkeypatch.setattr(hf_iis.space.ui, "load_pipeline", never)
    monkeypatch.setenv("HF_IIS_DEVICE", MISSING)
    with pytest.raises(SystemExit) as exit_info:
        space.main(["--model", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    available = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())])
    assert err.splitlines() == [f"error: HF_IIS_DEVICE={MISSING}: device '{MISSING}' is not available on this "
                                f"machine; available: {available}"]
    assert "not compiled" not in err and "Traceback" not in err
    monkeypatch.delenv("HF_IIS_DEVICE")
    with pytest.raises(SystemExit):
        space.main(["--model", str(tiny_checkpoint), "--dtype", "double"])
    assert capsys.readouterr().err.startswith("error: --dtype=double: unsupported dtype 'double'")


def test_bfloat16_on_the_cpu_serves_clicks(monkeypatch, tiny_checkpoint, photo):
    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.append(self))
    monkeypatch.setenv("HF_IIS_DTYPE", "bf16")
    space.main(["--model", str(tiny_checkpoint), "--device", "cpu"])
    handlers = launched[0].handlers
    model = handlers.segmenter.model
    assert model.dtype == torch.bfloat16 and model.device == torch.device("cpu")
    state = handlers.load(photo, False, False)[0]
    out = unpack(handlers.click(state, 300, 200, space.POSITIVE, 2, 2, True, True))
    assert out["details"]["selects"] and not out["status"].startswith("⚠️")
    probabilities = out["state"].last.probability_map()
    assert probabilities.shape == photo.shape[:2] and np.isfinite(probabilities).all()
    height, width = photo.shape[:2]
    assert out["mask"].size == (width, height)


@pytest.mark.slow
def test_spaces_app_py_on_a_missing_device(tmp_path, tiny_checkpoint):
    env = {key: value for key, value in os.environ.items() if key not in ("HF_IIS_DEVICE", "HF_IIS_DTYPE")}
    env.update(HF_IIS_DEVICE=MISSING, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    result = subprocess.run([sys.executable, str(SPACE_DIR / "app.py"), "--model", str(tiny_checkpoint)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [line for line in result.stderr.strip().splitlines()
                                                  if line.startswith("error: HF_IIS_DEVICE=")], result.stderr
    assert "not compiled" not in result.stderr and "Traceback" not in result.stderr
