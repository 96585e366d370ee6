"""Cache rows -> student training batches, and a resumable per-rank order over the cache.

A sample is the row's image through the image processor (pixel_values of the square input), its clicks, the
teacher maps on the stride-s grid and the grid's valid cells (inside the image). Augmentation is a D4 view
(`hf_iis.scaling.tta`: flips, transposes) applied to the image, the clicks and the maps together: exact on the square
input and on its grid (cell j ↔ g − 1 − j), so the targets need no resampling; it is what lets `tta=` help.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..scaling.tta import D4_VIEWS, VIEWS_BY_NAME, View
from .cache import decode_maps


def row_to_sample(row: dict, processor, stride: int, view: View | None = None) -> dict[str, torch.Tensor]:
    """One cache row as tensors: pixel_values (3, S, S), points (C, 2), labels (C,), single (K, g, g),
    sequences (M, L) (−1 = padding), sequence_targets (M, g, g), valid (1, g, g) bool."""
    image = np.asarray(row["image"].convert("RGB"))
    pixels = processor.preprocess(image, return_tensors="pt")["pixel_values"][0]
    size = pixels.shape[-1]
    h, w = (int(v) for v in row["reshaped"])
    valid = torch.zeros(1, size, size)
    valid[:, :h, :w] = 1.0
    valid = F.avg_pool2d(valid, stride) > 0.5
    points = torch.tensor(row["points"], dtype=torch.float32).reshape(-1, 2)
    single = torch.from_numpy(decode_maps(row["single_targets"], row["grid"]))
    finals = torch.from_numpy(decode_maps(row["sequence_targets"], row["grid"]))
    longest = max([len(s) for s in row["sequences"]] or [1])
    sequences = torch.full((len(row["sequences"]), longest), -1, dtype=torch.long)
    for i, seq in enumerate(row["sequences"]):
        sequences[i, : len(seq)] = torch.tensor(seq)
    if single.shape[-1] * stride != size:
        raise ValueError(f"cache grid {single.shape[-1]} x stride {stride} != input size {size}")
    if view is not None and view.name != "identity":
        if view.scale != 1.0:
            raise ValueError(f"view {view.name} rescales: only D4 views keep the cached grid exact")
        pixels, valid, single, finals = (view.apply_image(t) for t in (pixels, valid.float(), single, finals))
        valid = valid > 0.5
        points = view.apply_points(points, size)
    return {"pixel_values": pixels, "points": points, "labels": torch.tensor(row["labels"], dtype=torch.long),
            "single": single, "sequences": sequences, "sequence_targets": finals, "valid": valid}


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad clicks (label 0), single maps and sequences (index −1, map mask False) to the batch's largest."""
    b = len(samples)
    c = max(s["points"].shape[0] for s in samples)
    k = max(s["single"].shape[0] for s in samples)
    m = max(s["sequences"].shape[0] for s in samples)
    length = max(s["sequences"].shape[1] for s in samples)
    g = samples[0]["single"].shape[-1]
    out = {"pixel_values": torch.stack([s["pixel_values"] for s in samples]),
           "valid": torch.stack([s["valid"] for s in samples]),
           "points": torch.zeros(b, c, 2), "labels": torch.zeros(b, c, dtype=torch.long),
           "single": torch.zeros(b, k, g, g), "single_mask": torch.zeros(b, k, dtype=torch.bool),
           "sequences": torch.full((b, m, length), -1, dtype=torch.long),
           "sequence_targets": torch.zeros(b, m, g, g), "sequence_mask": torch.zeros(b, m, dtype=torch.bool)}
    for i, s in enumerate(samples):
        n, kk, mm, ll = s["points"].shape[0], s["single"].shape[0], s["sequences"].shape[0], s["sequences"].shape[1]
        out["points"][i, :n], out["labels"][i, :n] = s["points"], s["labels"]
        out["single"][i, :kk], out["single_mask"][i, :kk] = s["single"], True
        out["sequences"][i, :mm, :ll] = s["sequences"]
        out["sequence_targets"][i, :mm], out["sequence_mask"][i, :mm] = s["sequence_targets"], True
    return out


def resolve_train_views(names: list[str] | None) -> list[View]:
    """D4 views by name (None = all eight); rescaled views are refused (they would resample the targets)."""
    if names is None:
        return list(D4_VIEWS)
    unknown = [n for n in names if n not in VIEWS_BY_NAME or VIEWS_BY_NAME[n].scale != 1.0]
    if unknown:
        raise ValueError(f"training views must be D4 views {[v.name for v in D4_VIEWS]}, got {unknown}")
    return [VIEWS_BY_NAME[n] for n in names]


class CacheBatches:
    """Batches of one rank in a seeded order: epoch e is a permutation seeded by (seed, e), batch j of rank r is
    slice j·world + r, and each image gets a D4 view with probability `view_prob` (seeded by (seed, e, index)).
    `state()` / `load_state()` hold the position (epoch, batches consumed), so a resumed run continues exactly."""

    def __init__(self, dataset, processor, stride: int, batch_size: int, seed: int = 0, rank: int = 0,
                 world: int = 1, views: list[View] | None = None, view_prob: float = 0.5) -> None:
        if len(dataset) < batch_size * world:
            raise ValueError(f"{len(dataset)} cached images are fewer than one batch of {batch_size} per process "
                             f"x {world} processes")
        self.dataset, self.processor, self.stride = dataset, processor, int(stride)
        self.batch_size, self.seed, self.rank, self.world = int(batch_size), int(seed), int(rank), int(world)
        self.views, self.view_prob = views or list(D4_VIEWS), float(view_prob)
        self.epoch, self.position = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset) // (self.batch_size * self.world)

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.dataset))
        j = self.position * self.world + self.rank
        indices = order[j * self.batch_size : (j + 1) * self.batch_size]
        self.position += 1
        samples = []
        for index in indices:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            view = self.views[int(rng.integers(len(self.views)))] if rng.random() < self.view_prob else None
            samples.append(row_to_sample(self.dataset[int(index)], self.processor, self.stride, view))
        return collate(samples)
