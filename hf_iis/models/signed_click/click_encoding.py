"""Dense encoding of signed clicks: where a click enters the model.

A click set is `points` (N, P, 2) float, each point (x, y) = (column, row) in model-input pixels, and `labels`
(N, P) int with +1 (positive: "this pixel is in the object"), −1 (negative) or 0 (padding, ignored). It becomes
four maps on a grid of stride `stride` (cell centres at input coordinate stride·j + (stride−1)/2):

    near_±(u) = max over clicks c of sign ± of exp(−|u − c|² / (2·r²))         r = click radius
    far_±(u)  = max over clicks c of sign ± of exp(−|u − c|² / (2·σ²))         σ = click_sigma_far · image_size

The near maps say exactly where the clicks are; the far maps tell distant pixels how far they are from one.
"""

from __future__ import annotations

import torch

NUM_CLICK_CHANNELS = 4


def grid_centres(size: int, stride: int, device: torch.device) -> torch.Tensor:
    """Input-pixel coordinate of each cell centre of a stride-`stride` grid over `size` pixels, shape (size/stride,)."""
    return torch.arange(size // stride, device=device, dtype=torch.float32) * stride + (stride - 1) / 2.0


def encode_clicks(
    points: torch.Tensor,
    labels: torch.Tensor,
    height: int,
    width: int,
    stride: int,
    radius: float,
    sigma_far: float,
) -> torch.Tensor:
    """Click maps (N, 4, height/stride, width/stride): near+, near−, far+, far− (see module docstring)."""
    n, num_points = labels.shape
    if num_points == 0:
        return torch.zeros(n, NUM_CLICK_CHANNELS, height // stride, width // stride, device=points.device)
    ys = grid_centres(height, stride, points.device)
    xs = grid_centres(width, stride, points.device)
    px = points[..., 0].float()[..., None, None]  # (N, P, 1, 1)
    py = points[..., 1].float()[..., None, None]
    dist2 = (ys[None, None, :, None] - py) ** 2 + (xs[None, None, None, :] - px) ** 2  # (N, P, h, w)
    radius = max(radius, stride / 2.0)  # a click must light at least its own cell
    maps = []
    for scale in (radius, sigma_far):
        gauss = torch.exp(-dist2 / (2.0 * scale * scale))
        for sign in (1, -1):
            mask = (labels == sign)[..., None, None]
            maps.append(torch.where(mask, gauss, torch.zeros_like(gauss)).amax(dim=1))
    return torch.stack(maps, dim=1)
