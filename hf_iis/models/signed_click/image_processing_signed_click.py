"""Image processor: resize the longest side to `size`, pad to a `size` x `size` square, normalise.

The image is placed at the top-left of the square; padding is 0 after normalisation. With (H, W) the original
size and (h, w) = round((H, W) · size / max(H, W)) the resized size, a point maps in and a map maps out exactly by

    x_in = (x + 0.5) · w / W − 0.5,    y_in = (y + 0.5) · h / H − 0.5
    map_out = bilinear_resize(map_in[:h, :w], (H, W))
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature


class SignedClickImageProcessor(PilBackend):
    r"""
    Args:
        size (`int`, *optional*, defaults to 384): side of the square model input (a multiple of 32).
        image_mean, image_std (`list[float]`, *optional*, default 0.5): normalisation of the offline
            EfficientNet-Lite weights (pixels end in [-1, 1]).
    """

    model_input_names = ["pixel_values"]
    size = 384
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]

    def __init__(self, size: int = 384, image_mean=None, image_std=None, **kwargs) -> None:
        kwargs.pop("size", None)
        super().__init__(**kwargs)
        if int(size) % 32:
            raise ValueError(f"size must be a multiple of 32, got {size}")
        self.size = int(size)
        self.image_mean = list(image_mean) if image_mean is not None else [0.5, 0.5, 0.5]
        self.image_std = list(image_std) if image_std is not None else [0.5, 0.5, 0.5]

    @classmethod
    def for_model_config(cls, config) -> SignedClickImageProcessor:
        """The serving processor of a model config: its input size and its pixel normalisation (`pixel_mean` /
        `pixel_std`), the one training normalises with too (`hf_iis.training.factory.input_format_for`)."""
        mean = getattr(config, "pixel_mean", None)
        std = getattr(config, "pixel_std", None)
        return cls(size=config.image_size, image_mean=None if mean is None else list(mean),
                   image_std=None if std is None else list(std))

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the image inside the square."""
        scale = self.size / max(height, width)
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))

    def preprocess(self, images, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """`images`: one or a list of (H, W, 3) uint8 arrays or PIL images (already validated RGB).

        Returns `pixel_values` (B, 3, size, size), `original_sizes` (B, 2) as (H, W), `reshaped_input_sizes`
        (B, 2) as (h, w).
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        pixels, originals, reshaped = [], [], []
        mean = np.asarray(self.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.image_std, dtype=np.float32)[:, None, None]
        for image in images:
            array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
            height, width = array.shape[:2]
            h, w = self.resized_size(height, width)
            resized = np.asarray(Image.fromarray(array).resize((w, h), Image.BILINEAR), dtype=np.float32)
            canvas = np.zeros((3, self.size, self.size), dtype=np.float32)
            canvas[:, :h, :w] = (resized.transpose(2, 0, 1) / 255.0 - mean) / std
            pixels.append(canvas)
            originals.append((height, width))
            reshaped.append((h, w))
        data = {
            "pixel_values": np.stack(pixels),
            "original_sizes": np.asarray(originals, dtype=np.int64),
            "reshaped_input_sizes": np.asarray(reshaped, dtype=np.int64),
        }
        return BatchFeature(data=data, tensor_type=return_tensors)

    def points_to_input(self, points: torch.Tensor, original_size, reshaped_size) -> torch.Tensor:
        """Map (..., 2) points (x, y) from original pixels to model-input pixels."""
        (height, width), (h, w) = tuple(original_size), tuple(reshaped_size)
        scale = torch.tensor([w / width, h / height], dtype=torch.float32, device=points.device)
        return (points.float() + 0.5) * scale - 0.5

    def map_to_input(self, maps: torch.Tensor, reshaped_size) -> torch.Tensor:
        """Resize (N, 1, H, W) maps (e.g. a previous mask) into the padded model-input frame (N, 1, size, size)."""
        h, w = tuple(int(v) for v in reshaped_size)
        resized = F.interpolate(maps.float(), size=(h, w), mode="bilinear", align_corners=False)
        return F.pad(resized, (0, self.size - w, 0, self.size - h))

    def map_to_original(self, maps: torch.Tensor, original_size, reshaped_size) -> torch.Tensor:
        """Crop the padding from (N, 1, size, size) maps and resize them to the original (N, 1, H, W)."""
        (height, width), (h, w) = tuple(int(v) for v in original_size), tuple(int(v) for v in reshaped_size)
        return F.interpolate(maps[..., :h, :w].float(), size=(height, width), mode="bilinear", align_corners=False)

    def valid_region(self, reshaped_size) -> torch.Tensor:
        """(1, 1, size, size) bool: True where the image is (not padding)."""
        h, w = tuple(int(v) for v in reshaped_size)
        valid = torch.zeros(1, 1, self.size, self.size, dtype=torch.bool)
        valid[..., :h, :w] = True
        return valid
