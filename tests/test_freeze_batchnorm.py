"""`model.freeze_batchnorm_stats` (a continuation of a trained model keeps its BatchNorm running statistics): a
training-mode forward pass leaves every running mean and variance as it was while the weights still take gradients;
without the option the same pass moves them."""

from __future__ import annotations

import torch
from torch import nn

from tests.conftest import tiny_saliency_model


def _stats(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}


def _train_pass(model) -> None:
    model.train()
    pixels = torch.randn(2, 3, 64, 64)
    out = model(pixel_values=pixels, points=torch.tensor([[[20.0, 30.0]], [[40.0, 10.0]]]),
                labels=torch.tensor([[1], [-1]]))
    out.logits.sum().backward()


def test_frozen_statistics_stay_while_weights_train():
    model = tiny_saliency_model()
    model.freeze_batchnorm_statistics()
    before = _stats(model)
    assert before  # the tiny model has BatchNorm layers
    _train_pass(model)
    after = _stats(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms) and model.training
    assert any(p.grad is not None for p in model.decoder.parameters())


def test_without_the_option_a_training_pass_moves_them():
    model = tiny_saliency_model()
    before = _stats(model)
    _train_pass(model)
    after = _stats(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_the_training_config_reaches_the_model(tmp_path):
    from hf_iis.training.config import load_config
    from hf_iis.training.factory import build_model

    cfg = load_config(None, ["model.preset=tiny", "model.image_size=64", "model.pretrained_backbone=false",
                             "model.freeze_batchnorm_stats=true"])
    model = build_model(cfg)
    model.train()
    assert not any(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
