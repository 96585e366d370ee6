"""Segmentation losses for the signed-click objective.

Every loss takes logits and targets of shape (N, 1, H, W) (or (N, H, W)), plus an optional boolean `valid` map of
the same shape whose False pixels (e.g. GrabCut's 128 ignore band) count neither for nor against. Each returns one
value per sample, shape (N,), so callers can weight or average as they like.

- binary cross-entropy:  mean over valid pixels of −[g·log p + (1−g)·log(1−p)]
- Dice:                  1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)
- soft IoU:              1 − (Σ p·g + ε) / (Σ p + Σ g − Σ p·g + ε)
- Lovász hinge:          the convex (Lovász) extension of the Jaccard loss applied to hinge errors
                         1 − logit·(2g−1) (Berman et al., CVPR 2018); the seed's "convex IoU".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1.0


def _flatten(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None):
    n = logits.shape[0]
    logits = logits.reshape(n, -1).float()
    target = target.reshape(n, -1).float()
    valid = torch.ones_like(target) if valid is None else valid.reshape(n, -1).float()
    return logits, target, valid


def bce_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    logits, target, valid = _flatten(logits, target, valid)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * valid).sum(1) / valid.sum(1).clamp_min(1.0)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    logits, target, valid = _flatten(logits, target, valid)
    prob = torch.sigmoid(logits) * valid
    target = target * valid
    inter = (prob * target).sum(1)
    return 1.0 - (2.0 * inter + _EPS) / (prob.sum(1) + target.sum(1) + _EPS)


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    logits, target, valid = _flatten(logits, target, valid)
    prob = torch.sigmoid(logits) * valid
    target = target * valid
    inter = (prob * target).sum(1)
    union = prob.sum(1) + target.sum(1) - inter
    return 1.0 - (inter + _EPS) / (union + _EPS)


def lovasz_hinge_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    logits, target, valid = _flatten(logits, target, valid)
    signs = 2.0 * target - 1.0
    errors = 1.0 - logits * signs
    # Ignored pixels get a hinge error that sorts last and contributes nothing; with gt = 0 they also leave the
    # Jaccard increments of every valid pixel (all sorted before them) unchanged.
    errors = torch.where(valid > 0, errors, torch.full_like(errors, -1e4))
    target = target * valid
    errors_sorted, order = torch.sort(errors, dim=1, descending=True)
    gt_sorted = torch.gather(target, 1, order)
    positives = gt_sorted.sum(1, keepdim=True)
    intersection = positives - gt_sorted.cumsum(1)
    union = positives + (1.0 - gt_sorted).cumsum(1)
    jaccard = 1.0 - intersection / union.clamp_min(1e-6)
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return (F.relu(errors_sorted) * grad).sum(1)


LOSSES = {"bce": bce_loss, "dice": dice_loss, "soft_iou": soft_iou_loss, "lovasz": lovasz_hinge_loss}


def combined_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    weights: dict[str, float] | None = None,
) -> torch.Tensor:
    """Weighted sum of the losses named in `weights` (keys of `LOSSES`), per sample, shape (N,)."""
    weights = weights or {"bce": 1.0, "soft_iou": 1.0}
    unknown = set(weights) - set(LOSSES)
    if unknown:
        raise KeyError(f"unknown loss terms {sorted(unknown)}; choose from {sorted(LOSSES)}")
    total = torch.zeros(logits.shape[0], device=logits.device)
    for name, weight in weights.items():
        if weight:
            total = total + weight * LOSSES[name](logits, target, valid)
    return total


def loss_weights_from_config(config) -> dict[str, float]:
    """The loss weights of a `SignedClickConfig` (`loss_<name>_weight`), in `LOSSES` order: the one place they live."""
    return {name: float(getattr(config, f"loss_{name}_weight")) for name in LOSSES}


def set_loss_weights(config, weights: dict[str, float]) -> None:
    """Write `weights` into a `SignedClickConfig`'s `loss_<name>_weight`; the terms not named get 0."""
    unknown = set(weights) - set(LOSSES)
    if unknown:
        raise ValueError(f"unknown loss terms {sorted(unknown)}; choose from {sorted(LOSSES)}")
    for name in LOSSES:
        setattr(config, f"loss_{name}_weight", float(weights.get(name, 0.0)))
