"""The saliency click prior in the output path: the model can fall back on what it already knows.

With P the click prior (1 on the salient component under the positive clicks, minus the negative clicks'
components; `saliency_click_prior.py`) upsampled to the output size, and d_k the decoder's k-th logit map,

    l_k(y) = a_k · d_k(y) + g_k · (2·P(y) − 1)     for a first click (a click set of one click)
    l_k(y) = d_k(y)                                 for corrective click sets (two clicks or more)

with learned scalars a_k (decoder scale) and g_k (prior gain). The prior is the no-learning *one-click* answer, so it
enters the output for the first click only: a corrective click refines the previous mask through the decoder (which
still sees the prior as an input channel); otherwise a negative click inside the component would empty it, since the
prior rule drops every component a negative click hits. `OutputPrior.init_component(k)` sets a_k = 0 and
g_k = GAIN, so map k *is* the click-component mask before training: σ(±GAIN) = 0.98 / 0.02, and the mask
(probability ≥ 0.5) equals P's support exactly. `init_decoder(k)` sets a_k = 1, g_k = 0 (the decoder alone, as
before); `init_blend(k)` sets a_k = 1, g_k = GAIN / 2. Training moves a_k and g_k from there: the decoder's share
grows only where it beats the component.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAIN = 4.0


class OutputPrior(nn.Module):
    """l_k = a_k · d_k + g_k · (2·P − 1) for S maps; `scale` holds a_k and `gain` g_k, shape (S,)."""

    def __init__(self, num_masks: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_masks))
        self.gain = nn.Parameter(torch.zeros(num_masks))

    def init_component(self, k: int, gain: float = GAIN) -> None:
        with torch.no_grad():
            self.scale[k], self.gain[k] = 0.0, gain

    def init_decoder(self, k: int) -> None:
        with torch.no_grad():
            self.scale[k], self.gain[k] = 1.0, 0.0

    def init_blend(self, k: int, gain: float = GAIN / 2) -> None:
        with torch.no_grad():
            self.scale[k], self.gain[k] = 1.0, gain

    def forward(self, decoder_logits: torch.Tensor, prior: torch.Tensor,
                first_click: torch.Tensor | None = None) -> torch.Tensor:
        """`decoder_logits` (N, S, H, W), `prior` (N, 1, h, w) in [0, 1], `first_click` (N,) bool (default: all
        True) → (N, S, H, W)."""
        if prior.shape[-2:] != decoder_logits.shape[-2:]:
            prior = F.interpolate(prior, size=decoder_logits.shape[-2:], mode="bilinear", align_corners=False)
        signed = 2.0 * prior - 1.0
        with_prior = self.scale[None, :, None, None] * decoder_logits + self.gain[None, :, None, None] * signed
        if first_click is None:
            return with_prior
        return torch.where(first_click[:, None, None, None], with_prior, decoder_logits)
