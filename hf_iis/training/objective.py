"""The training objective as one module, so a DDP / FSDP wrapper sees a single forward per step.

    loss = mean over click sets of L(f(I, c), m)                     first pass: one signed click per set
         + mean over click sets of L(f(I, c, corrective clicks), m)  optional RITM-style iterative pass

A click set is the seed's f+(I, x) with x ∈ m (label +1) or f−(I, x̄) with x̄ ∉ m (label −1), target m in both
cases; the sum over the K pairs of each mask becomes a mean over all sets of the batch (a constant rescaling).
Corrective clicks come from the standard click simulator (`hf_iis.utils.clicker.next_click`) on the current error; the
intermediate passes run without gradient, decoder only, on the cached image embedding, with the previous
probability map fed back; the final multi-click pass gets the loss too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from ..models.signed_click.losses import LOSSES, combined_loss, loss_weights_from_config
from ..models.signed_click.modeling_signed_click import SignedClickModel
from ..models.signed_click.multimask import select_best
from ..utils.clicker import Click, next_click

_POOL: ThreadPoolExecutor | None = None


def _click_pool() -> ThreadPoolExecutor:
    """Threads for the click simulator: OpenCV's distance transform releases the GIL, and on a GPU the ~2 ms per
    click set on one CPU core would otherwise cost more than the training step itself."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 1) // 2)))
    return _POOL


def _padded(weights: dict[str, float]) -> dict[str, float]:
    return {name: float(weights.get(name, 0.0)) for name in LOSSES} if set(weights) <= set(LOSSES) else dict(weights)


class SignedClickObjective(nn.Module):
    """The training loss of `model`, with the loss weights of `model.config` (`loss_*_weight`, their one home: the
    run config's `model.loss_weights` is written there when the model is built). Holds no state beyond `model`."""

    def __init__(self, model: SignedClickModel, loss_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.model = model
        if loss_weights is not None and _padded(loss_weights) != self.loss_weights:
            raise ValueError(f"loss weights {dict(loss_weights)} differ from the model config's {self.loss_weights}: "
                             "the objective reads the model config only (set them with "
                             "hf_iis.models.signed_click.losses.set_loss_weights, or the run config's "
                             "model.loss_weights)")

    @property
    def loss_weights(self) -> dict[str, float]:
        return loss_weights_from_config(self.model.config)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return combined_loss(logits.float(), target, valid, self.loss_weights).mean()

    @torch.no_grad()
    def _corrective_clicks(
        self, probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, history: list[list[Click]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One new click per set from the simulator on (prob ≥ 0.5) vs the target: (N, 1, 2) points, (N, 1) labels."""
        pred = (probs[:, 0] >= 0.5).cpu().numpy()
        gt = target[:, 0].bool().cpu().numpy()
        ignore = ~valid[:, 0].bool().cpu().numpy()
        clicks = list(_click_pool().map(
            lambda i: next_click(gt[i], pred[i], ignore=ignore[i], clicked=history[i]), range(pred.shape[0])
        ))
        points, labels = [], []
        for i, click in enumerate(clicks):
            history[i].append(click)
            points.append((click.x, click.y))
            labels.append(click.sign)
        return (
            torch.tensor(np.asarray(points, dtype=np.float32), device=probs.device)[:, None, :],
            torch.tensor(labels, dtype=torch.long, device=probs.device)[:, None],
        )

    def forward(
        self,
        pixel_values: torch.Tensor,
        points: torch.Tensor,
        labels: torch.Tensor,
        image_index: torch.Tensor,
        target_masks: torch.Tensor,
        target_valid: torch.Tensor,
        corrective_clicks: int = 0,
        saliency_pixel_values: torch.Tensor | None = None,
        saliency_boxes: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Inputs as `collate_click_sets` builds them (the last two only for `config.saliency_frame="stretched"`);
        returns {"loss", "loss_first", "loss_final", "iou_first"}."""
        embeddings = self.model.encode_image(pixel_values, saliency_pixel_values=saliency_pixel_values,
                                             saliency_boxes=saliency_boxes)
        return self.loss_on_embeddings(embeddings, points, labels, image_index, target_masks, target_valid,
                                       corrective_clicks)

    def loss_on_embeddings(
        self,
        embeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        image_index: torch.Tensor,
        target_masks: torch.Tensor,
        target_valid: torch.Tensor,
        corrective_clicks: int = 0,
    ) -> dict[str, torch.Tensor]:
        """`forward` on image embeddings already computed (e.g. read from an embedding cache: the decoder and heads
        train without an image pass)."""
        model = self.model
        target = target_masks.float()
        # the first click: all S maps, the loss of the best-fitting one (+ the IoU head's) when S > 1; corrective
        # clicks then follow one map, the best-predicted (as SAM does)
        maps, iou_logits = model.decode_masks(embeddings, points, labels, None, image_index)
        loss_first = model.mask_loss(maps.float(), iou_logits, target, target_valid).mean()
        logits = select_best(maps, iou_logits)
        with torch.no_grad():
            pred, gt, valid = logits.detach() >= 0, target > 0.5, target_valid.bool()
            inter = (pred & gt & valid).flatten(1).sum(1).float()
            union = ((pred | gt) & valid).flatten(1).sum(1).float().clamp_min(1.0)
            iou_first = (inter / union).mean()
        out = {"loss_first": loss_first.detach(), "iou_first": iou_first}
        loss = loss_first
        if corrective_clicks > 0:
            history = [
                [Click(float(p[0]), float(p[1]), int(s))] for p, s in zip(points[:, 0].tolist(), labels[:, 0].tolist())
            ]
            probs = torch.sigmoid(logits.detach().float())
            detached = embeddings.detach()
            for round_index in range(corrective_clicks):
                new_points, new_labels = self._corrective_clicks(probs, target, target_valid, history)
                points = torch.cat([points, new_points], dim=1)
                labels = torch.cat([labels, new_labels], dim=1)
                if round_index < corrective_clicks - 1:
                    was_training = model.training
                    model.eval()
                    with torch.no_grad():
                        probs = torch.sigmoid(model.decode(detached, points, labels, probs, image_index).float())
                    model.train(was_training)
            final = model.decode(embeddings, points, labels, probs, image_index)
            loss_final = self._loss(final, target, target_valid)
            out["loss_final"] = loss_final.detach()
            loss = loss + loss_final
        out["loss"] = loss
        return out
