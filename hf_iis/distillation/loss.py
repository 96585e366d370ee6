"""The distillation loss: student click maps against the teacher's probabilities on the stride-s grid.

For every click map (single clicks and combined click sets alike), with t the teacher's probability and q = σ(ℓ)
the student's, averaged over the valid (non-padding) grid pixels y:

    BCE(ℓ, t) = mean_y −[t log q + (1 − t) log(1 − q)]                  (soft targets)
    KL(t ‖ q) = BCE(ℓ, t) − H(t)                                          (0 when the student matches; reported)
    soft IoU  = 1 − (Σ q t + 1) / (Σ q + Σ t − Σ q t + 1)    (`models/signed_click/losses.py`)

    loss = w_bce · BCE + w_soft_iou · soft IoU,   averaged over the real maps (padding clicks masked out)
"""

from __future__ import annotations

import torch

from ..models.signed_click.losses import bce_loss, soft_iou_loss

DEFAULT_WEIGHTS = {"bce": 1.0, "soft_iou": 0.5}


def _entropy(t: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    t = t.clamp(1e-6, 1 - 1e-6)
    per_pixel = -(t * t.log() + (1 - t) * (1 - t).log())
    return (per_pixel * valid).sum(1) / valid.sum(1).clamp_min(1.0)


def distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor,
                      map_mask: torch.Tensor | None = None, weights: dict[str, float] | None = None
                      ) -> dict[str, torch.Tensor]:
    """Loss terms for student `logits` (N, K, h, w) against `teacher` probabilities (N, K, h, w).

    Args:
        valid: (N, 1, h, w) bool, the grid pixels inside the image. map_mask: (N, K) bool, the real maps
            (default: all). weights: {"bce": w, "soft_iou": w} (default `DEFAULT_WEIGHTS`).
    Returns:
        {"loss", "bce", "kl", "soft_iou"}: scalars, means over the real maps.
    """
    weights = DEFAULT_WEIGHTS if weights is None else weights
    unknown = set(weights) - {"bce", "soft_iou"}
    if unknown:
        raise KeyError(f"unknown distillation loss terms {sorted(unknown)}; use bce and soft_iou")
    if logits.shape != teacher.shape:
        raise ValueError(f"student logits {tuple(logits.shape)} and teacher maps {tuple(teacher.shape)} differ")
    n, k = logits.shape[:2]
    valid_maps = valid.expand_as(logits).reshape(n * k, -1).float()
    flat_logits, flat_teacher = logits.reshape(n * k, -1), teacher.reshape(n * k, -1).float()
    mask = torch.ones(n * k, device=logits.device) if map_mask is None else map_mask.reshape(-1).float()
    count = mask.sum().clamp_min(1.0)
    bce = bce_loss(flat_logits, flat_teacher, valid_maps)
    soft_iou = soft_iou_loss(flat_logits, flat_teacher, valid_maps)
    kl = bce - _entropy(flat_teacher, valid_maps)
    terms = {"bce": (bce * mask).sum() / count, "soft_iou": (soft_iou * mask).sum() / count,
             "kl": (kl * mask).sum() / count}
    terms["loss"] = sum(float(w) * terms[name] for name, w in weights.items() if w)
    return terms
