"""Several answers per click: the seed's S logit maps l₁…l_S, an IoU head, and the loss of the best-fitting map.

A click on a shirt can mean the shirt, the person or the group. The seed trains S maps with the loss of the map that
fits best: for a click set with target m,

    L = min_k L(l_k, m)  +  λ · (1/S) Σ_k (q_k − IoU(l_k ≥ 0, m))²

where q_k = σ(IoU head)_k predicts the IoU map k achieves (trained against the measured IoU; no gradient flows from
the IoU target into the maps). At inference `select_best` returns the map with the highest predicted IoU, as SAM's
`multimask_output=False` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IOU_HEAD_INPUTS = ("pooled", "mask_pooled")


class MaskIoUHead(nn.Module):
    """q (N, S) logits of the IoU each map achieves, from the click-conditioned decoder features (stride 8) and the
    maps themselves.

    inputs="pooled": the features averaged over the image, and each map's mean probability and mean confidence
    |2p − 1| (D + 2S numbers). inputs="mask_pooled" adds, per map, the features averaged *inside* the map (weights:
    its probabilities pooled to stride 8; S·D numbers), and the IoU of every pair of thresholded maps (S(S−1)/2): what
    each answer covers and how the answers nest, which the image-wide average cannot tell apart."""

    def __init__(self, feature_dim: int, num_masks: int, hidden: int = 64, inputs: str = "pooled") -> None:
        super().__init__()
        if inputs not in IOU_HEAD_INPUTS:
            raise ValueError(f"iou_head_inputs must be one of {IOU_HEAD_INPUTS}, got {inputs!r}")
        self.kind = inputs
        size = feature_dim + 2 * num_masks
        if inputs == "mask_pooled":
            size += num_masks * feature_dim + num_masks * (num_masks - 1) // 2
        self.mlp = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_masks))

    def inputs(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The MLP's input (N, ·) for features (N, D, h, w) and logits (N, S, H, W); see the class docstring. A
        function of its own so that the head can be retrained alone on stored inputs (`training/iou_head_training`)."""
        features = features.detach().float()
        prob = torch.sigmoid(logits.detach().float())
        parts = [features.mean((2, 3)), prob.mean((2, 3)), (2 * prob - 1).abs().mean((2, 3))]
        if self.kind == "mask_pooled":
            weights = F.adaptive_avg_pool2d(prob, features.shape[-2:])  # (N, S, h, w)
            inside = torch.einsum("nshw,ndhw->nsd", weights, features) / weights.sum((2, 3))[..., None].clamp_min(1e-6)
            parts.append(inside.flatten(1))
            hard = (prob >= 0.5).flatten(2).float()  # (N, S, HW)
            inter = torch.einsum("nsp,ntp->nst", hard, hard)
            area = hard.sum(2)
            union = area[:, :, None] + area[:, None, :] - inter
            pair_iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
            rows, cols = torch.triu_indices(prob.shape[1], prob.shape[1], offset=1)
            parts.append(pair_iou[:, rows, cols])
        return torch.cat(parts, dim=1)

    def forward(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.inputs(features, logits).to(self.mlp[0].weight.dtype))


def mask_iou(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """IoU of (logits ≥ 0) with `target` per map: logits (N, S, H, W), target (N, 1, H, W) → (N, S); an empty
    union counts as IoU 1 (nothing to find, nothing found)."""
    pred = logits >= 0
    gt = (target > 0.5).expand_as(pred)
    keep = torch.ones_like(pred) if valid is None else valid.bool().expand_as(pred)
    inter = (pred & gt & keep).sum((2, 3)).float()
    union = ((pred | gt) & keep).sum((2, 3)).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def min_over_maps_loss(per_map_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, S) losses → (N,) the best map's loss and (N,) its index (ties: the first)."""
    best, index = per_map_loss.min(dim=1)
    return best, index


def iou_head_loss(iou_logits: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                  valid: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) mean over maps of (σ(q_k) − IoU_k)², with IoU_k measured on the thresholded map (a constant target)."""
    measured = mask_iou(logits.detach(), target, valid)
    return ((torch.sigmoid(iou_logits) - measured) ** 2).mean(1)


def select_best(logits: torch.Tensor, iou_logits: torch.Tensor | None) -> torch.Tensor:
    """(N, S, H, W) → (N, 1, H, W): the map with the highest predicted IoU (the only map when S = 1)."""
    if logits.shape[1] == 1 or iou_logits is None:
        return logits[:, :1]
    index = iou_logits.argmax(1)
    return logits[torch.arange(logits.shape[0], device=logits.device), index][:, None]
