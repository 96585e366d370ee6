"""Inputs refused with one line, and accepted alike on the pipeline, the teacher and the student: seeds, flags, numpy
scalars, string coordinates, complex masks, SAM's point prompts, image paths that are folders or URLs, hub repo ids
offline; the student's triangulation on thin images; the teacher's progress bar on long triangulations."""

from __future__ import annotations

import time

import numpy as np
import pytest
from transformers import pipeline

import hf_iis
from hf_iis.checkpoint_paths import resolve_checkpoint

CLICKS = [(30, 20, 1), (5, 5, -1)]


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((48, 72, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def student_folder(tmp_path_factory):
    from test_thread_safety import _tiny_student

    return _tiny_student(tmp_path_factory.mktemp("student"))


@pytest.fixture(scope="module", params=["teacher", "student"])
def predictor(request, tiny_checkpoint, student_folder, image):
    predictor = hf_iis.load_predictor(tiny_checkpoint if request.param == "teacher" else student_folder)
    predictor.set_image(image)
    return predictor


@pytest.fixture(scope="module")
def seg(tiny_checkpoint):
    return pipeline("interactive-segmentation", model=str(tiny_checkpoint))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": "x"}, "seed must be a whole number"),
        ({"seed": 2**70}, "seed must be a whole number"),
        ({"seed": True}, "seed must be a whole number"),
        ({"return_uncertainty": "no"}, "return_uncertainty must be True or False"),
        ({"triangulation": 2, "triangulation_sampling": "soft"}, "unknown triangulation sampling 'soft'"),
        ({"triangulation_sampling": "bogus"}, "unknown triangulation sampling 'bogus'"),
    ],
)
def test_both_predictors_refuse_what_the_pipeline_refuses(predictor, seg, image, options, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(CLICKS, **options)
    with pytest.raises(ValueError, match=message):
        seg(image, clicks=CLICKS, **options)


def test_numpy_scalars_count_as_the_python_values_they_hold(predictor):
    reference = predictor.predict(CLICKS, tta=2, return_uncertainty=True, seed=3)
    numpy_clicks = [(np.float32(30), np.int64(20), np.int64(1)), (np.int32(5), np.float64(5), np.int8(-1))]
    same = predictor.predict(numpy_clicks, tta=np.int64(2), return_uncertainty=np.True_, seed=np.int64(3))
    assert np.array_equal(same.probabilities, reference.probabilities) and same.uncertainty is not None
    for sign in (True, np.True_):
        with pytest.raises(ValueError, match="the sign must be \\+1 \\(object\\) or -1"):
            predictor.predict([(30, 20, sign)])
    for x in ("10", True, np.True_, 3 + 0j):
        with pytest.raises(ValueError, match="click 0 has non-numeric coordinates"):
            predictor.predict([(x, 20, 1)])


def test_complex_or_text_previous_masks_are_refused(predictor):
    height, width = predictor.original_size
    with pytest.raises(ValueError, match="prev_mask has dtype complex128; it must hold real probabilities"):
        predictor.predict(CLICKS, np.full((height, width), 0.5 + 0.5j))
    with pytest.raises(ValueError, match="prev_mask has dtype <U"):
        predictor.predict(CLICKS, np.full((height, width), "a"))
    size = predictor.processor.size
    with pytest.raises(ValueError, match="prev_logits has shape"):
        predictor.predict(CLICKS, prev_logits=np.zeros((size, size), np.complex64))


# ----------------------------------------------------------------------------- SAM's point prompts
def test_sam_points_and_labels_give_the_clicks_result(predictor, seg, image):
    reference = predictor.predict(CLICKS, tta=2)
    same = predictor.predict(input_points=[[30, 20], [5, 5]], input_labels=[1, 0], tta=2)
    assert np.array_equal(same.probabilities, reference.probabilities)
    positive_only = predictor.predict(input_points=np.array([[30, 20]]))  # SAM: labels default to positive
    assert np.array_equal(positive_only.probabilities, predictor.predict([(30, 20, 1)]).probabilities)
    out = seg(image, input_points=[[30, 20], [5, 5]], input_labels=[1, 0])
    assert np.array_equal(out["probabilities"], seg(image, clicks=CLICKS)["probabilities"])


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"clicks": CLICKS, "input_points": [[1, 1]]}, "or input_points / input_labels .SAM's form., not both"),
        ({"input_points": [[1, 1], [2, 2]], "input_labels": [1]}, "input_points has 2 point.s. but input_labels has 1"),
        ({"input_labels": [1]}, "input_labels given without input_points"),
        ({"input_points": [[1, 1]], "input_labels": [2]}, r"input_labels\[0\] is 2"),
        ({"input_points": [[1, 1]], "input_labels": [True]}, r"input_labels\[0\] is True"),
        ({"input_points": [[1, 1, 1]]}, r"input_points\[0\] is \[1, 1, 1\]; each point must be \[x, y\]"),
        ({"input_points": [["1", 1]]}, r"each point must be \[x, y\]"),
        ({"input_points": []}, "input_points must be a non-empty list"),
    ],
)
def test_sam_prompt_mistakes_are_one_line(predictor, seg, image, prompts, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(**prompts)
    with pytest.raises(ValueError, match=message):
        seg(image, **prompts)


# ----------------------------------------------------------------------------- the student on thin images
def test_student_triangulation_on_an_image_a_few_grid_cells_high(student_folder):
    predictor = hf_iis.load_predictor(student_folder)
    thin = (np.random.default_rng(0).random((8, 200, 3)) * 255).astype(np.uint8)  # resized to 3 x 64 pixels
    predictor.set_image(thin)
    assert predictor.reshaped_size[0] <= 10
    result = predictor.predict([(100, 4, 1)], triangulation=1, return_uncertainty=True)
    assert result.probabilities.shape == (8, 200) and np.isfinite(result.probabilities).all()


# ----------------------------------------------------------------------------- the teacher's progress bar
def test_long_triangulations_show_a_progress_bar(tiny_checkpoint, image, capsys, monkeypatch):
    from transformers.utils import logging as hf_logging

    from hf_iis.inference import predictor as predictor_module

    hf_logging.enable_progress_bar()
    predictor = hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(image)
    predictor.predict(CLICKS, triangulation=8)  # 16 decodes, below the bar's threshold
    assert "triangulation" not in capsys.readouterr().err
    monkeypatch.setattr(predictor_module, "PROGRESS_MIN_DECODES", 16)
    shown = predictor.predict(CLICKS, triangulation=8)
    err = capsys.readouterr().err
    assert "triangulation:" in err and "/16 [" in err  # the bar over 2 x 8 decodes (tqdm may skip frames)
    hf_logging.disable_progress_bar()  # transformers' switch turns it off
    try:
        assert np.array_equal(shown.probabilities, predictor.predict(CLICKS, triangulation=8).probabilities)
        assert "triangulation" not in capsys.readouterr().err
    finally:
        hf_logging.enable_progress_bar()


# ----------------------------------------------------------------------------- image paths
def test_a_folder_or_a_url_as_the_image_says_so(seg, tmp_path):
    with pytest.raises(ValueError, match=f"image path {tmp_path} is a directory; pass an image file"):
        seg(str(tmp_path), clicks=CLICKS)
    url = "https://example.com/cat.png"
    with pytest.raises(ValueError, match="image 'https://example.com/cat.png' is a URL; URLs are not fetched") as error:
        seg(url, clicks=CLICKS)
    assert "https:/example" not in str(error.value)


# ----------------------------------------------------------------------------- checkpoints
def test_an_absolute_missing_path_gets_no_hub_hint():
    with pytest.raises(FileNotFoundError) as error:
        resolve_checkpoint("/nonexistent")
    assert str(error.value) == "checkpoint folder not found: /nonexistent"


def test_a_hub_repo_id_offline_fails_at_once_in_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="checkpoint owner/name: HF_HUB_OFFLINE is set and this hub repo is "
                                                "not in the local cache") as error:
        hf_iis.load_pipeline("owner/name")
    assert time.perf_counter() - start < 5 and "\n" not in str(error.value)


def test_a_hub_repo_id_with_the_hub_unreachable_fails_at_once(monkeypatch):
    from huggingface_hub import constants

    from hf_iis import checkpoint_paths

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(checkpoint_paths, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(FileNotFoundError, match="checkpoint owner/name: cannot reach the Hugging Face Hub"):
        hf_iis.load_pipeline("owner/name")
