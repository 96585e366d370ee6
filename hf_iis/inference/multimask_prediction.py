"""Several answers per click at inference: which of a multi-map model's S maps to run, and how to run each.

A model with S > 1 maps (`config.num_mask_outputs`) predicts, per click set, the IoU each map achieves (its IoU head,
read on the plain view's cached embedding). `predict` runs the chosen map through the whole scaling path (TTA views,
triangulation: every estimate of that map, mapped back and averaged), so each map is combined across views *before*
one is selected. By default each click set gets the map with the highest predicted IoU for that set (corrective click
sets included: the IoU head reads the whole set and the previous mask); `multimask_output=True` runs every map and
returns them best first with their predicted IoUs, as SAM's `multimask_output` does.
"""

from __future__ import annotations

import torch

from ..scaling.tta import VIEWS_BY_NAME

IDENTITY = VIEWS_BY_NAME["identity"]


def num_mask_outputs(model) -> int:
    """S of a model (1 for one-map models and the student)."""
    return int(getattr(getattr(model, "config", None), "num_mask_outputs", 1) or 1)


def predicted_ious(model, embeddings, points: torch.Tensor, labels: torch.Tensor,
                   prev: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) predicted IoU in [0, 1] of each map for B click sets (canonical frame, plain view's embedding), or
    None for a one-map model."""
    if num_mask_outputs(model) == 1:
        return None
    _, iou_logits = model.decode_masks(embeddings, points, labels, prev)
    return torch.sigmoid(iou_logits.float())


def run_by_chosen_map(chosen: torch.Tensor, run):
    """Run `run(indices, map_index)` once per distinct map in `chosen` (B,) on the click sets that chose it, and put
    the (B, S, S) results back in order. `run` returns an `InputFramePrediction` for its subset."""
    results = {}
    for k in torch.unique(chosen).tolist():
        indices = torch.nonzero(chosen == k).flatten()
        results[k] = (indices, run(indices, int(k)))
    first = next(iter(results.values()))[1]
    if len(results) == 1:
        return first
    batch = chosen.shape[0]
    probabilities = first.probabilities.new_empty((batch, *first.probabilities.shape[1:]))
    uncertainty = None if first.uncertainty is None else first.uncertainty.new_empty(probabilities.shape)
    for indices, part in results.values():
        probabilities[indices] = part.probabilities
        if uncertainty is not None:
            uncertainty[indices] = part.uncertainty
    first.probabilities, first.uncertainty = probabilities, uncertainty
    return first
