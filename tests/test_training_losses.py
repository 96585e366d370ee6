"""Each loss term: (near) zero on a perfect prediction, hand-computed values on tiny cases, ignore pixels excluded."""

from __future__ import annotations

import math

import pytest
import torch

from hf_iis.models.signed_click.losses import (
    LOSSES,
    bce_loss,
    combined_loss,
    dice_loss,
    lovasz_hinge_loss,
    soft_iou_loss,
)

TARGET = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_perfect_prediction_is_minimal(name):
    perfect = (TARGET * 2 - 1) * 50.0  # confident and right
    wrong = -perfect
    loss_perfect = LOSSES[name](perfect, TARGET)
    assert loss_perfect.shape == (1,)
    assert float(loss_perfect) < 1e-6 or (name in ("dice", "soft_iou") and float(loss_perfect) < 1e-3)
    assert float(LOSSES[name](wrong, TARGET)) > float(loss_perfect) + 0.3


def test_hand_computed_values():
    logits = torch.tensor([[[[0.0, 0.0], [math.log(3.0), -math.log(3.0)]]]])  # p = .5, .5, .75, .25
    # BCE: mean of -log .5, -log .5, -log .75, -log .75
    expected_bce = (2 * math.log(2) - 2 * math.log(0.75)) / 4
    assert float(bce_loss(logits, TARGET)) == pytest.approx(expected_bce, rel=1e-5)
    # sum p·g = .5 + .75 = 1.25; sum p = 2; sum g = 2; eps = 1
    assert float(dice_loss(logits, TARGET)) == pytest.approx(1 - (2 * 1.25 + 1) / (2 + 2 + 1), rel=1e-5)
    assert float(soft_iou_loss(logits, TARGET)) == pytest.approx(1 - (1.25 + 1) / (2 + 2 - 1.25 + 1), rel=1e-5)
    # Lovász hinge: errors 1 - s·g± = [1, 1, 1 - ln3, 1 - ln3]; the two errors of 1 (one positive, one negative)
    # sort first; order among ties follows torch.sort, so compute the reference by the definition.
    errors = torch.tensor([1.0, 1.0, 1 - math.log(3.0), 1 - math.log(3.0)])
    gts = torch.tensor([1.0, 0.0, 1.0, 0.0])
    order = torch.sort(errors, descending=True).indices
    e, g = errors[order], gts[order]
    p = g.sum()
    jac = 1 - (p - g.cumsum(0)) / (p + (1 - g).cumsum(0))
    grad = torch.cat([jac[:1], jac[1:] - jac[:-1]])
    assert float(lovasz_hinge_loss(logits, TARGET)) == pytest.approx(float((e.clamp_min(0) * grad).sum()), rel=1e-5)


def test_ignore_pixels_count_for_nothing():
    logits = torch.tensor([[[[5.0, -5.0], [5.0, 5.0]]]])  # the last pixel is wrong
    valid = torch.tensor([[[[True, True], [True, False]]]])
    for fn in LOSSES.values():
        assert float(fn(logits, TARGET, valid)) < 0.01
    total = combined_loss(logits, TARGET, valid, {"bce": 1.0, "soft_iou": 1.0, "dice": 1.0, "lovasz": 1.0})
    assert total.shape == (1,) and float(total) < 0.05


def test_combined_loss_rejects_unknown_terms():
    with pytest.raises(KeyError):
        combined_loss(torch.zeros(1, 1, 2, 2), TARGET, None, {"focal": 1.0})
