"""What the pipeline takes besides one image: lists, dict rows and datasets, turned into one input per image.

transformers' `Pipeline.__call__` already maps a list (or a torch `Dataset` such as `KeyDataset`, or a generator) to
one `preprocess` call per item, with the call's keywords shared by all. Interactive segmentation needs per-image
clicks, so each item may be a dict row, `{"image": ..., "clicks": ...}` (or `input_points` / `input_labels`,
`prev_mask`), and a keyword given as one entry per image (`clicks=[clicks_1, clicks_2]`) is zipped into such rows
here. Which one a `clicks=` keyword is, one click list for every image or one per image, is read from its nesting:
[(x, y, s), ...] is one list, [[(x, y, s), ...], ...] is one per image (for `input_points` [[x, y], ...] against
[[[x, y], ...], ...], for `input_labels` [1, 0] against [[1, 0], ...]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import GeneratorType

import numpy as np
from torch.utils.data import Dataset

from ..utils.image_io import _to_numpy

INPUT_KEYS = ("image", "clicks", "prev_mask", "input_points", "input_labels")
PER_IMAGE_KEYS = INPUT_KEYS[1:]
_ONE_SET_DEPTH = {"clicks": 2, "input_points": 2, "input_labels": 1}  # nesting of one image's entry


def _depth(value) -> int:
    """Nesting depth along the first elements: 2 for [(x, y, s)], 3 for [[(x, y, s)]], an array's ndim."""
    depth = 0
    while True:
        value = _to_numpy(value)
        if isinstance(value, np.ndarray):
            return depth + value.ndim
        if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence) or len(value) == 0:
            return depth
        depth += 1
        value = value[0]


def is_batch(inputs) -> bool:
    """True for what transformers runs item by item: lists, tuples, torch Datasets, generators and other
    iterators, and `datasets` datasets. Images (paths, PIL images, arrays) and dict rows are single inputs."""
    if isinstance(inputs, (list, tuple, Dataset)) or is_hf_dataset(inputs):
        return True
    # arrays and tensors (anything with a shape) and PIL images are one image each, though some of them iterate
    return isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, dict)) and not hasattr(
        inputs, "shape") and not hasattr(inputs, "getpixel")


def is_hf_dataset(inputs) -> bool:
    return type(inputs).__module__.split(".")[0] == "datasets" and hasattr(inputs, "column_names")


def check_row(row) -> dict:
    """A dict input row as {key: value} with an "image" and only the keys the pipeline knows."""
    unknown = sorted(set(row) - set(INPUT_KEYS))
    if unknown or "image" not in row:
        problem = f"unknown key(s) {unknown}" if unknown else "no 'image' key"
        raise ValueError(f"input dict has {problem}; a row is {{'image': ..., 'clicks': [(x, y, sign), ...]}} and may "
                         f"hold {', '.join(PER_IMAGE_KEYS)} (for a datasets.Dataset with other columns, pass the "
                         f"dataset itself, or ds.select_columns([...]))")
    return dict(row)


class _DatasetRows(Dataset):
    """A `datasets.Dataset` as a torch Dataset of its rows' pipeline keys (other columns are left out)."""

    def __init__(self, dataset) -> None:
        if "image" not in dataset.column_names:
            raise ValueError(f"the dataset has no 'image' column (columns: {dataset.column_names}); rows need "
                             f"'image' and 'clicks' (or input_points / input_labels), or use KeyDataset(ds, column) "
                             f"with clicks=")
        self.dataset = dataset
        self.keys = [key for key in INPUT_KEYS if key in dataset.column_names]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        row = self.dataset[index]
        return {key: row[key] for key in self.keys}


class _ZippedRows(Dataset):
    """Items of a sized dataset, each with its own entries of the per-image keywords, as dict rows (lazily)."""

    def __init__(self, items, per_image: dict) -> None:
        self.items, self.per_image = items, per_image

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return with_entries(self.items[index], {key: values[index] for key, values in self.per_image.items()})


def with_entries(item, entries: dict) -> dict:
    """`item` (an image or a dict row) as a dict row holding `entries` too; a key given twice is refused."""
    row = check_row(item) if isinstance(item, dict) else {"image": item}
    for key, value in entries.items():
        if row.get(key) is not None:
            raise ValueError(f"{key} given both in an input dict and as a keyword of the call; give it once")
        row[key] = value
    return row


def split_batch(inputs, keywords: dict):
    """`inputs` (a batch, `is_batch`) ready for `Pipeline.__call__`: per-image keyword entries popped from
    `keywords` and zipped into dict rows; a `datasets.Dataset` as its rows. Keywords that hold one entry for every
    image stay in `keywords`."""
    if isinstance(inputs, tuple):
        inputs = list(inputs)
    if is_hf_dataset(inputs):
        inputs = _DatasetRows(inputs) if hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__") else (
            {key: row[key] for key in INPUT_KEYS if key in row} for row in inputs)  # a streaming dataset
    if keywords.get("prev_mask") is not None:
        raise ValueError("with several images, give each image's prev_mask in its input dict: "
                         "[{'image': ..., 'clicks': ..., 'prev_mask': ...}, ...]")
    per_image = {}
    for key, depth in _ONE_SET_DEPTH.items():
        value = keywords.get(key)
        if value is not None and _depth(value) > depth:
            per_image[key] = _to_numpy(keywords.pop(key))
    if "input_points" in per_image and keywords.get("input_labels") is not None:
        raise ValueError("input_points has one list per image, so input_labels needs one per image too: "
                         "input_labels=[[1, 0, ...], ...]")
    if not per_image:  # transformers streams generators, not other iterators
        return inputs if isinstance(inputs, (list, Dataset, GeneratorType)) else (item for item in inputs)
    for key, values in per_image.items():
        if not isinstance(values, (Sequence, np.ndarray)) or isinstance(values, str):
            raise ValueError(f"{key} with one entry per image must be a list")
    if isinstance(inputs, list) or isinstance(inputs, Dataset) and hasattr(inputs, "__len__"):
        for key, values in per_image.items():
            if len(values) != len(inputs):
                raise ValueError(f"{key} has {len(values)} entries for {len(inputs)} images; give one per image "
                                 f"(or one list of clicks for every image)")
        if isinstance(inputs, list):
            return [with_entries(item, {key: values[i] for key, values in per_image.items()})
                    for i, item in enumerate(inputs)]
        return _ZippedRows(inputs, per_image)
    return _zip_stream(inputs, per_image)


def _zip_stream(inputs, per_image: dict):
    """Rows of an iterator of unknown length; a length mismatch is refused when one side ends first."""
    keys = list(per_image)
    for entries in zip(inputs, *(per_image[key] for key in keys), strict=True):
        yield with_entries(entries[0], dict(zip(keys, entries[1:])))
