"""Where the photo lies in a view's frame, and the view applied to a stretched (square, photo-only) input: what the
stretched saliency frame (`hf_iis.backbones.saliency_frame`) needs to put its outputs where each view's photo is.

The image processor puts the photo's (h, w) at the top-left of the S × S square; a view transposes / flips that
square and rescales it (`tta.View`). The photo's box follows; the stretched photo, a square of the photo alone,
follows the view's D4 part only (a rescale does not change what the photo looks like stretched).
"""

from __future__ import annotations

import torch

from .tta import View


def view_box(view: View, reshaped_size: tuple[int, int], size: int) -> tuple[float, float, float, float]:
    """(y0, x0, y1, x1) of the photo in `view`'s frame, for a photo of `reshaped_size` (h, w) at the top-left of a
    `size` square. The box may reach past a zoomed-in view's frame (`augment` crops such views to the square)."""
    h, w = (float(v) for v in reshaped_size)
    y0, x0, y1, x1 = 0.0, 0.0, h, w
    if view.transpose:
        y0, x0, y1, x1 = x0, y0, x1, y1
    if view.hflip:
        x0, x1 = size - x1, size - x0
    if view.vflip:
        y0, y1 = size - y1, size - y0
    if view.scale != 1.0:
        f = view.output_size(size) / size
        y0, x0, y1, x1 = y0 * f, x0 * f, y1 * f, x1 * f
    return (y0, x0, y1, x1)


def view_stretched(view: View, stretched: torch.Tensor) -> torch.Tensor:
    """The stretched photo (..., s, s) as `view` shows it: its transpose and flips, no rescale."""
    return view.apply_d4(stretched)
