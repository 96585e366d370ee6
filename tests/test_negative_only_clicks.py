"""A click set with no positive click selects nothing: an empty mask and score 0.0 at every setting, while
`probabilities` still carries the model's f−(I, x) map (what `prev_mask` feeds into the next click).

Checked with the embedded default model on scikit-image's astronaut, where one negative click used to give a 1 %
blob with score 0.80 at tta=1 and an empty mask with score 0.0 at tta=4.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

torch.set_num_threads(1)

NEGATIVE = [(255.0, 120.0, -1)]  # on the astronaut's face


@pytest.fixture(scope="module")
def default_pipeline():
    from hf_iis.checkpoint_paths import load_pipeline

    return load_pipeline(None)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.mark.parametrize(("tta", "triangulation"), [(1, 0), (4, 0), (1, 2)])
def test_a_lone_negative_click_gives_an_empty_mask_and_score_zero(default_pipeline, astronaut, tta, triangulation):
    out = default_pipeline(astronaut, clicks=NEGATIVE, tta=tta, triangulation=triangulation)
    assert not np.asarray(out["mask"]).any() and out["mask"].size == astronaut.shape[1::-1]
    assert out["score"] == 0.0
    assert out["probabilities"].shape == astronaut.shape[:2] and out["probabilities"].max() > 0  # f−(I, x) kept
    for threshold in (0.05, 0.5):
        assert not np.asarray(default_pipeline(astronaut, clicks=NEGATIVE, tta=tta, threshold=threshold)["mask"]).any()


def test_the_predictor_agrees_and_a_positive_click_selects_again(default_pipeline, astronaut):
    from hf_iis.inference.predictor import has_positive_click

    predictor = default_pipeline.predictor
    predictor.set_image(astronaut)
    for tta in (1, 4):
        prediction = predictor.predict(NEGATIVE + [(405.0, 40.0, -1)], tta=tta)
        assert prediction.score == 0.0 and not prediction.has_positive_click
        assert not prediction.mask().any() and prediction.probabilities.max() > 0
    prediction = predictor.predict([(255.0, 120.0, 1), (405.0, 40.0, -1)])
    assert prediction.has_positive_click and prediction.mask().any() and prediction.score > 0
    assert np.array_equal(prediction.mask(0.5), prediction.probabilities >= 0.5)
    assert has_positive_click([(1, 2, -1), (3, 4, 1)]) and not has_positive_click([(1, 2, -1)])


def test_the_cli_says_nothing_is_selected(tmp_path, capsys):
    from PIL import Image

    from hf_iis.cli import main

    path = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    assert main(["segment", str(path), "--click", "255,120,-", "--out", str(tmp_path / "m.png")]) == 0
    assert not np.asarray(Image.open(tmp_path / "m.png")).any()
    out = capsys.readouterr().out
    assert "(0 px, score 0.000" in out and "no positive click" in out
