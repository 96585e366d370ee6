"""Teacher targets: the teacher's maps for random signed clicks, at its best inference-time scaling, on the grid.

Per image (already resized so its longest side is the model input size, so image pixels are input pixels):
  - K single clicks at uniform pixels of the image, ⌈K/2⌉ positive and ⌊K/2⌋ negative; the teacher decides what
    each selects: f+(x) for a positive click, f−(x) for a negative one;
  - M short click sequences, as a user refines: sequence j starts with positive click j (mod ⌈K/2⌉), then adds
    1 .. L−1 corrective clicks, each drawn from the teacher's current map p: with probability 1/2 a negative click
    uniform in {p ≥ 0.5} (remove part of the selection), else a positive click uniform in {p < 0.5} (add to it);
    the teacher answers each prefix with its multi-click mode (previous map fed back, as in the NoC protocol) and
    the final map is the target of the student's naive-Bayes combination.
Every map is computed at `tta` views (default 4; triangulation is optional but costs ~60x a plain prediction); with
`zoom_in` the sequences' maps also get the teacher's zoom-in view (`predict(zoom_in="auto")`: a crop around the
current object, re-predicted at full input resolution), which is where zoom pays (corrective clicks); the single
clicks stay batched on the cached full views. Maps are padded to the square input and averaged over s x s cells (the
stride-s grid), then quantised to uint8 (p · 255, rounded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..scaling.tta import resolve_views


@dataclass(frozen=True)
class TargetSpec:
    """How many clicks and sequences per image, and the teacher's scaling."""

    clicks: int = 16
    sequences: int = 4
    sequence_clicks: int = 3  # L: clicks of the longest sequence (2 .. L per sequence)
    tta: int = 4
    triangulation: int = 0
    triangulation_sampling: str = "stratified"
    zoom_in: bool = False  # the sequences' maps with the teacher's zoom-in view (caches before the option: False)

    def __post_init__(self) -> None:
        if self.clicks < 1 or self.sequences < 0 or self.sequence_clicks < 2:
            raise ValueError(f"need clicks >= 1, sequences >= 0 and sequence_clicks >= 2, got {self}")
        if self.tta < 1 or self.triangulation < 0:  # refused here, before a cache folder is written
            raise ValueError(f"need tta >= 1 (views) and triangulation >= 0 (pixels), got tta={self.tta}, "
                             f"triangulation={self.triangulation}")
        resolve_views(self.tta)  # more views than exist: the scaling module's message


def to_grid(maps: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, h, w) probabilities in the image frame -> (N, size/s, size/s) uint8: zero-padded to the square input,
    averaged over s x s cells, quantised."""
    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]
    padded = F.pad(tensor, (0, size - maps.shape[2], 0, size - maps.shape[1]))
    grid = F.avg_pool2d(padded, stride)[:, 0].numpy()
    return np.rint(np.clip(grid, 0, 1) * 255).astype(np.uint8)


def _uniform_pixel(rng: np.random.Generator, where: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(where)
    k = int(rng.integers(len(xs)))
    return float(xs[k]), float(ys[k])


class TeacherTargets:
    """Makes the targets of one image with a teacher `SignedClickPredictor` (see the module docstring)."""

    def __init__(self, predictor, spec: TargetSpec, stride: int) -> None:
        self.predictor, self.spec, self.stride = predictor, spec, int(stride)
        self.size = int(predictor.processor.size)
        if self.size % self.stride:
            raise ValueError(f"input size {self.size} is not a multiple of the stride {self.stride}")

    def _predict(self, clicks, prev=None) -> np.ndarray:
        s = self.spec
        # the targets a spec names (its TTA, triangulation and zoom), whatever the predictor's defaults
        return self.predictor.predict(clicks, prev_mask=prev, tta=s.tta, triangulation=s.triangulation,
                                      triangulation_sampling=s.triangulation_sampling,
                                      zoom_in="auto" if s.zoom_in else False,
                                      upsample="bilinear").probabilities

    def _single_maps(self, points: np.ndarray, sign: int) -> np.ndarray:
        if not len(points):
            return np.zeros((0, *self.predictor.original_size), np.float32)
        if self.spec.triangulation == 0:  # batched on the cached views
            return self.predictor.predict_single_clicks(points, sign=sign, tta=self.spec.tta)
        return np.stack([self._predict([(float(x), float(y), sign)]) for x, y in points])

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> dict:
        """Targets for `image` (h, w, 3) uint8 whose longest side is the input size."""
        h, w = image.shape[:2]
        if max(h, w) != self.size:
            raise ValueError(f"image is {w}x{h}; resize it so its longest side is {self.size} first")
        self.predictor.set_image(image)
        k_pos = (self.spec.clicks + 1) // 2
        points = np.stack([rng.integers(0, w, self.spec.clicks), rng.integers(0, h, self.spec.clicks)], 1)
        points = points.astype(np.float32)
        labels = np.array([1] * k_pos + [-1] * (self.spec.clicks - k_pos), dtype=np.int8)
        single = np.concatenate([self._single_maps(points[:k_pos], 1), self._single_maps(points[k_pos:], -1)])
        all_points, all_labels = list(map(tuple, points)), list(labels)
        sequences, finals = [], []
        for j in range(self.spec.sequences):
            first = j % k_pos
            seq, current = [first], single[first]
            for _ in range(int(rng.integers(1, self.spec.sequence_clicks))):
                inside = current >= 0.5
                negative = inside.any() and (rng.random() < 0.5 or inside.all())
                x, y = _uniform_pixel(rng, inside if negative else ~inside)
                all_points.append((x, y))
                all_labels.append(-1 if negative else 1)
                seq.append(len(all_points) - 1)
                clicks = [(*all_points[i], int(all_labels[i])) for i in seq]
                current = self._predict(clicks, prev=current)
            sequences.append(seq)
            finals.append(current)
        finals = np.stack(finals) if finals else np.zeros((0, h, w), np.float32)
        return {
            "points": np.asarray(all_points, dtype=np.float32).reshape(-1, 2),
            "labels": np.asarray(all_labels, dtype=np.int8),
            "single_targets": to_grid(single, self.size, self.stride),
            "sequences": sequences,
            "sequence_targets": to_grid(finals, self.size, self.stride),
            "reshaped": (h, w),
        }
