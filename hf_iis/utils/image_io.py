"""Validation of what users pass in: images, signed clicks and previous masks.

Every failure is a `ValueError` (or `FileNotFoundError`) whose message names the problem and the accepted form,
raised before anything reaches torch.

Numpy scalars count as the Python value they hold, everywhere: `np.int64(3)` is 3, `np.float32(2.5)` is 2.5, and
`np.True_` is `True`, so it is refused wherever `True` is (as a click sign, a coordinate or a count) and accepted
wherever a flag is (`return_uncertainty`). Strings are never numbers: `"10"` is not a coordinate.
"""

from __future__ import annotations

import numbers
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000  # about 7300 x 5500; larger images should be downscaled by the caller
MIN_SIDE = 8
ACCEPTED_IMAGE = "a path to an image file, a PIL.Image, or an (H, W, 3) uint8 numpy array"
ACCEPTED_CLICK = "(x, y, sign) with x = column and y = row in original-image pixels and sign +1 or -1"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's int64 range (2**70 overflows inside torch)


def load_image(image, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return the image as an (H, W, 3) uint8 RGB array. Grayscale and RGBA inputs are converted to RGB.

    A file or PIL image with an EXIF orientation (phone photos) is turned the way a viewer shows it, so clicks are
    read, and masks come back, in that frame (as transformers' own `load_image` does).

    A file's size is read from its header and checked against `max_pixels` before anything is decoded; with
    `max_pixels=None` the budget for files is PIL's `Image.MAX_IMAGE_PIXELS` (its decompression-bomb warning
    threshold). Over budget, or over PIL's decompression-bomb limit, is the same ValueError ("over the budget").
    """
    if isinstance(image, str) and _URL.match(image):
        # Path() would fold "https://host/x" into "https:/host/x" and report that as missing
        raise ValueError(f"image {image!r} is a URL; URLs are not fetched: download the file and pass its local "
                         f"path, or pass a PIL.Image")
    if isinstance(image, (str, os.PathLike)):
        image = _read_image_file(Path(image), max_pixels)
    if isinstance(image, Image.Image):
        array = _pil_to_rgb_array(upright(image))
    elif isinstance(image, np.ndarray):
        array = _array_to_rgb(image)
    else:
        raise ValueError(f"unsupported image type {type(image).__name__}; pass {ACCEPTED_IMAGE}")
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is {width}x{height} pixels; both sides must be at least {MIN_SIDE} pixels")
    if max_pixels is not None and height * width > max_pixels:
        raise ValueError(_over_budget(f"{width}x{height} = {height * width}", max_pixels))
    return np.ascontiguousarray(array)


def _over_budget(size: str, budget: int, what: str = "raise max_pixels") -> str:
    return f"image is {size} pixels, over the budget of {budget}; downscale it first or {what}"


def _read_image_file(path: Path, max_pixels: int | None) -> Image.Image:
    """Open `path`, check its header size against the budget, then decode it upright (EXIF orientation applied)."""
    if path.is_dir():
        raise ValueError(f"image path {path} is a directory; pass an image file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    corrupt = f"cannot read image file {path}: it is corrupt or not an image"
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the budget check below refuses such images instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)  # lazy: reads the header only
    except Image.DecompressionBombError as error:  # over 2 x Image.MAX_IMAGE_PIXELS: PIL refuses to open it
        match = re.search(r"\((\d+) pixels\)", str(error))
        size = match.group(1) if match else "over PIL's decompression-bomb limit of"
        limit = 2 * Image.MAX_IMAGE_PIXELS
        if max_pixels is not None and max_pixels < limit:
            raise ValueError(_over_budget(size, max_pixels)) from None
        raise ValueError(_over_budget(size, limit, "raise PIL.Image.MAX_IMAGE_PIXELS (PIL's own limit)")) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{corrupt} ({error})") from None
    with opened:
        width, height = opened.size
        budget = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
        if budget is not None and width * height > budget:
            # PNG's getexif() decodes the pixels to look for an eXIf chunk after them: only a header one counts
            header_exif = opened.format != "PNG" or "exif" in opened.info
            if header_exif and opened.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):  # quarter turn
                width, height = height, width
            what = "raise max_pixels" if max_pixels is not None else "raise PIL.Image.MAX_IMAGE_PIXELS"
            raise ValueError(_over_budget(f"{width}x{height} = {width * height}", budget, what))
        try:
            opened.load()
            image = upright(opened)
            return opened.copy() if image is opened else image
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"{corrupt} ({error})") from None


def upright(image: Image.Image) -> Image.Image:
    """`image` turned as its EXIF orientation tag says (a new image without the tag), or `image` itself."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _pil_to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raise ValueError(
            f"image mode {image.mode!r} has more than 8 bits per channel; convert it to 8-bit RGB "
            f"(e.g. scale to 0..255 and use Image.fromarray(array.astype('uint8')))"
        )
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        if array.dtype == np.uint16 or array.dtype.itemsize > 1:
            raise ValueError(
                f"image array has dtype {array.dtype}; pass 8-bit data: {ACCEPTED_IMAGE} "
                f"(for 16-bit or float images, rescale to 0..255 and cast to uint8)"
            )
        raise ValueError(f"image array has dtype {array.dtype}; pass {ACCEPTED_IMAGE}")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 4:
        return _pil_to_rgb_array(Image.fromarray(array, mode="RGBA"))
    if array.ndim == 3 and array.shape[2] == 3:
        return array
    raise ValueError(f"image array has shape {array.shape}; pass {ACCEPTED_IMAGE}")


def is_bool(value) -> bool:
    """True for `True`, `False` and numpy's bools (`np.True_`): what a flag takes and a number refuses."""
    return isinstance(value, (bool, np.bool_))


