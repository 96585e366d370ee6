"""The click-conditioned saliency prior: which salient regions the clicks point at.

Given the saliency map S (probabilities, one per image) and a click set, with C(p) the connected component
(8-connectivity) of the salient pixels {S ≥ 0.5} that holds pixel p (empty when p is not salient):

    prior = ⋃_{positive clicks p} C(p)  \\  ⋃_{negative clicks q} C(q)
    and, when no positive click falls on a salient pixel but there is a positive click, prior = {S ≥ 0.5} minus the
    negative clicks' components (the click "missed" the salient mask: the whole mask is the best guess).

This is the no-learning one-click baseline (`hf_iis.evaluation.saliency_peers`) as an input map: the click decoder
receives it beside the click maps and learns when to follow it (objects) and when not (parts, regions). It is not
differentiable and needs none: it depends only on the frozen saliency network and the click coordinates.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def click_components(salient: np.ndarray, points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The prior (H, W) bool for one click set: `salient` (H, W) bool, `points` (P, 2) as (x, y) pixels of this
    map, `labels` (P,) in {+1, −1, 0 = padding}. See the module docstring for the rule."""
    count, components = cv2.connectedComponents(salient.astype(np.uint8), connectivity=8)
    h, w = salient.shape
    hit: dict[int, set[int]] = {1: set(), -1: set()}
    for (x, y), sign in zip(points, labels):
        if sign == 0:
            continue
        col, row = min(max(int(x), 0), w - 1), min(max(int(y), 0), h - 1)
        if components[row, col] > 0:
            hit[int(np.sign(sign))].add(int(components[row, col]))
    has_positive = bool((labels > 0).any())
    if hit[1]:
        keep = np.isin(components, sorted(hit[1] - hit[-1]))
    elif has_positive:
        keep = salient & ~np.isin(components, sorted(hit[-1]))
    else:
        keep = np.zeros_like(salient)
    return keep


def click_prior(saliency: torch.Tensor, points: torch.Tensor, labels: torch.Tensor, input_size: int) -> torch.Tensor:
    """(N, 1, h, w) float priors for N click sets on their images' saliency maps `saliency` (N, 1, h, w) in [0, 1];
    `points` (N, P, 2) are (x, y) in model-input pixels of a square of side `input_size`."""
    n, _, h, w = saliency.shape
    salient = (saliency[:, 0] >= 0.5).cpu().numpy()
    scaled = (points.detach().float().cpu().numpy() + 0.5) * np.array([w / input_size, h / input_size]) - 0.5
    lab = labels.detach().cpu().numpy()
    out = np.stack([click_components(salient[i], scaled[i], lab[i]) for i in range(n)])
    return torch.from_numpy(out.astype(np.float32))[:, None].to(saliency.device)
