"""The corpus row: its one feature schema and its one decoder (training, validation and evaluation all read rows so).

One row per image, with features (`features()`):

    image   Image()        RGB
    masks   List(Image())  one mode-"L" PNG per object / region, 0 background, 255 object (> 127 = object)
    ignore  Image()        mode-"L" PNG, 255 = ignore pixel; None if nothing
    id      string
    source  string         layout name, e.g. "coco_mval"

`decode_row` reads a row whatever form its image cells have: PIL images (a decoding `datasets` feature), the
{"bytes", "path"} dicts of an `undecoded` dataset (so that one corrupt file makes one bad row, not a failed epoch),
or arrays. `datasets` is imported lazily.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from hf_iis.data.sample import Sample, SampleError

if TYPE_CHECKING:
    from datasets import Features

COLUMNS = ("image", "masks", "ignore", "id", "source")
IMAGE_COLUMNS = ("image", "ignore")


def features() -> Features:
    """The `datasets.Features` of every corpus row (see the module docstring)."""
    from datasets import Features, Image, List, Value

    return Features(
        {"image": Image(), "masks": List(Image()), "ignore": Image(), "id": Value("string"), "source": Value("string")}
    )


def undecoded(dataset):
    """The dataset with its image columns left as bytes, so a corrupt file is caught per row, not by datasets."""
    from datasets import Image as ImageFeature
    from datasets import List as ListFeature

    schema = getattr(dataset, "features", None)
    if schema is None:
        return dataset
    for name in IMAGE_COLUMNS:
        if name in schema and isinstance(schema[name], ImageFeature):
            dataset = dataset.cast_column(name, ImageFeature(decode=False))
    if "masks" in schema:
        inner = getattr(schema["masks"], "feature", None)
        if isinstance(inner, ImageFeature):
            dataset = dataset.cast_column("masks", ListFeature(ImageFeature(decode=False)))
    return dataset


class BadRow(SampleError):
    """A row that cannot be used; `reason` is one of `REASONS`."""

    REASONS = ("corrupt_image", "corrupt_mask", "size_mismatch", "no_masks", "empty_masks")

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(reason, message or reason)


def open_image(value: Any, mode: str) -> np.ndarray:
    """A row's image cell (PIL image, {"bytes", "path"} dict, or array) as an array in PIL `mode` ("RGB", "L")."""
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict):
        if value.get("bytes") is not None:
            image = Image.open(io.BytesIO(value["bytes"]))
        elif value.get("path"):
            image = Image.open(value["path"])
        else:
            raise ValueError("empty image value")
    elif isinstance(value, np.ndarray):
        return value
    else:
        raise ValueError(f"cannot read an image from {type(value).__name__}")
    image.load()
    return np.asarray(image.convert(mode))


def decode_row(
    row: dict[str, Any], max_masks: int | None = None, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """(image (H, W, 3) uint8, masks (M, H, W) bool, ignore (H, W) bool or None, number of empty masks dropped).

    With `max_masks`, only a uniform random subset of that many masks is decoded (BSDS rows hold hundreds); a mask
    drawn uniformly from the subset is still drawn uniformly from all of them.

    Raises:
        BadRow: with one of `BadRow.REASONS`.
    """
    try:
        image = open_image(row["image"], "RGB")
    except Exception as error:  # noqa: BLE001 - any decoding failure makes the row bad
        raise BadRow("corrupt_image") from error
    values = list(row.get("masks") or [])
    if max_masks is not None and len(values) > max_masks:
        rng = rng if rng is not None else np.random.default_rng()
        values = [values[i] for i in sorted(rng.choice(len(values), size=max_masks, replace=False))]
    masks, empty = [], 0
    for value in values:
        try:
            mask = open_image(value, "L") > 127
        except Exception as error:  # noqa: BLE001
            raise BadRow("corrupt_mask") from error
        if mask.shape != image.shape[:2]:
            raise BadRow("size_mismatch")
        if not mask.any():
            empty += 1
            continue
        masks.append(mask)
    ignore = None
    if row.get("ignore") is not None:
        try:
            ignore = open_image(row["ignore"], "L") > 127
        except Exception as error:  # noqa: BLE001
            raise BadRow("corrupt_mask") from error
        if ignore.shape != image.shape[:2]:
            raise BadRow("size_mismatch")
    if not masks:
        raise BadRow("empty_masks" if empty else "no_masks")
    return image, np.stack(masks), ignore, empty


def row_to_sample(row: dict[str, Any]) -> Sample:
    """A corpus row (decoded or not) as a `Sample`, by `decode_row` (empty masks left out).

    Raises:
        BadRow: the row has no usable mask, or a file that does not decode or does not fit the image.
    """
    image, masks, ignore, _ = decode_row(row)
    return Sample(id=row["id"], image=image, masks=list(masks), ignore=ignore, source=row["source"])
