"""Training augmentation, applied consistently to the image, its masks and its ignore map.

    random crop (area / aspect jitter)  ->  resize longest side to S  ->  photometric jitter (kornia)
    ->  normalise (mean 0.5, std 0.5) and pad to S x S at the top-left (padding 0, as the image processor)
    ->  a random view of `hf_iis.tta.VIEW_ORDER` (D4 and rescales), cropped / padded back to S x S

Clicks are sampled afterwards, in the augmented frame (see `sampling.py`), so they always agree with the masks.
`Geometry.map_points` maps original-image points (x, y) into the augmented frame, for tests and debugging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..tta import VIEW_ORDER, VIEWS_BY_NAME, View


@dataclass
class AugmentParams:
    """What `augment` may do; `DataSection` of the training config carries the same fields."""

    image_size: int = 320
    crop_prob: float = 0.5
    crop_min_area: float = 0.3
    crop_max_aspect: float = 1.5
    views: list[str] | None = None
    view_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    blur_prob: float = 0.1
    jitter_prob: float = 0.8
    min_mask_pixels: int = 16

    @classmethod
    def no_augmentation(cls, image_size: int) -> AugmentParams:
        return cls(image_size=image_size, crop_prob=0.0, view_prob=0.0, jitter_prob=0.0, blur_prob=0.0)


@dataclass
class Geometry:
    """The geometric part of one augmentation: crop box (x0, y0, w, h), resized size (h, w), view, square side."""

    crop: tuple[int, int, int, int]
    resized: tuple[int, int]
    view: View
    size: int

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) original-image (x, y) -> augmented-frame (x, y)."""
        x0, y0, cw, ch = self.crop
        h, w = self.resized
        pts = np.asarray(points, dtype=np.float64)
        x = (pts[..., 0] - x0 + 0.5) * w / cw - 0.5
        y = (pts[..., 1] - y0 + 0.5) * h / ch - 0.5
        mapped = self.view.apply_points(torch.from_numpy(np.stack([x, y], -1)), self.size)
        return mapped.numpy()


@dataclass
class AugmentedSample:
    """
    Attributes:
        pixel_values: (3, S, S) float32, normalised, padding 0.
        masks: (M, S, S) bool.
        valid: (S, S) bool; inside the image and not an ignore pixel (loss and clicks live here).
        geometry: how original points map into this frame.
    """

    pixel_values: torch.Tensor
    masks: np.ndarray
    valid: np.ndarray
    geometry: Geometry