def is_real_number(value) -> bool:
    """True for ints and floats, numpy's included; False for bools, strings and complex numbers."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def is_whole_number(value) -> bool:
    """True for ints and integral floats (numpy scalars included), False for bools (numpy's too), strings and 2.5:
    the check behind the count options (`tta=n`, `triangulation=K`)."""
    if is_bool(value) or isinstance(value, str):
        return False
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False


def validate_clicks(clicks, width: int, height: int) -> list[tuple[float, float, int]]:
    """Check a list of signed clicks against an image of `width` x `height`; returns [(x, y, sign), ...]."""
    clicks = _to_numpy(clicks)  # a torch tensor of clicks reads as the array it holds
    if clicks is None or (isinstance(clicks, Sequence) and len(clicks) == 0) or (
        isinstance(clicks, np.ndarray) and clicks.size == 0
    ):
        raise ValueError(f"no clicks given; pass clicks=[(x, y, sign), ...], each {ACCEPTED_CLICK}")
    if isinstance(clicks, np.ndarray):
        clicks = clicks.tolist()
    if not isinstance(clicks, Sequence) or isinstance(clicks, str):
        raise ValueError(f"clicks must be a list of {ACCEPTED_CLICK}; got {type(clicks).__name__}")
    if len(clicks) == 3 and all(isinstance(v, (int, float, np.number)) for v in clicks):
        raise ValueError(f"clicks must be a list of clicks, e.g. [(x, y, 1)]; got a single click {tuple(clicks)}")
    out = []
    for index, click in enumerate(clicks):
        if not isinstance(click, (Sequence, np.ndarray)) or len(click) != 3:
            raise ValueError(f"click {index} is {click!r}; each click must be {ACCEPTED_CLICK}")
        x, y, sign = click
        if not (is_real_number(x) and is_real_number(y)):  # "10" and True are not coordinates
            raise ValueError(f"click {index} has non-numeric coordinates {click!r}; expected {ACCEPTED_CLICK}")
        x, y = float(x), float(y)
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"click {index} has non-finite coordinates {click!r}")
        if not is_real_number(sign) or sign not in (1, -1):
            raise ValueError(f"click {index} has sign {sign!r}; the sign must be +1 (object) or -1 (not object)")
        if not (-0.5 <= x < width - 0.5 + 1e-9 and -0.5 <= y < height - 0.5 + 1e-9):
            raise ValueError(
                f"click {index} at (x={x:g}, y={y:g}) is outside the {width}x{height} image; "
                f"x must be in [0, {width - 1}] and y in [0, {height - 1}]"
            )
        out.append((x, y, int(sign)))
    return out


def _to_numpy(value):
    """A torch tensor (on any device, with or without grad) as a numpy array, without importing torch here;
    anything else unchanged. The pipeline moves its inputs to the model's device before the predictor checks them."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def validate_prev_mask(prev_mask, width: int, height: int) -> np.ndarray | None:
    """A previous mask as float32 (H, W) probabilities in [0, 1]; accepts a PIL image (0..255) or an array."""
    if prev_mask is None:
        return None
    if isinstance(prev_mask, Image.Image):
        prev_mask = np.asarray(prev_mask.convert("L"), dtype=np.float32) / 255.0
    array = np.asarray(_to_numpy(prev_mask))
    if array.ndim != 2 or array.shape != (height, width):
        raise ValueError(f"prev_mask has shape {array.shape}; it must be (H, W) = ({height}, {width}), the image size")
    if not _is_real_array(array):  # a cast would drop the imaginary part or fail on strings
        raise ValueError(f"prev_mask has dtype {array.dtype}; it must hold real probabilities in [0, 1] "
                         f"(or uint8 0..255)")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ValueError("prev_mask must hold probabilities in [0, 1] (or uint8 0..255)")
    return array


def validate_prev_logits(prev_logits, size: int) -> np.ndarray | None:
    """Model-frame logits fed back as the previous mask (`Prediction.input_logits`): float32 (size, size), the
    padded model-input square, finite. A leading batch / channel axis of length 1 is accepted and dropped."""
    if prev_logits is None:
        return None
    array = np.asarray(_to_numpy(prev_logits))
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (size, size) or not _is_real_array(array):
        raise ValueError(f"prev_logits has shape {np.shape(prev_logits)}; it must be ({size}, {size}), the model-input "
                         f"square, as a previous prediction's input_logits (for a map at the image size use prev_mask)")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("prev_logits must be finite logits (a previous prediction's input_logits)")
    return array


def _is_real_array(array: np.ndarray) -> bool:
    return array.dtype == np.bool_ or (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array))


def check_seed(seed) -> int:
    """The triangulation sampler's seed as an int in [0, 2**63 - 1] (`MAX_SEED`); numpy ints count as ints."""
    if not isinstance(seed, numbers.Integral) or is_bool(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be a whole number in [0, 2**63 - 1], got {seed!r}")
    return int(seed)


def check_flag(value, name: str) -> bool:
    """A yes / no option (`return_uncertainty`) as a bool: True or False (numpy's too), never "no" or 1."""
    if not is_bool(value):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_threshold(threshold) -> float:
    """The mask threshold as a float strictly between 0 and 1."""
    if not is_real_number(threshold) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


def check_points_per_batch(points_per_batch) -> int:
    """How many click sets one decoder call takes, as an int >= 1 (a memory / speed knob: results do not change)."""
    whole = isinstance(points_per_batch, numbers.Integral) and not isinstance(points_per_batch, bool)
    if not whole or points_per_batch < 1:
        raise ValueError(f"points_per_batch must be a whole number >= 1, got {points_per_batch!r}")
    return int(points_per_batch)
