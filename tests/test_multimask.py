"""Several answers per click (the seed's l_1..l_S) and the click prior in the output path: the formulas on cases
small enough to check by hand, the untrained model equal to the click-component mask, and one-map models unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_iis import SignedClickConfig, SignedClickModel
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from hf_iis.models.signed_click.multimask import mask_iou, min_over_maps_loss, select_best
from hf_iis.models.signed_click.output_prior import GAIN, OutputPrior
from tests.conftest import tiny_saliency_model


def test_min_over_maps_loss_takes_the_best_fitting_map():
    best, index = min_over_maps_loss(torch.tensor([[1.0, 2.0, 0.5], [0.25, 0.25, 0.75]]))
    assert best.tolist() == [0.5, 0.25] and index.tolist() == [2, 0]  # ties: the first


def test_mask_iou_by_hand():
    logits = torch.tensor([[[[1.0, 1.0], [-1.0, -1.0]], [[1.0, -1.0], [-1.0, -1.0]]]])  # (1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert mask_iou(logits, target).tolist() == [[0.5, 1.0]]
    empty = torch.full((1, 1, 2, 2), -1.0)
    assert mask_iou(empty, torch.zeros(1, 1, 2, 2)).tolist() == [[1.0]]  # nothing to find, nothing found


def test_select_best_follows_the_predicted_iou():
    logits = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)
    chosen = select_best(logits, torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 0.0]]))
    assert chosen.flatten().tolist() == [1.0, 3.0]
    assert select_best(logits[:, :1], None).shape == (2, 1, 1, 1)


def test_output_prior_formula():
    prior = OutputPrior(2)
    prior.init_component(0)
    prior.init_blend(1, gain=2.0)
    d = torch.tensor([[[[3.0]], [[3.0]]]])  # (1, 2, 1, 1)
    p = torch.ones(1, 1, 1, 1)
    assert prior(d, p).flatten().tolist() == [GAIN, 3.0 + 2.0]
    assert prior(d, torch.zeros(1, 1, 1, 1)).flatten().tolist() == [-GAIN, 3.0 - 2.0]
    # corrective click sets (two clicks or more) are the decoder's alone
    assert prior(d, p, first_click=torch.tensor([False])).flatten().tolist() == [3.0, 3.0]




def _two_blob_embeddings(model):
    with torch.no_grad():
        embeddings = model.encode_image(torch.randn(1, 3, 64, 64))
    saliency = torch.zeros(1, 1, 64, 64)
    saliency[..., 8:24, 8:30] = 0.9   # blob A
    saliency[..., 40:60, 36:60] = 0.8  # blob B
    embeddings.saliency = saliency
    return embeddings, saliency


def test_grown_model_before_training_is_the_click_component_mask():
    """A positive click on a salient blob: the untrained grown model's answer is that blob, pixel for pixel."""
    model = grow_outputs(tiny_saliency_model(), num_masks=3)
    embeddings, saliency = _two_blob_embeddings(model)
    with torch.no_grad():
        best = model.decode(embeddings, torch.tensor([[[15.0, 12.0]]]), torch.tensor([[1]]))
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[8:24, 8:30] = True
    assert torch.equal(best[0, 0] >= 0, expected)
    with torch.no_grad():  # a click on blob B answers blob B
        other = model.decode(embeddings, torch.tensor([[[50.0, 50.0]]]), torch.tensor([[1]]))
    assert torch.equal(other[0, 0] >= 0, saliency[0, 0] == 0.8)


def test_grown_model_keeps_the_old_answer_as_its_second_map(tiny_checkpoint):
    old = tiny_saliency_model()
    grown = grow_outputs(old, num_masks=3)
    embeddings, _ = _two_blob_embeddings(old)
    points, labels = torch.tensor([[[15.0, 12.0], [50.0, 50.0]]]), torch.tensor([[1, -1]])
    with torch.no_grad():
        before = old.decode(embeddings, points, labels)
        maps, iou_logits = grown.decode_masks(embeddings, points, labels)
    assert maps.shape == (1, 3, 64, 64) and iou_logits.shape == (1, 3)
    assert torch.allclose(maps[:, 1:2], before, atol=1e-5)
    # a corrective click set: every map is the old model's answer (the prior enters the first click only)
    assert torch.allclose(maps, before.expand_as(maps), atol=1e-5)
    with pytest.raises(ValueError, match="one-map model"):
        grow_outputs(grown)


def test_one_map_checkpoints_load_and_answer_as_before(tiny_checkpoint):
    model = SignedClickModel.from_pretrained(tiny_checkpoint).eval()
    assert model.config.num_mask_outputs == 1 and not model.config.prior_in_output
    assert model.decoder.iou_head is None and model.decoder.output_prior is None
    with torch.no_grad():
        embeddings = model.encode_image(torch.randn(1, 3, 64, 64))
        points, labels = torch.tensor([[[20.0, 30.0]]]), torch.tensor([[1]])
        maps, iou_logits = model.decode_masks(embeddings, points, labels)
        out = model(image_embeddings=embeddings, points=points, labels=labels)
    assert iou_logits is None and maps.shape == (1, 1, 64, 64)
    assert torch.equal(out.logits, maps) and out.multimask_logits is None and out.iou_scores is None


def test_multimask_training_loss_reaches_the_iou_head_and_the_prior():
    model = grow_outputs(tiny_saliency_model(), num_masks=3).train()
    target = torch.zeros(1, 1, 64, 64)
    target[..., 8:24, 8:30] = 1
    out = model(pixel_values=torch.randn(1, 3, 64, 64), points=torch.tensor([[[15.0, 12.0]]]),
                labels=torch.tensor([[1]]), target_masks=target)
    assert out.multimask_logits.shape == (1, 3, 64, 64) and out.iou_scores.shape == (1, 3)
    assert bool(((out.iou_scores >= 0) & (out.iou_scores <= 1)).all())
    out.loss.backward()
    assert model.decoder.iou_head.mlp[-1].weight.grad.abs().sum() > 0
    assert model.decoder.output_prior.gain.grad is not None


@pytest.mark.parametrize("bad", [True, 0, 9, 2.0, "3"])
def test_num_mask_outputs_is_checked(bad):
    with pytest.raises(ValueError, match="num_mask_outputs"):
        SignedClickConfig(num_mask_outputs=bad)


def test_prior_in_output_needs_a_saliency_branch():
    with pytest.raises(ValueError, match="prior_in_output needs a saliency_encoder"):
        SignedClickConfig(prior_in_output=True)
    assert np.isclose(torch.sigmoid(torch.tensor(GAIN)).item(), 0.982, atol=1e-3)
