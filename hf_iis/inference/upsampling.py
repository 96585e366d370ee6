"""From the model-input frame to the photo: how a probability map is brought to the original resolution.

The model answers in its input frame (the photo resized to `processor.size`, 320 px on the long side, with stride-2
decoder features), so on a 640 × 480 photo each answer pixel covers 2 × 2 photo pixels and the object's edge is a
ramp a few photo pixels wide that ignores the photo's own edges. Two ways up, `upsample=`:

* `"bilinear"`: `processor.map_to_original`, a bilinear resize (what every release before this one did; the
  student's default).
* `"guided"` (the teacher's default, chosen on the validation split: docs/results_zoom.md): the bilinear map
  refined by a guided filter (He, Sun, Tang, ECCV 2010 / TPAMI 2013) whose guide is the photo itself (RGB in
  [0, 1]): in every window of radius r the output is a linear function of the photo's colours
  fitted to the probabilities, so a probability ramp that straddles a colour edge snaps onto that edge, while in
  flat regions (no colour variance above `eps`) it is a local mean of the probabilities. The filter is kornia's
  maintained `kornia.filters.guided_blur` (OpenCV's `ximgproc.guidedFilter` would need the contrib build, which the
  project does not depend on), in its fast form (He & Sun 2015, `subsample` = floor(photo / answer size)): the
  linear coefficients are fitted at about the answer's resolution and applied at the photo's, so a photo twice the
  input size or more costs a filter at the input size plus one full-size multiply-add, while a photo under twice
  the input size (Berkeley's 481 × 321) is filtered at full size, an RGB box-filter pass several times the decoder's
  cost on a CPU.

Parameters of "guided" (one setting for every photo), chosen on COCO_MVal, which is neither a reported benchmark
nor training data: `python scripts/probe_guided_upsampling.py --limit 40 --radii 1,2,4,8,16 --eps 1e-4,1e-3,1e-2
--threads 1` (default model, 40 instances, center click, 2-core x86_64 CPU, shared) gave mIoU / boundary IoU 70.76 /
50.62 bilinear, and for eps = 1e-4: 70.76 / 50.69 (r = 1), 70.99 / 51.11 (r = 2), 71.55 / 52.10 (r = 4), 72.04 /
53.05 (r = 8), 67.69 / 47.09 (r = 16); eps = 1e-3 and 1e-2 were no better at any r.
* radius r = `GUIDED_RADIUS` = 4 model-input pixels, scaled to photo pixels (8 px on a 640-px photo): inside the
  plateau r = 4..8, half the radius where the filter starts to erase thin parts and corners (r = 16), since away
  from colour edges it is a box mean of the probabilities.
* eps = `GUIDED_EPS` = 1e-4 in squared [0, 1] intensity: a colour edge with a window variance well above 1e-4
  (contrast ≥ ~0.02) is followed, flatter texture is averaged over.

The uncertainty maps stay bilinear: they are spreads, not masks, and have no edge to snap.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["GUIDED_EPS", "GUIDED_RADIUS", "UPSAMPLE_MODES", "check_upsample", "guided_upsample",
           "upsample_to_original"]

UPSAMPLE_MODES = ("bilinear", "guided")
GUIDED_RADIUS = 4.0
"""Guided-filter radius in model-input pixels (the photo-pixel radius is this times the upsampling scale)."""
GUIDED_EPS = 1e-4
"""Guided-filter regulariser, in squared [0, 1] intensity units: colour edges with more local variance are kept."""


def check_upsample(value) -> str:
    """`value` if it names an upsampling mode, else a ValueError naming the accepted ones."""
    if not isinstance(value, str) or value not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {', '.join(map(repr, UPSAMPLE_MODES))}, got {value!r}")
    return value


def _guided_blur():
    try:
        from kornia.filters import guided_blur
    except ImportError as error:  # kornia is an optional dependency: only this mode needs it
        raise ImportError("upsample='guided' needs kornia (pip install kornia); upsample='bilinear' does not") \
            from error
    return guided_blur


def guided_upsample(maps: torch.Tensor, image: np.ndarray, radius: float = GUIDED_RADIUS,
                    eps: float = GUIDED_EPS) -> torch.Tensor:
    """(N, 1, h, w) probabilities covering the whole photo → (N, 1, H, W) float32 in [0, 1] at `image`'s size,
    guided by `image` ((H, W, 3) uint8 RGB); `radius` in units of the input map's pixels."""
    if maps.ndim != 4 or maps.shape[1] != 1:
        raise ValueError(f"maps must be (N, 1, h, w), got shape {tuple(maps.shape)}")
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"image must be an (H, W, 3) array, got {getattr(image, 'shape', type(image))}")
    if not (radius > 0 and eps > 0):
        raise ValueError(f"radius and eps must be positive, got radius={radius!r}, eps={eps!r}")
    height, width = image.shape[:2]
    scale = max(height / maps.shape[-2], width / maps.shape[-1])
    up = F.interpolate(maps.float(), size=(height, width), mode="bilinear", align_corners=False)
    # a copy: the photo may be a read-only array (a decoded file), which torch.from_numpy warns about
    guide = torch.from_numpy(np.array(image, dtype=np.uint8)).to(up.device).permute(2, 0, 1)[None].float() / 255.0
    subsample = max(1, math.floor(scale))  # the fast form: coefficients at about the input map's resolution
    sub_radius = max(1, round(radius * max(scale, 1.0) / subsample))  # in subsampled pixels, at least 1
    kernel = 2 * sub_radius * subsample + 1  # kornia's window there is (kernel - 1) // subsample + 1 = 2 r + 1
    # separable box means: the same result to ~1e-6, a fifth less time (the box means are most of the cost)
    out = _guided_blur()(guide.expand(up.shape[0], -1, -1, -1), up, kernel, float(eps), subsample=subsample,
                         separable=True)
    return out.clamp(0, 1)


def upsample_to_original(processor, maps: torch.Tensor, original_size, reshaped_size, mode: str = "bilinear",
                         image: np.ndarray | None = None) -> torch.Tensor:
    """(N, 1, S, S) model-input maps (padding included) → (N, 1, H, W) float32 at the photo's size, by `mode`;
    "guided" needs the photo `image` ((H, W, 3) uint8, as `set_image` received it)."""
    if check_upsample(mode) == "bilinear":
        return processor.map_to_original(maps, original_size, reshaped_size)
    if image is None or tuple(image.shape[:2]) != tuple(int(v) for v in original_size):
        raise ValueError("upsample='guided' needs the photo the maps belong to, of size original_size")
    h, w = (int(v) for v in reshaped_size)
    return guided_upsample(maps[..., :h, :w], image)