def _random_crop(
    shape: tuple[int, int], masks: np.ndarray, params: AugmentParams, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    height, width = shape
    full = (0, 0, width, height)
    if params.crop_prob <= 0 or rng.random() >= params.crop_prob:
        return full
    for _ in range(5):
        area = rng.uniform(params.crop_min_area, 1.0) * height * width
        aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(max(params.crop_max_aspect, 1.0))))
        cw = int(round(min(width, np.sqrt(area * aspect))))
        ch = int(round(min(height, np.sqrt(area / aspect))))
        if cw < 8 or ch < 8:
            continue
        x0 = int(rng.integers(0, width - cw + 1))
        y0 = int(rng.integers(0, height - ch + 1))
        if len(masks) == 0 or (masks[:, y0 : y0 + ch, x0 : x0 + cw].reshape(len(masks), -1).sum(1)
                               >= params.min_mask_pixels).any():
            return (x0, y0, cw, ch)
    return full


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _hue_rotation(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the hue of (B, 3, H, W) RGB by `angle` radians in the YIQ chroma plane (one 3 x 3 matrix; the HSV
    round trip costs ~20x more on CPU)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    rotate = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    matrix = torch.linalg.inv(to_yiq) @ rotate @ to_yiq
    return torch.einsum("ij,bjhw->bihw", matrix.to(x.dtype), x)


def photometric_jitter(image: torch.Tensor, params: AugmentParams, rng: np.random.Generator) -> torch.Tensor:
    """Brightness / contrast / saturation / hue jitter (random order) and an occasional Gaussian blur of (3, H, W)
    in [0, 1]. Brightness, contrast and saturation use kornia.enhance; hue is a YIQ rotation."""
    import kornia

    x = image[None]
    if params.jitter_prob > 0 and rng.random() < params.jitter_prob:
        b = float(rng.uniform(-params.brightness, params.brightness))
        c = float(rng.uniform(1 - params.contrast, 1 + params.contrast))
        s = float(rng.uniform(1 - params.saturation, 1 + params.saturation))
        h = float(rng.uniform(-params.hue, params.hue) * 2 * np.pi)
        ops = [
            lambda t: kornia.enhance.adjust_brightness(t, b, clip_output=False),
            lambda t: kornia.enhance.adjust_contrast(t, c, clip_output=False),
            lambda t: kornia.enhance.adjust_saturation_with_gray_subtraction(t, s),
            lambda t: _hue_rotation(t, h),
        ]
        for index in rng.permutation(len(ops)):
            x = ops[index](x).clamp(0.0, 1.0)
    if params.blur_prob > 0 and rng.random() < params.blur_prob:
        sigma = float(rng.uniform(0.3, 1.5))
        x = kornia.filters.gaussian_blur2d(x, (5, 5), (sigma, sigma))
    return x[0]


def _pick_view(params: AugmentParams, rng: np.random.Generator) -> View:
    names = params.views if params.views is not None else [v.name for v in VIEW_ORDER]
    choices = [VIEWS_BY_NAME[name] for name in names if name != "identity"]
    if not choices or params.view_prob <= 0 or rng.random() >= params.view_prob:
        return VIEWS_BY_NAME["identity"]
    return choices[int(rng.integers(0, len(choices)))]


def _fit_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop or zero-pad (..., s, s) to (..., size, size), anchored at the top-left."""
    s = x.shape[-1]
    if s >= size:
        return x[..., :size, :size]
    return F.pad(x, (0, size - s, 0, size - s))


def augment(
    image: np.ndarray,
    masks: np.ndarray,
    ignore: np.ndarray | None,
    params: AugmentParams,
    rng: np.random.Generator,
) -> AugmentedSample:
    """Augment one image (H, W, 3) uint8 with its masks (M, H, W) bool and optional ignore (H, W) bool."""
    size = params.image_size
    height, width = image.shape[:2]
    x0, y0, cw, ch = _random_crop((height, width), masks, params, rng)
    scale = size / max(cw, ch)
    resized = (max(1, int(round(ch * scale))), max(1, int(round(cw * scale))))

    img = torch.from_numpy(np.array(image[y0 : y0 + ch, x0 : x0 + cw])).permute(2, 0, 1).float() / 255.0
    img = _resize(img[None], resized, "bilinear")[0].clamp(0.0, 1.0)
    img = photometric_jitter(img, params, rng)
    maps = np.concatenate(
        [masks[:, y0 : y0 + ch, x0 : x0 + cw],
         np.ones((1, ch, cw), dtype=bool),
         (ignore if ignore is not None else np.zeros((height, width), bool))[None, y0 : y0 + ch, x0 : x0 + cw]],
        axis=0,
    )
    maps_t = _resize(torch.from_numpy(maps).to(torch.uint8)[None], resized, "nearest")[0]

    pixels = F.pad(img * 2.0 - 1.0, (0, size - resized[1], 0, size - resized[0]))
    maps_t = F.pad(maps_t, (0, size - resized[1], 0, size - resized[0]))
    view = _pick_view(params, rng)
    if view.name != "identity":
        pixels = _fit_square(view.apply_image(pixels, mode="bilinear"), size)
        maps_t = _fit_square(view.apply_image(maps_t, mode="nearest"), size)
    maps_np = maps_t.numpy().astype(bool)
    area, ignored = maps_np[-2], maps_np[-1]
    return AugmentedSample(
        pixel_values=pixels.contiguous(),
        masks=maps_np[:-2] & area[None],
        valid=area & ~ignored,
        geometry=Geometry(crop=(x0, y0, cw, ch), resized=resized, view=view, size=size),
    )
