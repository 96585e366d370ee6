"""The `Sample` record every layout yields, and the checked image / mask file readers behind it.

Arrays are indexed [row, column] = [y, x]; an image is (H, W, 3) uint8 RGB and every mask (H, W) bool of the same
(H, W). Readers raise `SampleError` (a `ValueError` naming the offending file, with a machine-readable `reason`)
for a corrupt file or a size mismatch, so a converter can skip and count bad rows while a benchmark run fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError


class SampleError(ValueError):
    """A file that cannot become a valid `Sample`. `reason` is one of `REASONS`; the message names the file."""

    REASONS = ("missing_file", "corrupt_image", "corrupt_mask", "size_mismatch")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Sample:
    """One benchmark instance or training image.

    Attributes:
        id: identifier unique within its source (usually the file stem).
        image: (H, W, 3) uint8 RGB.
        masks: list of (H, W) bool arrays, one per object / region; readers never yield an all-False mask.
        ignore: (H, W) bool, True where a pixel counts neither for nor against (GrabCut's 128 band), else None.
        source: layout / dataset name, e.g. "grabcut".
        image_file: the file `image` was decoded from when its bytes decode to exactly `image` (RGB, no rotating EXIF
            orientation): converters then store those bytes instead of re-encoding. None for converted (grayscale,
            palette, ...) or synthetic images.
    """

    id: str
    image: np.ndarray
    masks: list[np.ndarray]
    ignore: np.ndarray | None
    source: str
    image_file: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


def require_file(path: Path) -> Path:
    """Return `path` if it is a file, else raise `SampleError("missing_file")`."""
    if not path.is_file():
        raise SampleError("missing_file", f"missing file: {path}")
    return path


def find_file(folder: Path, stem: str, extensions: tuple[str, ...]) -> Path:
    """The first existing `folder/<stem><ext>` over `extensions` (e.g. (".jpg", ".JPG", ".bmp"))."""
    for ext in extensions:
        path = folder / f"{stem}{ext}"
        if path.is_file():
            return path
    raise SampleError("missing_file", f"missing file: {folder / stem}{{{','.join(extensions)}}}")


def read_rgb(path: Path) -> tuple[np.ndarray, bool]:
    """Decode an image file to (H, W, 3) uint8 RGB; also say whether its bytes can be stored as they are.

    Grayscale, palette, RGBA, CMYK, ... are converted with PIL's `convert("RGB")`. A rotating EXIF orientation is
    applied, so the image is the one a viewer (and `hf_iis.utils.image_io.load_image`) shows; mask files are read as
    stored.
    The flag is True when the file is RGB and carries no rotating EXIF orientation, i.e. any PIL decoder (whether it
    applies the orientation, like `datasets.Image`, or not) gives exactly the returned array; a turned image is
    re-encoded by converters, never stored as its original bytes.
    """
    require_file(path)
    try:
        with Image.open(path) as im:
            im.load()
            orientation = im.getexif().get(ExifTags.Base.Orientation)
            was_rgb = im.mode == "RGB" and orientation in (None, 1)
            turned = im if orientation in (None, 1) else ImageOps.exif_transpose(im)
            rgb = turned if turned.mode == "RGB" else turned.convert("RGB")
            array = np.asarray(rgb, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise SampleError("corrupt_image", f"corrupt image file {path}: {err}") from err
    return array, was_rgb


def read_label(path: Path, keep_palette: bool = False) -> np.ndarray:
    """Decode a mask / label file to a 2-D integer array (H, W).

    Multi-channel masks (RGB, RGBA) reduce to the max over colour channels (the RITM convention: a pixel marked in
    any channel is marked). A palette ("P") image gives its palette indices when `keep_palette`, else its luminance.
    """
    require_file(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P" and not keep_palette:
                im = im.convert("RGB")
            elif im.mode in ("LA", "PA"):
                im = im.convert("L")
            array = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise SampleError("corrupt_mask", f"corrupt mask file {path}: {err}") from err
    if array.ndim == 3:
        array = array[..., :3].max(axis=2)
    return array


def check_size(image: np.ndarray, array: np.ndarray, path: Path | str) -> None:
    """Raise `SampleError("size_mismatch")` naming `path` unless `array` is (H, W) of the (H, W, 3) `image`."""
    if tuple(array.shape[:2]) != tuple(image.shape[:2]):
        raise SampleError(
            "size_mismatch",
            f"mask {path} has size (H, W) = {tuple(array.shape[:2])}, image has {tuple(image.shape[:2])}",
        )


def nonempty(masks: list[np.ndarray]) -> list[np.ndarray]:
    """The masks with at least one True pixel, in order."""
    return [m for m in masks if m.any()]


def dedupe(masks: list[np.ndarray]) -> list[np.ndarray]:
    """The masks without exact (pixel-identical) repeats, first occurrence kept, in order."""
    seen: set[bytes] = set()
    out: list[np.ndarray] = []
    for mask in masks:
        key = repr(mask.shape).encode() + np.packbits(mask).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(mask)
    return out
