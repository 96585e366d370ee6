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
from torch import nn


class MaskIoUHead(nn.Module):
    """q (N, S) logits of the IoU each map achieves, from the decoder's pooled features and each map's statistics
    (mean probability, mean confidence |2p − 1|), so it can tell a confident whole from a hedged part."""

    def __init__(self, feature_dim: int, num_masks: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(feature_dim + 2 * num_masks, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, num_masks))

    @staticmethod
    def inputs(features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The MLP's input (N, D + 2S): pooled features, then each map's mean probability and mean confidence. A
        function of its own so that the head can be retrained alone on stored inputs (`training/iou_head_training`)."""
        prob = torch.sigmoid(logits.detach().float())
        stats = torch.cat([prob.mean((2, 3)), (2 * prob - 1).abs().mean((2, 3))], dim=1)
        return torch.cat([features.float().mean((2, 3)), stats], dim=1)

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
