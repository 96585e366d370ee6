"""The IoU head retrained alone under a choice rule: the expected-IoU targets by hand, and the fit."""

from __future__ import annotations

import pytest
import torch

from hf_iis.models.signed_click.multimask import MaskIoUHead
from hf_iis.training.iou_head_training import ChoiceExamples, choice_targets, fit_iou_head, fold_standardization


def _examples() -> ChoiceExamples:
    """Two clicks, three masks, two maps. Click 0 (positive) lies in masks 0 (area 10) and 1 (area 40), not in mask
    2; click 1 (negative) lies outside masks 0 and 2 (100 − 10 and 100 − 50 valid pixels outside them)."""
    ious = torch.tensor([[[0.9, 0.2], [0.3, 0.8], [0.0, 0.1]],
                         [[0.5, 0.1], [0.4, 0.4], [0.2, 0.6]]])
    return ChoiceExamples(inputs=torch.zeros(2, 4 + 4), ious=ious,
                          holds=torch.tensor([[True, True, False], [True, False, True]]),
                          areas=torch.tensor([[10, 40, 5], [10, 40, 50]]),
                          outside=torch.tensor([[90, 60, 95], [90, 60, 50]]), sign=torch.tensor([1, -1]))


def test_targets_by_hand():
    ex = _examples()
    # uniform: P(m | x) ∝ 1/|m| = (1/10, 1/40) → (0.8, 0.2)
    uniform = torch.tensor([0.8 * 0.9 + 0.2 * 0.3, 0.8 * 0.2 + 0.2 * 0.8])
    assert torch.allclose(choice_targets(ex, "uniform")[0], uniform)
    assert torch.allclose(choice_targets(ex, "area")[0], torch.tensor([0.6, 0.5]))
    assert torch.allclose(choice_targets(ex, "largest")[0], torch.tensor([0.3, 0.8]))
    # the negative click: every rule uses P(m | x̄) ∝ 1/|outside m| = (1/90, 1/50) → (5/14, 9/14)
    expected = torch.tensor([5 / 14 * 0.5 + 9 / 14 * 0.2, 5 / 14 * 0.1 + 9 / 14 * 0.6])
    for rule in ("uniform", "area", "largest"):
        assert torch.allclose(choice_targets(ex, rule)[1], expected)


def test_a_click_in_no_mask_has_no_target_and_bad_rules_are_refused():
    ex = _examples()
    ex.holds[0] = False
    assert torch.isnan(choice_targets(ex, "area")[0]).all()
    with pytest.raises(ValueError, match="rule must be one of"):
        choice_targets(ex, "biggest")


def test_the_fitted_head_ranks_as_the_rule_says():
    torch.manual_seed(0)
    n = 256
    # the input says which of two maps the largest mask matches: feature 0 = +1 → map 0, −1 → map 1
    side = torch.randint(0, 2, (n,))
    inputs = torch.zeros(n, 4 + 4)
    inputs[:, 0] = 1.0 - 2.0 * side.float()
    ious = torch.zeros(n, 2, 2)
    ious[torch.arange(n), 1, side] = 0.9  # mask 1 (the large one) is matched by map `side`
    ious[torch.arange(n), 0, 1 - side] = 0.9  # mask 0 (the small one) by the other map
    ex = ChoiceExamples(inputs=inputs, ious=ious, holds=torch.ones(n, 2, dtype=torch.bool),
                        areas=torch.tensor([[10, 100]]).expand(n, 2).clone(), outside=torch.full((n, 2), 50),
                        sign=torch.ones(n, dtype=torch.long))
    head = MaskIoUHead(4, 2)
    result = fit_iou_head(head, ex, "largest", epochs=40)
    assert result["top_agreement"] == 1.0 and result["held_out_agreement"] == 1.0
    assert result["examples"] + result["held_out"] == n
    with torch.no_grad():
        assert torch.equal(head.mlp(inputs).argmax(1), side)


