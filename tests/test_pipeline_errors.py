"""Errors that are the project's own: through transformers' `pipeline()`, damaged weights are a ValueError naming the
checkpoint, and a bad scaling option is refused when the pipeline is built, not at its first call."""

from __future__ import annotations

import re

import numpy as np
import pytest
from transformers import pipeline

import hf_iis


def test_truncated_weights_are_a_value_error_naming_the_checkpoint(tiny_checkpoint, tmp_path):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (damaged / name).write_bytes((tiny_checkpoint / name).read_bytes())
    (damaged / "model.safetensors").write_bytes((tiny_checkpoint / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"cannot load checkpoint {re.escape(str(damaged))}: "):
        pipeline("interactive-segmentation", model=str(damaged))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tta": 0}, "tta must be between 1 and 12 views, got 0"),
        ({"tta": 2.5}, "tta must be a whole number"),
        ({"tta": ["spin"]}, "unknown TTA view"),
        ({"triangulation": -1}, "triangulation must be a whole number"),
        ({"triangulation": 2.5}, "triangulation must be a whole number"),
        ({"triangulation_sampling": "random"}, "unknown triangulation sampling"),
        ({"triangulation_blend": 2}, r"triangulation_blend must be in \[0, 1\]"),
        ({"combine": "max"}, "unknown TTA combine mode"),
        ({"seed": "x"}, r"seed must be a whole number in \[0, 2\*\*63 - 1\], got 'x'"),
        ({"seed": 2**70}, "seed must be a whole number"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": 2.5}, "seed must be a whole number"),
        ({"return_uncertainty": "no"}, "return_uncertainty must be True or False, got 'no'"),
        ({"return_uncertainty": 1}, "return_uncertainty must be True or False"),
        ({"tta": np.True_}, "tta must be a number of views or a list of view names, got np.True_"),
        ({"triangulation": np.True_}, "triangulation must be a whole number"),
    ],
)
def test_bad_scaling_options_are_refused_at_construction(tiny_checkpoint, options, message):
    with pytest.raises(ValueError, match=message):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint), **options)
    with pytest.raises(ValueError, match=message):
        hf_iis.load_pipeline(tiny_checkpoint, **options)


def test_good_options_are_kept_and_per_call_ones_checked_before_any_work(tiny_checkpoint):
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint), tta=2, triangulation=2,
                   triangulation_sampling="uniform", triangulation_blend=0.5, combine="logit")
    image = np.zeros((32, 32, 3), np.uint8)
    assert seg(image, clicks=[(5, 5, 1)])["views"] == ["identity", "hflip"]
    before = seg.predictor.encode_count
    with pytest.raises(ValueError, match="tta must be between"):
        seg(np.full((32, 32, 3), 7, np.uint8), clicks=[(5, 5, 1)], tta=0)
    assert seg.predictor.encode_count == before
