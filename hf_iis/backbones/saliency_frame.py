"""The stretched saliency frame (`config.saliency_frame="stretched"`): the branch sees the photo alone, stretched to a
square, and its outputs go back into the padded model frame.

U²-Net(-p) was trained on photos stretched to 320 × 320 (aspect not kept). In the padded model input the photo fills
only part of the square and the rest is black; measured on Berkeley's center clicks (docs/results_multimask.md, § 6)
that padding costs 3–4 points of the click component. So the branch runs on

    x = the view's photo resized to s × s (`stretched_input`: PIL Lanczos, scaled by its maximum, ImageNet statistics)

and each output t (s' × s', any stride) is resampled into the frame by the inverse of the stretch: with the photo's box
(y0, x0, y1, x1) in model-input pixels (where the image processor and the view put it), the output at stride k is

    out[:, round(y0/k):round(y1/k), round(x0/k):round(x1/k)] = bilinear_resize(t, to that box)
    out elsewhere = `fill` (neutral: zeros for features, each map's own minimum for saliency logits)

Boxes may reach past the frame (a zoomed-in view crops the photo): the part outside is dropped.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .stretched_saliency import stretched_input


def stretched_photo(image: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    """(3, size, size) U²-Net input of one photo: an (H, W, 3) uint8 array, or a (3, H, W) float tensor in [0, 1]
    (the training augmentation's photo before padding; rounded to uint8 so that both go through the same resize)."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) float image in [0, 1], got shape {tuple(image.shape)}")
        image = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return torch.from_numpy(stretched_input(image, size))[0]


def place_in_boxes(t: torch.Tensor, boxes: torch.Tensor, frame_size: tuple[int, int], out_size: tuple[int, int],
                   fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """(B, C, *out_size): each `t[b]` (C, h, w) resized into `boxes[b]` = (y0, x0, y1, x1) (model-input pixels of a
    `frame_size` frame) scaled to `out_size`, `fill` (a number or (B, C) values) elsewhere."""
    b, c = t.shape[:2]
    (height, width), (oh, ow) = frame_size, out_size
    fy, fx = oh / height, ow / width
    if isinstance(fill, torch.Tensor):
        out = fill.to(t.dtype)[:, :, None, None].expand(b, c, oh, ow).clone()
    else:
        out = t.new_full((b, c, oh, ow), float(fill))
    for i in range(b):
        y0, x0, y1, x1 = (float(v) for v in boxes[i])
        ty0, tx0, ty1, tx1 = round(y0 * fy), round(x0 * fx), round(y1 * fy), round(x1 * fx)
        if ty1 <= ty0 or tx1 <= tx0:
            raise ValueError(f"saliency box {(y0, x0, y1, x1)} is empty at output size {out_size}")
        resized = F.interpolate(t[i:i + 1], size=(ty1 - ty0, tx1 - tx0), mode="bilinear", align_corners=False)
        cy0, cx0, cy1, cx1 = max(ty0, 0), max(tx0, 0), min(ty1, oh), min(tx1, ow)
        if cy1 > cy0 and cx1 > cx0:
            out[i, :, cy0:cy1, cx0:cx1] = resized[0, :, cy0 - ty0:cy1 - ty0, cx0 - tx0:cx1 - tx0]
    return out
