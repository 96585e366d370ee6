"""The click-conditioned saliency prior: which salient regions the clicks point at.

Given the saliency map S (probabilities, one per image) and a click set, with C(p) the connected component
(8-connectivity) of the salient pixels {S ≥ 0.5} that holds pixel p (empty when p is not salient):

    prior = ⋃_{positive clicks p} C(p)  \\  ⋃_{negative clicks q} C(q)
    and, when no positive click falls on a salient pixel but there is a positive click, prior = {S ≥ 0.5} minus the
    negative clicks' components (the click "missed" the salient mask: the whole mask is the best guess).

This is the no-learning one-click baseline (`hf_iis.evaluation.saliency_peers`) as an input map: the click decoder
receives it beside the click maps and learns when to follow it (objects) and when not (parts, regions). It is not
differentiable and needs none: it depends only on the frozen saliency network and the click coordinates.

The components are labelled in torch (`connected_components`), not with OpenCV or scipy: this module is part of the
code exported to the hub, which must run with only torch, transformers, safetensors, pillow and numpy installed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def connected_components(masks: torch.Tensor) -> torch.Tensor:
    """8-connected component labels of boolean `masks` (N, H, W): int64 (N, H, W), 0 on background, and on each
    component 1 + the flat (row-major) index of its first pixel. cv2.connectedComponents gives the same partition
    (numbered 1, 2, ... in the same order).

    Exact, by label propagation with hooking and pointer jumping (Shiloach–Vishkin style): every foreground pixel p
    starts with the label L[p] = p, its own flat index. Each round takes m[p], the minimum label over p's 3x3
    neighbourhood (foreground only); hooks the root L[p] onto it (L[L[p]] = min(L[L[p]], m[p])) and sets
    L[p] = min(L[p], m[p]); then jumps pointers, L[p] = L[L[p]], until that changes nothing. A label is always the
    index of a pixel of the same component and only decreases, so at the fixed point (a round that changes nothing)
    each component holds its minimum index; hooking roots makes this take a few rounds, not one per pixel of the
    component's length."""
    if masks.dim() != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(masks.shape)}")
    n, h, w = masks.shape
    masks = masks.bool()
    size = h * w
    if size == 0:
        return torch.zeros(masks.shape, dtype=torch.int64, device=masks.device)
    # labels live in a (N, size + 1) table whose last column is the background's sentinel (label `size`, which
    # points at itself); float for max_pool2d (no integer kernel on CPU), float64 once float32 stops being exact
    dtype = torch.float32 if size < 2**24 else torch.float64
    fg = torch.cat([masks.reshape(n, size), torch.zeros(n, 1, dtype=torch.bool, device=masks.device)], dim=1)
    index = torch.arange(size + 1, dtype=dtype, device=masks.device).expand(n, size + 1)
    labels = torch.where(fg, index, torch.full_like(index, float(size)))
    while True:
        previous = labels
        pooled = -F.max_pool2d(-labels[:, :size].view(n, 1, h, w), kernel_size=3, stride=1, padding=1)
        pooled = torch.where(fg, torch.cat([pooled.view(n, size), labels[:, size:]], dim=1), labels)
        labels = torch.minimum(labels, pooled).scatter_reduce(1, labels.long(), pooled, reduce="amin")
        while True:  # pointer jumps (cheap gathers) until they change nothing
            jumped = labels.gather(1, labels.long())
            if torch.equal(jumped, labels):
                break
            labels = jumped
        if torch.equal(labels, previous):
            break
    return torch.where(masks, labels[:, :size].long().view(n, h, w) + 1, 0)


def click_components(salient: np.ndarray, points: np.ndarray, labels: np.ndarray,
                     components: np.ndarray | None = None) -> np.ndarray:
    """The prior (H, W) bool for one click set: `salient` (H, W) bool, `points` (P, 2) as (x, y) pixels of this
    map, `labels` (P,) in {+1, −1, 0 = padding}; `components`: `salient`'s component labels when already computed.
    See the module docstring for the rule."""
    if components is None:
        components = connected_components(torch.from_numpy(np.ascontiguousarray(salient))[None])[0].numpy()
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
    salient = (saliency[:, 0] >= 0.5).cpu()
    # the click sets of one call mostly share one image (TTA views, triangulation decodes): label each map once
    unique, inverse = torch.unique(salient.reshape(n, -1), dim=0, return_inverse=True)
    components = connected_components(unique.view(-1, h, w)).numpy()
    salient = salient.numpy()
    scaled = (points.detach().float().cpu().numpy() + 0.5) * np.array([w / input_size, h / input_size]) - 0.5
    lab = labels.detach().cpu().numpy()
    out = np.stack([click_components(salient[i], scaled[i], lab[i], components[inverse[i]]) for i in range(n)])
    return torch.from_numpy(out.astype(np.float32))[:, None].to(saliency.device)
