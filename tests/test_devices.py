"""Devices and precision: `device=` / `dtype=` (and `torch_dtype=`) in `pipeline(...)`, `load_pipeline` and the
predictors' `from_pretrained`; bfloat16 runs on the CPU close to float32; a missing device is one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_iis
from hf_iis.inference.devices import check_device, check_dtype

CLICKS = [(30, 20, 1), (5, 5, -1)]
OPTIONS = {"tta": 2, "triangulation": 4, "return_uncertainty": True}


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((48, 72, 3)) * 255).astype(np.uint8)


def _close_to_float32(result, reference):
    """bfloat16 keeps 8 significant bits, so every layer rounds at ~0.4 % and the logits drift by a few percent;
    a probability p moves by about p(1 - p) times that, most near 0.5. Measured: the tiny teacher here, mean
    |difference| 0.009 and 99th percentile 0.05 (the tiny student 0.0000 and 0.0002); the default model on the
    coffee photo (tta=2, triangulation=8), mean 0.010, 99.4 % of mask pixels equal. The bounds leave 2x room; a
    broken cast (a map left in bfloat16 and rounded, a view mapped back wrong) lands far outside them. (The random
    tiny model's probabilities sit near 0.5 everywhere, so its masks' agreement says nothing and is not compared.)"""
    assert result["probabilities"].dtype == np.float32
    difference = np.abs(result["probabilities"] - reference["probabilities"])
    assert difference.mean() < 0.02
    assert np.quantile(difference, 0.99) < 0.1
    assert result["uncertainty"].dtype == np.float32 and np.isfinite(result["uncertainty"]).all()


@pytest.mark.parametrize("keyword", ["dtype", "torch_dtype"])
def test_bfloat16_on_the_cpu_through_pipeline(tiny_checkpoint, image, keyword):
    reference = pipeline("interactive-segmentation", model=str(tiny_checkpoint))(image, clicks=CLICKS, **OPTIONS)
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint), **{keyword: torch.bfloat16})
    assert seg.model.dtype == torch.bfloat16
    _close_to_float32(seg(image, clicks=CLICKS, **OPTIONS), reference)


def test_bfloat16_through_load_pipeline_and_the_predictors(tiny_checkpoint, tmp_path, image):
    from test_thread_safety import _tiny_student

    student = _tiny_student(tmp_path / "student")
    for path in (tiny_checkpoint, student):
        reference = hf_iis.load_pipeline(path)(image, clicks=CLICKS, **OPTIONS)
        seg = hf_iis.load_pipeline(path, device="cpu", dtype="bfloat16")
        assert seg.model.dtype == torch.bfloat16 and seg.device == torch.device("cpu")
        _close_to_float32(seg(image, clicks=CLICKS, **OPTIONS), reference)
        assert hf_iis.load_pipeline(path, torch_dtype=torch.bfloat16).model.dtype == torch.bfloat16

    predictor = hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint, device="cpu", dtype=torch.bfloat16)
    predictor.set_image(image)
    assert predictor.predict(CLICKS, tta=2).probabilities.dtype == np.float32
    assert predictor.predict(CLICKS).input_logits.dtype == np.float32
    student_predictor = hf_iis.SignedClickStudentPredictor.from_pretrained(student, device="cpu", dtype="bf16")
    student_predictor.set_image(image)
    assert student_predictor.predict(CLICKS, triangulation=1).probabilities.dtype == np.float32
    assert student_predictor.predict_single_clicks([(3, 3)]).dtype == np.float32


def test_from_pretrained_takes_a_device(tiny_checkpoint):
    predictor = hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint, device="cpu", points_per_batch=8)
    assert predictor.device == torch.device("cpu") and predictor.points_per_batch == 8
    assert hf_iis.load_predictor(tiny_checkpoint, device="cpu", dtype="bfloat16").model.dtype == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_one_line_naming_the_available_ones(tiny_checkpoint):
    with pytest.raises(ValueError, match=r"device 'cuda' is not available on this machine; available: cpu"):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint), device="cuda")
    with pytest.raises(ValueError, match=r"device 0 is not available on this machine; available: cpu"):
        hf_iis.load_pipeline(tiny_checkpoint, device=0)
    with pytest.raises(ValueError, match="'cuda:1' is not available"):
        hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint, device="cuda:1")


def test_device_and_dtype_checks():
    assert check_device(None) is None and check_device(-1) == torch.device("cpu")
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'; available here: cpu"):
        check_device("gpu")
    with pytest.raises(ValueError, match="unknown device True"):
        check_device(True)
    assert check_dtype("bf16") == check_dtype("bfloat16") == check_dtype(torch.bfloat16) == torch.bfloat16
    assert check_dtype("auto") is None and check_dtype("torch.float16") == torch.float16
    with pytest.raises(ValueError, match="unsupported dtype 'int8'"):
        check_dtype("int8")
    with pytest.raises(ValueError, match="pass dtype or torch_dtype"):
        hf_iis.load_pipeline(None, dtype="bfloat16", torch_dtype="bfloat16")
