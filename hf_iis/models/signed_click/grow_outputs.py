"""Grow a trained one-map model into S maps with the click prior in the output path, keeping what it knows.

Every weight is copied; the head's last convolution (one output channel) is copied into each of the S channels, so
each map's decoder part d_k starts as the old model's map. The output prior (`output_prior.py`) then makes the maps
three different starting answers:

    map 1: l₁ = g·(2P − 1)            the click-component mask (a₁ = 0): the no-learning baseline, exactly
    map 2: l₂ = d₂                    the old model's answer (g₂ = 0)
    map 3: l₃ = d₃ + (g/2)·(2P − 1)   the two blended
    maps 4..S: as map 3

and the IoU head's last bias prefers map 1 (the component scores higher than the old model on the benchmarks' first
click), so before training `decode` answers a positive click on a salient region with its component. With S = 1 the
single map is map 1.
"""

from __future__ import annotations

import torch

from .configuration_signed_click import SignedClickConfig
from .modeling_signed_click import SignedClickModel


def grow_outputs(model: SignedClickModel, num_masks: int = 3, prior_in_output: bool = True,
                 prior_source: str = "branch") -> SignedClickModel:
    """A new model with `num_masks` maps (and the prior in the output path, its component cut from the saliency
    map `prior_source` names: `SignedClickConfig`) from a one-map `model`."""
    old = model.config
    if getattr(old, "num_mask_outputs", 1) != 1 or getattr(old, "prior_in_output", False):
        raise ValueError("grow_outputs takes a one-map model without the output prior "
                         f"(got num_mask_outputs={old.num_mask_outputs}, prior_in_output={old.prior_in_output})")
    if prior_in_output and old.saliency_encoder is None:
        raise ValueError("prior_in_output needs a model with a saliency branch (config.saliency_encoder)")
    config = SignedClickConfig(**{**old.to_dict(), "num_mask_outputs": num_masks, "prior_in_output": prior_in_output,
                                  "prior_source": prior_source})
    grown = SignedClickModel(config)
    state = model.state_dict()
    own = grown.state_dict()
    head = "decoder.head.5"
    for key, value in state.items():
        if key in (f"{head}.weight", f"{head}.bias"):
            value = value.repeat(num_masks, *([1] * (value.ndim - 1)))
        own[key] = value
    grown.load_state_dict(own, strict=True)
    if grown.decoder.output_prior is not None:
        prior = grown.decoder.output_prior
        prior.init_component(0)
        for k in range(1, num_masks):
            prior.init_decoder(k) if k == 1 else prior.init_blend(k)
    if grown.decoder.iou_head is not None:
        with torch.no_grad():
            last = grown.decoder.iou_head.mlp[-1]
            last.weight.mul_(0.01)
            last.bias.zero_()
            last.bias[0] = 1.0
    return grown.eval()
