"""Zoom-in crop views on the original photo: the geometry (which crop, clicks into it, its map back out).

The model sees the photo at `processor.size` pixels on its long side, so a small object or a thin part gets few model
pixels. A crop of the *original-resolution* photo around the current estimate, resized to the model input, shows the
same object at a higher resolution; a crop that contains the object preserves objectness, so its prediction is
another estimate of P(y ∈ m | clicks) (the same argument as the TTA views, `tta.py`). RITM's evaluation ("ZoomIn")
and FocalClick's focus crop do the same.

Geometry, in original pixels (x = column, y = row, pixel centres at integers; a box is half-open [x0, x1) × [y0, y1)):

1. Tight box: the pixels of the current estimate (probability ≥ 0.5) and the pixels of the positive clicks (a click
   at (x, y) is pixel (round(x), round(y))). Negative clicks do not widen it: a far "not this" click would turn the
   crop back into the photo.
2. Margin: each side of width w (height h) moves out by `margin`·w (`margin`·h): the box becomes (1 + 2·margin)
   times as wide and tall, around the same centre (default `DEFAULT_MARGIN` = 0.4, the issue's crude experiment;
   accepted range [0, `MAX_MARGIN`]).
3. Minimum side: a side shorter than `min_size` grows to `min_size` around its centre (the default, the model's input
   size, keeps the crop from being magnified beyond 1:1 — upsampling the photo adds no detail — and keeps context
   around a tiny object). A side never exceeds the photo's.
4. Clip: a box that reaches past an edge is shifted back inside (keeping its size), then clipped to the photo.

Clicks map into the crop by subtracting (x0, y0); a click whose pixel lies outside the crop (only a negative one
can) is left out of the crop's click set: it says nothing about pixels the crop covers that the positive clicks and
the crop's content do not, and the pixels around it keep the full-image estimate. The previous mask is cropped the
same way. The crop's probabilities (at the crop's original resolution) replace the full-image estimate inside the
crop; outside it, the full-image estimate stays (`paste`).

The gain of a crop is max(H, W) / max(h, w): the factor by which the model sees it larger than the whole photo (the
processor resizes the long side to its input size). Below `MIN_GAIN` a crop adds too little to pay for an encoding.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..utils.image_io import is_bool

DEFAULT_MARGIN = 0.4
MAX_MARGIN = 2.0
MIN_CROP_SIDE = 16
"""The smallest `min_size` accepted: below it the crop is a few pixels of the photo stretched over the model input."""
MIN_GAIN = 1.1
"""A crop whose long side is more than 1/1.1 of the photo's shows the model under 10 % more detail than the whole
photo: zoom skips it (the full-image estimate stands) rather than pay for an encoding."""
BOX_REUSE_IOU = 0.9
"""Cache tolerance: a later call keeps the previous crop (and so its cached encoding) while the new crop box
overlaps it with IoU ≥ 0.9 and the new tight box still lies inside it; otherwise the new box is encoded."""
ZOOM_MODES = (False, True, "auto")


@dataclass(frozen=True)
class CropBox:
    """A half-open box [x0, x1) × [y0, y1) in original pixels."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def contains(self, other: CropBox) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1

    def iou(self, other: CropBox) -> float:
        w = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        h = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = w * h
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union else 0.0

    def gain(self, width: int, height: int) -> float:
        """max(H, W) / max(h, w): how much larger the model sees the crop than the whole photo."""
        return max(width, height) / max(self.width, self.height)

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The box's pixels of an (H, W, ...) array (a contiguous copy)."""
        return np.ascontiguousarray(array[self.y0 : self.y1, self.x0 : self.x1])


def check_zoom_in(value) -> bool | str:
    """`zoom_in` as False, True or "auto"; anything else is a ValueError naming the three."""
    if is_bool(value):
        return bool(value)
    if isinstance(value, str) and value == "auto":
        return "auto"
    raise ValueError(f"zoom_in must be False, True or 'auto', got {value!r}")


