"""U²-Net(-p)'s saliency map computed as its published exports compute it, for the output path's click component.

The saliency branch (`saliency.py`) runs U²-Net-p on the padded model input resized to `saliency_input_size` and keeps
its stride-2 side output: good enough as features, but the click component cut from it loses to the no-learning
baseline (`hf_iis.evaluation.saliency_peers`), which runs the net the way it was trained. Measured on Berkeley's
center clicks (docs/results_multimask.md, § 6), the padding costs most of that gap and the smaller input the rest.
So this pass is the baseline's:

    x  = the original photo resized to 320 × 320 (PIL Lanczos, aspect not kept), scaled by its maximum (as rembg
         does), ImageNet statistics                                                   `stretched_input`
    d0 = σ(fused output) of the full U²-Net(-p), min-max normalised per image         `stretched_saliency`

It needs the photo itself, not the padded model input: the net is sensitive to its input's sharpness (the same
photo resized to the padded frame first and stretched from there loses whole objects on some Berkeley photos), so
the predictor computes it once per image (`hf_iis.inference.view_cache`) and hands it to `encode_image`.
"""

from __future__ import annotations

import numpy as np
import torch

from .u2net import U2NET_MEAN, U2NET_STD, U2Net

STRETCHED_SIZE = 320
"""Side of the square the published U²-Net(-p) weights were trained and exported at."""


def stretched_input(image: np.ndarray, size: int = STRETCHED_SIZE) -> np.ndarray:
    """``(1, 3, size, size)`` float32 net input from an ``(H, W, 3)`` uint8 RGB photo (see the module docstring)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    small = np.asarray(Image.fromarray(image.astype(np.uint8)).resize((size, size), Image.LANCZOS), dtype=np.float32)
    small = small / max(float(small.max()), 1e-6)
    small = (small - np.array(U2NET_MEAN, np.float32)) / np.array(U2NET_STD, np.float32)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None])


@torch.no_grad()
def stretched_saliency(u2net: U2Net, x: torch.Tensor) -> torch.Tensor:
    """(B, 1, s, s) d0 in [0, 1], min-max normalised per image, of the net inputs `x` (B, 3, s, s)."""
    d0 = u2net(x).saliency[:, :1]
    low = d0.amin(dim=(2, 3), keepdim=True)
    return (d0 - low) / (d0.amax(dim=(2, 3), keepdim=True) - low).clamp_min(1e-6)
