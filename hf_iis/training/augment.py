"""Training augmentation, applied consistently to the image, its masks and its ignore map.

    object-box crop (as zoom-in inference crops) or random crop (area / aspect jitter)
    ->  resize longest side to S  ->  photometric jitter (kornia)
    ->  normalise as the image processor does ((x − mean) / std, `InputFormat`) and pad to S x S at the top-left
        (padding 0, as the image processor)
    ->  a random view of `hf_iis.scaling.tta.VIEW_ORDER` (D4 and rescales), cropped / padded back to S x S

What may happen is `AugmentParams` (the run config's `data.augment`); the frame it ends in (side S, normalisation)
is `InputFormat`, taken from the model's image processor (`InputFormat.of_processor`), so training and serving
normalise alike. Clicks are sampled afterwards, in the augmented frame (see `sampling.py`), so they always agree
with the masks. `Geometry.map_points` maps original-image points (x, y) into the augmented frame, for tests and
debugging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..scaling.tta import VIEW_ORDER, VIEWS_BY_NAME, View
from .config import AugmentParams

__all__ = ["AugmentParams", "AugmentedSample", "Geometry", "InputFormat", "augment", "photometric_jitter"]


@dataclass(frozen=True)
class InputFormat:
    """The model input the augmentation produces: a `size` x `size` square, pixels (x / 255 − mean) / std, padding 0.

    The defaults are `SignedClickImageProcessor`'s and `SignedClickConfig`'s (0.5, 0.5): pixels in [−1, 1]. Training
    takes it from the image processor saved with the model (`of_processor`), so it cannot drift from serving.
    """

    size: int
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got {self.mean}, {self.std}")

    @classmethod
    def of_processor(cls, processor) -> InputFormat:
        """The format of a `SignedClickImageProcessor` (its `size`, `image_mean`, `image_std`)."""
        return cls(int(processor.size), tuple(processor.image_mean), tuple(processor.image_std))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) float in [0, 1] -> normalised, in float32 arithmetic as the processor's (same values)."""
        mean = torch.tensor(self.mean, dtype=image.dtype).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype).view(3, 1, 1)
        return (image - mean) / std


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
        stretched: (3, s, s) float32 in [0, 1] when `augment` was asked for it (`stretched_size` = s): the crop of the
            original photo stretched to s × s (PIL Lanczos, as inference stretches the photo) with the same
            photometric jitter, before the view; the stretched saliency frame's input (`geometry` says where the
            photo lies in `pixel_values`). Stretched from the original pixels, not from the resized crop, because
            U²-Net is sensitive to its input's sharpness (docs/results_multimask.md, § 6). None otherwise.
    """

    pixel_values: torch.Tensor
    masks: np.ndarray
    valid: np.ndarray
    geometry: Geometry
    stretched: torch.Tensor | None = None


def _object_crop(shape: tuple[int, int], masks: np.ndarray, params: AugmentParams,
                 rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    """The box of a random mask, widened as zoom-in inference widens the estimate's box (`zoom_geometry.crop_box`)
    with a margin drawn from `object_crop_margin`; None when no mask has a pixel."""
    from ..scaling.zoom_geometry import CropBox, crop_box

    present = [k for k in range(len(masks)) if masks[k].any()]
    if not present:
        return None
    rows, cols = np.nonzero(masks[present[int(rng.integers(len(present)))]])
    tight = CropBox(int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    height, width = shape
    box = crop_box(tight, float(rng.uniform(*params.object_crop_margin)), params.object_crop_min_size, width, height)
    return (box.x0, box.y0, box.width, box.height)


def _random_crop(
    shape: tuple[int, int], masks: np.ndarray, params: AugmentParams, rng: np.random.Generator, min_mask_pixels: int
) -> tuple[int, int, int, int]:
    height, width = shape
    full = (0, 0, width, height)
    if params.object_crop_prob > 0 and rng.random() < params.object_crop_prob:
        box = _object_crop(shape, masks, params, rng)
        if box is not None:
            return box
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
                               >= min_mask_pixels).any():
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
    input_format: InputFormat,
    rng: np.random.Generator,
    min_mask_pixels: int = 16,
    stretched_size: int | None = None,
) -> AugmentedSample:
    """Augment one image (H, W, 3) uint8 with its masks (M, H, W) bool and optional ignore (H, W) bool into
    `input_format`; a random crop keeps at least one mask with `min_mask_pixels` pixels. With `stretched_size`, also
    the crop stretched to that square (`AugmentedSample.stretched`); the other outputs and the draws from `rng` are the
    same either way."""
    size = input_format.size
    height, width = image.shape[:2]
    x0, y0, cw, ch = _random_crop((height, width), masks, params, rng, min_mask_pixels)
    scale = size / max(cw, ch)
    resized = (max(1, int(round(ch * scale))), max(1, int(round(cw * scale))))

    img = torch.from_numpy(np.array(image[y0 : y0 + ch, x0 : x0 + cw])).permute(2, 0, 1).float() / 255.0
    img = _resize(img[None], resized, "bilinear")[0].clamp(0.0, 1.0)
    stretched = None
    if stretched_size is not None:
        import copy

        from PIL import Image

        crop = Image.fromarray(np.ascontiguousarray(image[y0 : y0 + ch, x0 : x0 + cw]))
        square = np.asarray(crop.resize((stretched_size, stretched_size), Image.LANCZOS), dtype=np.float32) / 255.0
        # the same jitter as the model input's: a copy of the generator draws the same parameters
        stretched = photometric_jitter(torch.from_numpy(square).permute(2, 0, 1), params, copy.deepcopy(rng))
    img = photometric_jitter(img, params, rng)
    maps = np.concatenate(
        [masks[:, y0 : y0 + ch, x0 : x0 + cw],
         np.ones((1, ch, cw), dtype=bool),
         (ignore if ignore is not None else np.zeros((height, width), bool))[None, y0 : y0 + ch, x0 : x0 + cw]],
        axis=0,
    )
    maps_t = _resize(torch.from_numpy(maps).to(torch.uint8)[None], resized, "nearest")[0]

    pixels = F.pad(input_format.normalize(img), (0, size - resized[1], 0, size - resized[0]))
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
        stretched=stretched,
    )


def saliency_frame_inputs(aug: AugmentedSample, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stretched saliency frame's inputs of an augmented sample built with `stretched_size=size`: (3, size, size)
    the branch's input (the crop stretched, then the sample's view) and (4,) the photo's box (y0, x0, y1, x1) in the
    model input, as `SignedClickModel.encode_image` takes them and the predictors build them at inference."""
    from ..backbones.saliency_frame import stretched_photo
    from ..scaling.view_boxes import view_box, view_stretched

    if aug.stretched is None:
        raise ValueError("the sample has no stretched photo: call augment(..., stretched_size=size)")
    geometry = aug.geometry
    stretched = view_stretched(geometry.view, stretched_photo(aug.stretched, size))
    return stretched, torch.tensor(view_box(geometry.view, geometry.resized, geometry.size))
