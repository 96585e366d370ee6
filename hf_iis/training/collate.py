"""The lazy per-row transform (decode, check, augment, sample clicks) and the collate that builds click sets.

A bad row (no masks, only empty masks, a mask whose size differs from the image, an image or mask that does not
decode) never stops an epoch: the transform returns no sample and a reason, the collate drops it and counts it in
`batch["skipped"]` (a LongTensor indexed like `SKIP_REASONS`), and the training loop sums those counts. Rows are
read by the corpus's one decoder, `hf_iis.data.rows.decode_row`.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from ..data.rows import BadRow, decode_row
from .augment import AugmentParams, InputFormat, augment, saliency_frame_inputs
from .sampling import MASK_SAMPLINGS, choose_masks, sample_click_pairs

__all__ = ["SKIP_REASONS", "BadRow", "TrainTransform", "collate_click_sets", "decode_row"]

SKIP_REASONS: tuple[str, ...] = (
    "corrupt_image",
    "corrupt_mask",
    "size_mismatch",
    "no_masks",  # the row lists no mask at all
    "empty_masks",  # every mask of the row is empty
    "no_clickable_mask",  # every mask vanished under augmentation, even without it
    "dropped_empty_mask",  # not a skipped row: an empty mask dropped from a row that has others
)


class TrainTransform:
    """Row -> training sample; usable with `Dataset.with_transform` (a batch dict) and `IterableDataset.map` (a row).

    Randomness comes only from a generator seeded by (seed, epoch, row id), so a resumed run sees the same
    augmentations. Set `epoch` before each epoch's DataLoader iterator is created (workers copy it then).
    """

    def __init__(
        self,
        params: AugmentParams,
        input_format: InputFormat,
        masks_per_image: int = 1,
        pairs_per_mask: int = 1,
        seed: int = 0,
        max_masks_decoded: int | None = 8,
        mask_sampling: str = "uniform",
        min_mask_pixels: int = 16,
        stretched_size: int | None = None,
    ) -> None:
        if mask_sampling not in MASK_SAMPLINGS:
            raise ValueError(f"data.mask_sampling must be one of {MASK_SAMPLINGS}, got {mask_sampling!r}")
        if not isinstance(input_format, InputFormat):
            raise TypeError(f"input_format must be an InputFormat (the model's size and normalisation), "
                            f"got {input_format!r}")
        self.params = params
        self.input_format = input_format
        self.min_mask_pixels = min_mask_pixels
        self.mask_sampling = mask_sampling
        self.max_masks_decoded = max_masks_decoded
        self.masks_per_image = masks_per_image
        self.pairs_per_mask = pairs_per_mask
        self.seed = seed
        # a model with config.saliency_frame="stretched" also takes the photo stretched to this square and its box
        self.stretched_size = stretched_size
        self.epoch = 0

    def rng_for(self, row: dict[str, Any]) -> np.random.Generator:
        key = f"{row.get('source', '')}/{row.get('id', '')}".encode()
        return np.random.default_rng([self.seed, self.epoch, zlib.crc32(key)])

    def sample(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row -> {"sample": dict or None, "skip": list of reasons}."""
        skips: list[str] = []
        rng = self.rng_for(row)
        try:
            image, masks, ignore, empty = decode_row(row, self.max_masks_decoded, rng)
        except BadRow as bad:
            return {"sample": None, "skip": [bad.reason]}
        skips += ["dropped_empty_mask"] * empty
        aug = augment(image, masks, ignore, self.params, self.input_format, rng, self.min_mask_pixels,
                      stretched_size=self.stretched_size)
        chosen = choose_masks(aug.masks, aug.valid, self.masks_per_image, rng, self.min_mask_pixels,
                              self.mask_sampling)
        if chosen.size == 0:  # the crop or view lost every mask: fall back to the plain image
            aug = augment(image, masks, ignore, AugmentParams.no_augmentation(), self.input_format, rng, 1,
                          stretched_size=self.stretched_size)
            chosen = choose_masks(aug.masks, aug.valid, self.masks_per_image, rng, 1, self.mask_sampling)
            if chosen.size == 0:
                return {"sample": None, "skip": skips + ["no_clickable_mask"]}
        pairs = [sample_click_pairs(aug.masks[j], aug.valid, self.pairs_per_mask, rng) for j in chosen]
        frame = {}
        if self.stretched_size is not None:
            stretched, box = saliency_frame_inputs(aug, self.stretched_size)
            frame = {"saliency_pixel_values": stretched, "saliency_boxes": box}
        return {
            "sample": {
                **frame,
                "pixel_values": aug.pixel_values,
                "masks": torch.from_numpy(aug.masks[chosen]),
                "valid": torch.from_numpy(aug.valid),
                "positives": torch.from_numpy(np.stack([p.positives for p in pairs])),
                "negatives": torch.from_numpy(np.stack([p.negatives for p in pairs])),
                "negative_ok": torch.from_numpy(np.stack([p.negative_ok for p in pairs])),
            },
            "skip": skips,
        }

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        """`with_transform` form: a batch dict of columns -> a batch dict with `sample` and `skip` columns."""
        n = len(next(iter(batch.values())))
        out = [self.sample({key: values[i] for key, values in batch.items()}) for i in range(n)]
        return {"sample": [o["sample"] for o in out], "skip": [o["skip"] for o in out]}


def collate_click_sets(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Samples -> one batch of signed single-click sets.

    Every chosen mask contributes K positive sets (one click +1, target m) and K negative sets (one click −1,
    target m), in the order [image, mask, pair, sign]. Returns
        pixel_values (B, 3, S, S); points (N, 1, 2); labels (N, 1); image_index (N,); target_masks (N, 1, S, S)
        bool; target_valid (N, 1, S, S) bool; skipped (len(SKIP_REASONS),) long; and, for the stretched saliency
        frame, saliency_pixel_values (B, 3, s, s) and saliency_boxes (B, 4).
    """
    skipped = torch.zeros(len(SKIP_REASONS), dtype=torch.long)
    pixels, points, labels, index, targets, valids = [], [], [], [], [], []
    frame: dict[str, list[torch.Tensor]] = {"saliency_pixel_values": [], "saliency_boxes": []}
    for item in items:
        for reason in item["skip"]:
            skipped[SKIP_REASONS.index(reason)] += 1
        sample = item["sample"]
        if sample is None:
            continue
        b = len(pixels)
        pixels.append(sample["pixel_values"])
        for key in frame:
            if key in sample:
                frame[key].append(sample[key])
        for j in range(sample["masks"].shape[0]):
            for k in range(sample["positives"].shape[1]):
                for sign, point, ok in (
                    (1, sample["positives"][j, k], True),
                    (-1, sample["negatives"][j, k], bool(sample["negative_ok"][j, k])),
                ):
                    if not ok:
                        continue
                    points.append(point)
                    labels.append(sign)
                    index.append(b)
                    targets.append(sample["masks"][j])
                    valids.append(sample["valid"])
    if not pixels:
        return {"pixel_values": torch.zeros(0, 3, 1, 1), "skipped": skipped}
    return {
        "pixel_values": torch.stack(pixels),
        "points": torch.stack(points)[:, None, :].float(),
        "labels": torch.tensor(labels, dtype=torch.long)[:, None],
        "image_index": torch.tensor(index, dtype=torch.long),
        "target_masks": torch.stack(targets)[:, None],
        "target_valid": torch.stack(valids)[:, None],
        "skipped": skipped,
        **{key: torch.stack(values) for key, values in frame.items() if values},
    }
