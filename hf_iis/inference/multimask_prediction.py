"""Several answers per click at inference: which of a multi-map model's S maps to run, and how to run each.

A model with S > 1 maps (`config.num_mask_outputs`) predicts, per click set, the IoU each map achieves (its IoU head,
read on the plain view's cached embedding). `predict` runs the chosen map through the whole scaling path (TTA views,
triangulation: every estimate of that map, mapped back and averaged), so each map is combined across views *before*
one is selected.

Which map (`map_choice`):
- "first_click" (the default, as SAM does): the maps are ranked by the IoU head's prediction for the set's first click
  alone (no previous mask), so a session's corrective clicks stay on the map its first click chose. Those first-click
  IoUs are cached per image (`FirstClickIous`, keyed by the first click's model-input coordinates and label), so a
  corrective call runs no more decoder passes than with "click_set": one IoU pass on the whole set (the answer's
  `predicted_iou`) plus the chosen map's passes; for a one-click set the two IoU reads are the same pass.
- "click_set": the map with the highest predicted IoU for the whole current set (the IoU head reads every click and
  the previous mask), chosen again at every click.
`map_index` forces one map (0-based). `multimask_output=True` runs every map and returns them in the ranking's order
(a forced map first), each with its whole-set predicted IoU, as SAM's `multimask_output` does.
"""

from __future__ import annotations

import numbers

import torch

from ..scaling.tta import VIEWS_BY_NAME

IDENTITY = VIEWS_BY_NAME["identity"]
MAP_CHOICES = ("first_click", "click_set")
DEFAULT_MAP_CHOICE = "first_click"


def num_mask_outputs(model) -> int:
    """S of a model (1 for one-map models and the student)."""
    return int(getattr(getattr(model, "config", None), "num_mask_outputs", 1) or 1)


def check_map_choice(value) -> str:
    """`map_choice` checked: one of `MAP_CHOICES`."""
    if not isinstance(value, str) or value not in MAP_CHOICES:
        raise ValueError(f"map_choice must be one of {', '.join(repr(c) for c in MAP_CHOICES)}, got {value!r}")
    return value


def check_map_index(value, num_maps: int) -> int | None:
    """`map_index` checked against a model with `num_maps` maps: None, or an int in [0, num_maps - 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < num_maps:
        accepted = ("0 or None (this model has one map)" if num_maps == 1 else
                    f"an int in [0, {num_maps - 1}] or None")
        raise ValueError(f"map_index must be {accepted}, got {value!r}")
    return int(value)


def predicted_ious(model, embeddings, points: torch.Tensor, labels: torch.Tensor,
                   prev: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) predicted IoU in [0, 1] of each map for B click sets (canonical frame, plain view's embedding), or
    None for a one-map model."""
    if num_mask_outputs(model) == 1:
        return None
    _, iou_logits = model.decode_masks(embeddings, points, labels, prev)
    return torch.sigmoid(iou_logits.float())


def _first_clicks(points: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each set's first click (label 0 pads, wherever it is): (B, 1, 2) points and (B, 1) labels."""
    first = (labels != 0).int().argmax(1)
    rows = torch.arange(points.shape[0], device=points.device)
    return points[rows, first][:, None], labels[rows, first][:, None]


class FirstClickIous:
    """One image's predicted IoUs of a first click alone (S,), by (x, y, label) in the model-input frame. The owner
    clears it with its image (`SignedClickPredictor._reset_image_state`); `image_key` guards against a missed clear."""

    def __init__(self) -> None:
        self.image_key: str | None = None
        self._values: dict[tuple[float, float, int], torch.Tensor] = {}

    def clear(self) -> None:
        self._values.clear()

    def _sync(self, image_key) -> None:
        if image_key != self.image_key:
            self._values.clear()
            self.image_key = image_key

    @staticmethod
    def _key(point: torch.Tensor, label: torch.Tensor) -> tuple[float, float, int]:
        return float(point[0]), float(point[1]), int(label)

    def remember(self, image_key, points: torch.Tensor, labels: torch.Tensor, ious: torch.Tensor) -> None:
        """Store the IoUs of one-click sets (B, 1) read without a previous mask: they are their first click's."""
        self._sync(image_key)
        for point, label, value in zip(points[:, 0], labels[:, 0], ious):
            self._values[self._key(point, label)] = value

    def ious(self, image_key, model, embeddings, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, S): each set's first click's predicted IoUs, one batched IoU pass for the clicks not cached yet."""
        self._sync(image_key)
        first_points, first_labels = _first_clicks(points, labels)
        keys = [self._key(p, lab) for p, lab in zip(first_points[:, 0], first_labels[:, 0])]
        missing: dict[tuple, int] = {}  # each first click not cached yet, once
        for i, key in enumerate(keys):
            if key not in self._values:
                missing.setdefault(key, i)
        if missing:
            index = torch.tensor(list(missing.values()), device=points.device)
            self.remember(image_key, first_points[index], first_labels[index],
                          predicted_ious(model, embeddings, first_points[index], first_labels[index], None))
        return torch.stack([self._values[key] for key in keys])


def first_click_cache(predictor) -> FirstClickIous:
    """The predictor's `FirstClickIous` (made at first use)."""
    cache = getattr(predictor, "_first_click_ious", None)
    if cache is None:
        cache = predictor._first_click_ious = FirstClickIous()
    return cache


def ranking_ious(predictor, points: torch.Tensor, labels: torch.Tensor, prev: torch.Tensor | None,
                 map_choice: str) -> torch.Tensor:
    """(B, S) the IoUs that rank the maps of B click sets under `map_choice` (module docstring)."""
    embeddings = predictor.view_embeddings([IDENTITY])[IDENTITY.name]
    if map_choice == "click_set":
        return predicted_ious(predictor.model, embeddings, points, labels, prev)
    return first_click_cache(predictor).ious(predictor._image_key, predictor.model, embeddings, points, labels)


def map_order(predictor, points: torch.Tensor, labels: torch.Tensor, prev: torch.Tensor | None, map_choice: str,
              map_index: int | None, every_map: bool) -> tuple[list[int], torch.Tensor]:
    """For one click set ((1, N, 2) points, (1, N) labels): the maps to run, in answer order (all S with
    `every_map`, else the one answer), and the whole set's predicted IoUs (S,), which every answer reports."""
    model, embeddings = predictor.model, predictor.view_embeddings([IDENTITY])[IDENTITY.name]
    full = predicted_ious(model, embeddings, points, labels, prev)
    if map_index is not None and not every_map:
        return [map_index], full[0]
    if map_choice == "click_set":
        ranking = full
    else:
        cache = first_click_cache(predictor)
        if prev is None and points.shape[1] == 1:  # a first click: the whole set's read is the first click's
            cache.remember(predictor._image_key, points, labels, full)
        ranking = cache.ious(predictor._image_key, model, embeddings, points, labels)
    order = torch.argsort(ranking[0], descending=True, stable=True).tolist()
    if map_index is not None:
        order = [map_index] + [k for k in order if k != map_index]
    return (order if every_map else order[:1]), full[0]


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
