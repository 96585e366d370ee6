"""What a visitor uploads, decoded for the model: every refusal is a ValueError with a message meant for that visitor
(what is wrong with the file and what to upload instead), never Python advice or a server path.

    upload = read_upload(payload)          # a Gradio file payload, a path, a PIL image or an (H, W, 3) array
    upload.image                           # RGB uint8, downscaled to at most `max_pixels` for the model
    upload.size                            # (W, H) as uploaded (EXIF orientation applied)

A file's size is read from its header first: over `MAX_UPLOAD_PIXELS` (or over PIL's decompression-bomb limit) it
is refused before decoding; a JPEG over the model's budget is decoded at reduced size.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from gradio.data_classes import FileData
from PIL import Image, ImageOps, UnidentifiedImageError

from ..utils.image_io import load_image

MAX_MODEL_PIXELS = int(os.environ.get("HF_IIS_SPACE_MAX_PIXELS", 2_000_000))  # the model sees at most this many
MAX_UPLOAD_PIXELS = 100_000_000  # refused before decoding (decompression bombs)
FORMATS = "a PNG, JPEG, WebP, BMP or TIFF image"
DEEP_MODES = {  # PIL modes with more than 8 bits per channel, as a visitor would name them
    "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale", "I;16N": "16-bit grayscale",
    "I": "32-bit grayscale", "F": "32-bit floating-point grayscale",
}


class Upload(NamedTuple):
    image: np.ndarray  # (h, w, 3) uint8, what the model sees
    size: tuple[int, int]  # (W, H) of the upload as a viewer shows it
    name: str  # the visitor's file name


def upload_path(value: Any) -> str | None:
    """The file behind an upload (Gradio file payload or its dict, or a path); None for in-memory images."""
    if isinstance(value, FileData):
        value = value.model_dump()
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if isinstance(value, (str, os.PathLike)) else None


def read_upload(value: Any, max_pixels: int = MAX_MODEL_PIXELS) -> Upload:
    """An upload (Gradio file payload, path, PIL image or array) -> `Upload`; the model image is downscaled to at
    most `max_pixels`. Anything unusable raises ValueError with a message for the person who uploaded it."""
    name, size = "image", None
    if isinstance(value, FileData):
        value = value.model_dump()
    if isinstance(value, dict):
        name = value.get("orig_name") or Path(str(value.get("path"))).name
        value = value.get("path")
    if value is None:
        raise ValueError("no image: upload an image (or pick an example) first")
    if isinstance(value, (str, os.PathLike)):
        name = name if name != "image" else Path(value).name
        value, size = open_image(Path(value), name, max_pixels)
    check_depth(value, name)
    image = load_image(value, max_pixels=None)  # RGB uint8; readable ValueError for tiny images
    width, height = size or (image.shape[1], image.shape[0])
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        target = (max(8, int(width * scale)), max(8, int(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0))
    return Upload(np.ascontiguousarray(image), (int(width), int(height)), name)


def too_large(name: str, pixels: int | None) -> str:
    what = f"{pixels / 1e6:.0f} megapixels" if pixels else "too many megapixels to open safely"
    return (f"“{name}” is {what}; the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels: downscale it (or crop it) "
            f"and upload it again")


def check_depth(image: Any, name: str) -> None:
    """Refuse images with more than 8 bits per channel (16-bit scans, medical or scientific images) readably."""
    if isinstance(image, Image.Image):
        depth = DEEP_MODES.get(image.mode)
    elif isinstance(image, np.ndarray) and image.dtype != np.uint8:
        depth = f"{8 * image.dtype.itemsize}-bit" + (" grayscale" if image.ndim == 2 else "")
    else:
        return
    if depth:
        raise ValueError(f"“{name}” is a {depth} image, and {depth} images are not supported: save it as an 8-bit "
                         f"PNG or JPEG and upload it again")


def open_image(path: Path, name: str, max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an uploaded file (JPEGs over budget at reduced size); returns it with its displayed (W, H)."""
    if not path.is_file():
        raise ValueError(f"“{name}” was not received; upload it again")
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size is checked below, with a message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
    except Image.DecompressionBombError as error:  # over 2 x Image.MAX_IMAGE_PIXELS: PIL will not open it
        match = re.search(r"\((\d+) pixels\)", str(error))
        raise ValueError(too_large(name, int(match.group(1)) if match else None)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise _unreadable(path, name, error) from None
    try:
        with opened:
            width, height = opened.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise ValueError(too_large(name, width * height))
            check_depth(opened, name)  # before decoding a 16-bit scan only to refuse it
            if opened.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation with a quarter turn
                width, height = height, width
            if opened.format == "JPEG" and width * height > max_pixels:  # decode at 1/2, 1/4 or 1/8 scale,
                scale = math.sqrt(max_pixels / (width * height))  # never below the model's size
                opened.draft("RGB", (math.ceil(opened.size[0] * scale), math.ceil(opened.size[1] * scale)))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise _unreadable(path, name, error) from None
    return image, (width, height)


def _unreadable(path: Path, name: str, error: BaseException) -> ValueError:
    import logging

    logging.getLogger("hf_iis.space").info("unreadable upload %s: %s", path, error)
    return ValueError(f"“{name}” is not an image that can be read (corrupt file or unsupported format); "
                      f"upload {FORMATS}")
