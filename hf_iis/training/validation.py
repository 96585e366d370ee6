"""Validation: mIoU@1 with one random positive click per instance (the seed's protocol), at the model resolution,
and beside it mIoU@1 with the center click (the standard clicker's first click, what the benchmarks' mIoU@1 uses).

Each validation image contributes one mask (drawn with a generator seeded by its position, so every validation of
a run and of a resumed run sees the same instances and clicks), preprocessed as the image processor does (resize
the longest side to S, normalise with its mean and std, pad at the top-left: `InputFormat`). IoU counts valid
pixels only (not padding, not ignore).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.rows import BadRow, decode_row, undecoded
from ..utils.clicker import center_click
from .augment import AugmentParams, InputFormat, augment, saliency_frame_inputs
from .sampling import choose_masks, sample_pixels


@dataclass
class ValidationSet:
    pixel_values: torch.Tensor  # (V, 3, S, S)
    masks: torch.Tensor  # (V, 1, S, S) bool
    valid: torch.Tensor  # (V, 1, S, S) bool
    points: torch.Tensor  # (V, 1, 2) random positive click, (x, y)
    center_points: torch.Tensor  # (V, 1, 2) the center click of the same mask
    frame: dict[str, torch.Tensor] | None = None  # the stretched saliency frame's inputs, when the model uses it

    def __len__(self) -> int:
        return self.pixel_values.shape[0]


def build_validation_set(dataset, input_format: InputFormat, max_images: int = 80, seed: int = 0,
                         stretched_size: int | None = None) -> ValidationSet:
    """The first `max_images` usable rows of `dataset` (map-style or iterable), in the model's `input_format`; with
    `stretched_size` (a model with `config.saliency_frame="stretched"`) also the saliency branch's own inputs."""
    params = AugmentParams.no_augmentation()
    pixels, masks, valids, points, centers = [], [], [], [], []
    stretched, boxes = [], []
    for index, row in enumerate(undecoded(dataset)):
        if len(pixels) >= max_images:
            break
        try:
            image, row_masks, ignore, _ = decode_row(row)
        except BadRow:
            continue
        rng = np.random.default_rng([seed, index])
        aug = augment(image, row_masks, ignore, params, input_format, rng, stretched_size=stretched_size)
        chosen = choose_masks(aug.masks, aug.valid, 1, rng)
        if chosen.size == 0:
            continue
        mask = aug.masks[chosen[0]]
        pixels.append(aug.pixel_values)
        if stretched_size is not None:
            photo, box = saliency_frame_inputs(aug, stretched_size)
            stretched.append(photo)
            boxes.append(box)
        masks.append(torch.from_numpy(mask)[None])
        valids.append(torch.from_numpy(aug.valid)[None])
        points.append(torch.from_numpy(sample_pixels(mask & aug.valid, 1, rng)))
        center = center_click(mask & aug.valid, ~aug.valid)
        centers.append(torch.tensor([[center.x, center.y]], dtype=torch.float32))
    if not pixels:
        raise ValueError("no usable validation image")
    frame = None
    if stretched_size is not None:
        frame = {"saliency_pixel_values": torch.stack(stretched), "saliency_boxes": torch.stack(boxes)}
    return ValidationSet(torch.stack(pixels), torch.stack(masks), torch.stack(valids), torch.stack(points),
                         torch.stack(centers), frame)


@torch.no_grad()
def evaluate_miou_at_1(model, valset: ValidationSet, batch_size: int = 8) -> dict[str, float]:
    """{"miou@1": random click, "miou@1_center": center click, "n": instances}: mean IoU over the instances."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ious = {"random": [], "center": []}
    for start in range(0, len(valset), batch_size):
        sl = slice(start, start + batch_size)
        px = valset.pixel_values[sl].to(device)
        frame = {} if valset.frame is None else {k: v[sl].to(device) for k, v in valset.frame.items()}
        embeddings = model.encode_image(px, **frame)  # once for both clicks
        gt, valid = valset.masks[sl].to(device), valset.valid[sl].to(device)
        for name, pts in (("random", valset.points[sl]), ("center", valset.center_points[sl])):
            pts = pts.to(device)
            labels = torch.ones(pts.shape[:2], dtype=torch.long, device=device)
            pred = model.decode(embeddings, pts, labels).float() > 0
            inter = (pred & gt & valid).flatten(1).sum(1).float()
            union = ((pred | gt) & valid).flatten(1).sum(1).float().clamp_min(1.0)
            ious[name].append((inter / union).cpu())
    model.train(was_training)
    random_iou, center_iou = torch.cat(ious["random"]), torch.cat(ious["center"])
    return {"miou@1": float(random_iou.mean()), "miou@1_center": float(center_iou.mean()), "n": int(random_iou.numel())}
