"""Several answers per click through the predictor and the pipeline: `multimask_output=True` gives every map, best
(highest predicted IoU) first; the default gives the best map in today's output form; one-map models keep their
single answer; each map goes through TTA and triangulation before one is chosen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from hf_iis import SignedClickImageProcessor, SignedClickPredictor
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from tests.conftest import tiny_saliency_model


@pytest.fixture(scope="module")
def multimask_checkpoint(tmp_path_factory):
    grown = grow_outputs(tiny_saliency_model(), num_masks=3)
    with torch.no_grad():  # an IoU head that ranks the maps 3rd, 1st, 2nd: the order must follow it
        grown.decoder.iou_head.mlp[-1].bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    folder = tmp_path_factory.mktemp("multimask")
    grown.save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(3).random((48, 72, 3)) * 255).astype(np.uint8)


def test_multimask_output_returns_every_map_best_first(multimask_checkpoint, image):
    seg = pipeline("interactive-segmentation", model=str(multimask_checkpoint))
    out = seg(image, clicks=[(30, 20, 1)], multimask_output=True)
    assert len(out["masks"]) == len(out["mask_probabilities"]) == len(out["iou_scores"]) == 3
    assert out["iou_scores"] == sorted(out["iou_scores"], reverse=True)
    assert all(m.size == (72, 48) for m in out["masks"])
    assert np.array_equal(out["probabilities"], out["mask_probabilities"][0])
    assert out["iou_score"] == out["iou_scores"][0]
    assert out["encoded_views"] == 1  # the first call on this image encoded its one view (for the IoU head)
    assert seg(image, clicks=[(30, 20, 1)], multimask_output=True)["encoded_views"] == 0
    # the three maps are different answers (component, old model, blend)
    assert not np.allclose(out["mask_probabilities"][0], out["mask_probabilities"][1])
    # the default: the best map alone, in the one-map output form
    plain = seg(image, clicks=[(30, 20, 1)])
    assert "masks" not in plain and np.array_equal(plain["probabilities"], out["probabilities"])


def test_each_map_is_combined_across_views_before_the_choice(multimask_checkpoint, image):
    predictor = SignedClickPredictor.from_pretrained(multimask_checkpoint)
    predictor.set_image(image)
    best = predictor.predict([(30, 20, 1)], tta=2, multimask_output=True, upsample="bilinear")  # as _to_original
    for answer in best.alternatives:
        k = {0: 0, 1: 1, 2: 2}[int(np.argmin([abs(answer.predicted_iou - v) for v in _ious(predictor)]))]
        points = predictor.processor.points_to_input(torch.tensor([[30.0, 20.0]]), predictor.original_size,
                                                     predictor.reshaped_size)
        direct = predictor.predict_torch(points[None], torch.tensor([[1]]), tta=2, map_index=k)
        expected = predictor._to_original(direct.probabilities)[0].numpy()
        assert np.allclose(answer.probabilities, expected, atol=1e-6)
        assert answer.views == ["identity", "hflip"]


def _ious(predictor):
    from hf_iis.inference.multimask_prediction import IDENTITY, predicted_ious

    points = predictor.processor.points_to_input(torch.tensor([[30.0, 20.0]]), predictor.original_size,
                                                 predictor.reshaped_size)
    emb = predictor.view_embeddings([IDENTITY])[IDENTITY.name]
    return predicted_ious(predictor.model, emb, points[None], torch.tensor([[1]]), None)[0].tolist()


def test_one_map_models_keep_their_single_answer(tiny_checkpoint, image):
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    plain = seg(image, clicks=[(30, 20, 1)])
    assert "iou_score" not in plain and "masks" not in plain
    multi = seg(image, clicks=[(30, 20, 1)], multimask_output=True)
    assert len(multi["masks"]) == 1 and multi["iou_scores"] == [None]
    assert np.array_equal(multi["probabilities"], plain["probabilities"])


@pytest.mark.parametrize("bad", ["yes", 1, None.__class__])
def test_multimask_output_must_be_a_bool(multimask_checkpoint, image, bad):
    seg = pipeline("interactive-segmentation", model=str(multimask_checkpoint))
    with pytest.raises(ValueError, match="multimask_output"):
        seg(image, clicks=[(30, 20, 1)], multimask_output=bad)
    with pytest.raises(ValueError, match="multimask_output"):
        pipeline("interactive-segmentation", model=str(multimask_checkpoint), multimask_output=bad)


def test_cli_writes_the_alternatives(multimask_checkpoint, image, tmp_path, capsys):
    from PIL import Image

    from hf_iis.cli import main

    Image.fromarray(image).save(tmp_path / "photo.png")
    out = tmp_path / "m.png"
    assert main(["segment", str(tmp_path / "photo.png"), "--click", "30,20", "--model", str(multimask_checkpoint),
                 "--out", str(out), "--multimask"]) == 0
    assert out.is_file() and (tmp_path / "m_2.png").is_file() and (tmp_path / "m_3.png").is_file()
    text = capsys.readouterr().out
    assert "predicted IoU" in text and "alternative 3:" in text


def test_cli_forces_an_answer_map_and_refuses_one_the_model_lacks(multimask_checkpoint, image, tmp_path, capsys):
    """--map-index picks the answer (the fixture's head ranks map 2 first, so the default prints map 2); a map the
    model does not have is one error line, with no mask written."""
    from PIL import Image

    from hf_iis.cli import main

    Image.fromarray(image).save(tmp_path / "photo.png")
    args = ["segment", str(tmp_path / "photo.png"), "--click", "30,20", "--model", str(multimask_checkpoint)]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    assert "map 2," in capsys.readouterr().out.splitlines()[-1]
    assert main([*args, "--out", str(tmp_path / "b.png"), "--map-index", "0"]) == 0
    assert "map 0," in capsys.readouterr().out.splitlines()[-1]
    assert main([*args, "--out", str(tmp_path / "c.png"), "--map-index", "3"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("Loading weights")]
    assert len(err) == 1 and "map_index" in err[0] and not (tmp_path / "c.png").exists()