def check_margin(value) -> float:
    """The relative margin, a number in [0, MAX_MARGIN]."""
    if is_bool(value) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= MAX_MARGIN:
        raise ValueError(f"zoom_margin must be a number in [0, {MAX_MARGIN:g}] (a fraction of the box's side on each "
                         f"side), got {value!r}")
    return float(value)


def check_min_size(value) -> int | None:
    """The crop's minimum side in pixels: None (the model's input size) or a whole number ≥ MIN_CROP_SIDE."""
    if value is None:
        return None
    if is_bool(value) or not isinstance(value, numbers.Real) or float(value) != int(value) or value < MIN_CROP_SIDE:
        raise ValueError(f"zoom_min_size must be None (the model's input size) or a whole number of pixels >= "
                         f"{MIN_CROP_SIDE}, got {value!r}")
    return int(value)


def _pixel(coordinate: float, size: int) -> int:
    return int(min(max(np.floor(coordinate + 0.5), 0), size - 1))


def tight_box(probabilities: np.ndarray, clicks, threshold: float = 0.5) -> CropBox | None:
    """Box of the estimate (probability ≥ threshold) and the positive clicks; None when both are empty."""
    height, width = probabilities.shape
    rows, cols = np.nonzero(probabilities >= threshold)
    xs = [_pixel(c[0], width) for c in clicks if c[2] > 0] + ([int(cols.min()), int(cols.max())] if cols.size else [])
    ys = [_pixel(c[1], height) for c in clicks if c[2] > 0] + ([int(rows.min()), int(rows.max())] if rows.size else [])
    if not xs:
        return None
    return CropBox(min(xs), min(ys), max(xs) + 1, max(ys) + 1)


def _expand_side(start: int, stop: int, margin: float, min_size: int, size: int) -> tuple[int, int]:
    side = stop - start
    centre = (start + stop) / 2.0
    new = min(size, max(int(np.ceil(side * (1.0 + 2.0 * margin))), min_size, 1))
    low = int(np.floor(centre - new / 2.0))
    low = min(max(low, 0), size - new)  # shift back inside, keeping the side
    return low, low + new


def crop_box(tight: CropBox, margin: float, min_size: int, width: int, height: int) -> CropBox:
    """`tight` expanded by `margin` on each side, grown to at least `min_size`, kept inside the photo."""
    x0, x1 = _expand_side(tight.x0, tight.x1, margin, min_size, width)
    y0, y1 = _expand_side(tight.y0, tight.y1, margin, min_size, height)
    return CropBox(x0, y0, x1, y1)


def crop_clicks(clicks, box: CropBox, width: int, height: int) -> list[tuple[float, float, int]]:
    """The clicks whose pixel lies in `box`, in crop coordinates; the others are left out (module docstring)."""
    out = []
    for x, y, sign in clicks:
        px, py = _pixel(x, width), _pixel(y, height)
        if box.x0 <= px < box.x1 and box.y0 <= py < box.y1:
            # clamped so that a click at the photo's edge pixel stays a valid click of the crop
            out.append((min(max(x - box.x0, -0.5), box.width - 0.5 - 1e-6),
                        min(max(y - box.y0, -0.5), box.height - 0.5 - 1e-6), int(sign)))
    return out


def paste(full: np.ndarray, crop: np.ndarray, box: CropBox) -> np.ndarray:
    """A copy of `full` (H, W) whose `box` holds `crop` (h, w): the zoomed estimate inside, the full one outside."""
    if crop.shape != (box.height, box.width):
        raise ValueError(f"crop map has shape {crop.shape}; the box is {box.height}x{box.width}")
    out = np.array(full, copy=True)
    out[box.y0 : box.y1, box.x0 : box.x1] = crop
    return out


def keep_previous_box(previous: CropBox | None, new: CropBox, tight: CropBox) -> bool:
    """Whether the previous crop still serves (`BOX_REUSE_IOU`): its cached encoding is then reused."""
    return previous is not None and previous.contains(tight) and previous.iou(new) >= BOX_REUSE_IOU