def test_mask_pooled_inputs_by_hand():
    head = MaskIoUHead(2, 2, inputs="mask_pooled")
    features = torch.zeros(1, 2, 2, 2)
    features[0, 0] = torch.tensor([[1.0, 3.0], [5.0, 7.0]])  # channel 0 differs per stride-8 cell
    logits = torch.full((1, 2, 16, 16), -20.0)
    logits[0, 0, :8, :8] = 20.0  # map 0: the top-left cell
    logits[0, 1, :8, :] = 20.0  # map 1: the top row of cells
    x = head.inputs(features, logits)
    assert x.shape == (1, 2 + 2 * 2 + 2 * 2 + 1)
    inside = x[0, 6:10].view(2, 2)  # per map: channel 0 and 1 averaged inside the map
    assert torch.allclose(inside[0], torch.tensor([1.0, 0.0]), atol=1e-4)
    assert torch.allclose(inside[1], torch.tensor([2.0, 0.0]), atol=1e-4)
    assert torch.isclose(x[0, -1], torch.tensor(0.5))  # IoU of the two thresholded maps: 64 / 128
    with pytest.raises(ValueError, match="iou_head_inputs must be one of"):
        MaskIoUHead(2, 2, inputs="pixels")


def test_with_head_inputs_keeps_every_other_weight_and_decodes():
    from hf_iis import SignedClickConfig, SignedClickModel
    from hf_iis.training.iou_head_training import with_head_inputs

    torch.manual_seed(0)
    model = SignedClickModel(SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False,
                                                           num_mask_outputs=3)).eval()
    new = with_head_inputs(model, "mask_pooled")
    assert new.config.iou_head_inputs == "mask_pooled"
    old, fresh = model.state_dict(), new.state_dict()
    assert all(torch.equal(old[k], fresh[k]) for k in old if not k.startswith("decoder.iou_head."))
    with torch.no_grad():
        embeddings = new.encode_image(torch.rand(1, 3, 64, 64))
        maps, iou = new.decode_masks(embeddings, torch.tensor([[[20.0, 30.0]]]), torch.tensor([[1]]))
    assert maps.shape == (1, 3, 64, 64) and iou.shape == (1, 3)


def test_a_new_head_starts_unsaturated():
    from hf_iis import SignedClickConfig, SignedClickModel
    from hf_iis.training.iou_head_training import with_head_inputs

    torch.manual_seed(0)
    model = SignedClickModel(SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False,
                                                           num_mask_outputs=3))
    head = with_head_inputs(model, "mask_pooled").decoder.iou_head
    with torch.no_grad():
        q = torch.sigmoid(head.mlp(torch.randn(64, head.mlp[0].in_features)))
    assert 0.05 < float(q.min()) and float(q.max()) < 0.95


def test_standardizing_is_folded_into_the_first_layer():
    """The head trains on z = (x − μ) / σ and keeps reading raw x: W' = W / σ, b' = b − W' μ. A feature on a scale
    10⁴ times the other's still decides the ranking, and the folded head equals the standardized one."""
    torch.manual_seed(0)
    n = 200
    side = torch.randint(0, 2, (n,))
    inputs = torch.zeros(n, 4 + 4)
    inputs[:, 1] = 5000.0 + 10.0 * (1.0 - 2.0 * side.float())  # the deciding feature, far from 0 and spread ±10
    inputs[:, 2] = torch.randn(n) * 1e-3
    ious = torch.zeros(n, 2, 2)
    ious[torch.arange(n), 1, side] = 0.9
    ious[torch.arange(n), 0, 1 - side] = 0.9
    ex = ChoiceExamples(inputs=inputs, ious=ious, holds=torch.ones(n, 2, dtype=torch.bool),
                        areas=torch.tensor([[10, 100]]).expand(n, 2).clone(), outside=torch.full((n, 2), 50),
                        sign=torch.ones(n, dtype=torch.long))
    head = MaskIoUHead(4, 2)
    result = fit_iou_head(head, ex, "largest", epochs=40, standardize=True)
    assert result["held_out_agreement"] == 1.0
    assert result["held_out_chosen"] == pytest.approx(0.9) and result["held_out_oracle"] == pytest.approx(0.9)
    # the fold by hand on a one-feature layer: W = [2], b = [1], μ = 3, σ = 4 → W' = 0.5, b' = 1 − 1.5 = −0.5
    layer = torch.nn.Linear(1, 1)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(1.0)
        x = torch.tensor([[7.0]])
        standardized = layer((x - 3.0) / 4.0)
        fold_standardization(layer, torch.tensor([3.0]), torch.tensor([4.0]))
        assert float(layer.weight) == 0.5 and float(layer.bias) == -0.5
        assert torch.allclose(layer(x), standardized) and float(standardized) == 3.0
