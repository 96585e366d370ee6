"""What `SignedClickPredictor.predict` returns: `Prediction`, one click set's estimate at the original resolution
(with its model-frame logits, to feed back), and the mask / score rules it applies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def has_positive_click(clicks) -> bool:
    """True when one of the clicks [(x, y, sign), ...] says "in the object": without one, nothing is selected."""
    return any(int(click[2]) > 0 for click in clicks)


def mask_score(probabilities: np.ndarray, mask: np.ndarray) -> float:
    """Mean probability inside `mask`; 0.0 for an empty mask."""
    return float(probabilities[mask].mean()) if mask.any() else 0.0


@dataclass
class Prediction:
    """
    Args:
        probabilities: (H, W) float32 in [0, 1], P(pixel ∈ object | clicks), at the original resolution.
        uncertainty: (H, W) float32, the spread across TTA views (or across auxiliary pixels with one view); None
            unless requested, and None with a single estimate (tta=1, triangulation=0), which has no spread.
        score: mean probability inside the predicted mask, `mask()` at `threshold`; 0 for an empty mask.
        views: names of the TTA views used. seconds: wall time of the call (encoding included).
        has_positive_click: False when no click said "in the object": `mask()` is then empty and `score` 0.0,
            while `probabilities` keeps the model's map (see the module docstring).
        encoded_views: how many views' image embeddings this call computed (0: all came from the cache).
        input_logits: (S, S) float32 logits of the same estimate in the model-input frame (S = processor.size, the
            image resized into the top-left `reshaped_size`, padding elsewhere), before the resize to the original
            resolution: `predict(..., prev_logits=input_logits)` feeds it back without that round trip.
        threshold: the probability threshold of `mask()` and `score`.
        predicted_iou: a multi-map model's predicted IoU of this answer for the whole click set (its IoU head);
            None for one-map models.
        map_index: which of the model's maps gave this answer (0-based; 0 for one-map models and the student):
            `predict(..., map_index=...)` keeps the next clicks on it.
        alternatives: with `multimask_output=True` on a multi-map model, every map's answer, in the order of the
            map choice's ranking (this one first); empty otherwise.
        zoom_box: (x0, y0, x1, y1), the crop of the photo a `zoom_in` call refined inside (`zoom.py`); None when
            the call did not zoom.
    """

    probabilities: np.ndarray
    uncertainty: np.ndarray | None = None
    score: float = 0.0
    views: list[str] = field(default_factory=list)
    seconds: float = 0.0
    has_positive_click: bool = True
    encoded_views: int = 0
    input_logits: np.ndarray | None = None
    threshold: float = 0.5
    predicted_iou: float | None = None
    map_index: int = 0
    alternatives: list[Prediction] = field(default_factory=list)
    zoom_box: tuple[int, int, int, int] | None = None

    def mask(self, threshold: float | None = None) -> np.ndarray:
        """(H, W) bool: probability ≥ `threshold` (default: the prediction's); all False for a click set without a
        positive click."""
        if not self.has_positive_click:
            return np.zeros(self.probabilities.shape, dtype=bool)
        return self.probabilities >= (self.threshold if threshold is None else threshold)
