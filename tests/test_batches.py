"""Several images per call, the transformers way: a list of images with one click list each, dict rows with
`batch_size`, a `datasets` column through `KeyDataset` and a dataset of rows; each result equals the single call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

import hf_iis  # noqa: F401  (registers the task)

OPTIONS = {"tta": 2, "triangulation": 2}


@pytest.fixture(scope="module")
def seg(tiny_checkpoint):
    return pipeline("interactive-segmentation", model=str(tiny_checkpoint))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return [(rng.random(shape) * 255).astype(np.uint8) for shape in [(48, 72, 3), (80, 40, 3), (48, 72, 3)]]


CLICKS = [[(30, 20, 1), (5, 5, -1)], [(20, 30, 1)], [(10, 40, 1)]]


def _single(seg, images, clicks=CLICKS):
    return [seg(image, clicks=c, **OPTIONS) for image, c in zip(images, clicks)]


def _assert_same(results, expected):
    assert len(results) == len(expected)
    for result, single in zip(results, expected):
        assert np.array_equal(result["probabilities"], single["probabilities"])
        assert np.array_equal(np.asarray(result["mask"]), np.asarray(single["mask"]))
        assert result["score"] == single["score"]


def test_a_list_of_images_with_one_click_list_each(seg, images):
    _assert_same(seg(images, clicks=CLICKS, **OPTIONS), _single(seg, images))
    _assert_same(seg(tuple(images), clicks=np.asarray([[(9, 9, 1)]] * 3), **OPTIONS),
                 _single(seg, images, [[(9, 9, 1)]] * 3))  # a (B, N, 3) array: one set per image


def test_one_click_list_for_every_image(seg, images):
    shared = [(9, 9, 1), (2, 2, -1)]
    _assert_same(seg(images, clicks=shared, **OPTIONS), _single(seg, images, [shared] * 3))


@pytest.mark.parametrize("batch_size", [1, 2])
def test_dict_rows_with_batch_size(seg, images, batch_size):
    rows = [{"image": image, "clicks": c} for image, c in zip(images, CLICKS)]
    _assert_same(seg(rows, batch_size=batch_size, **OPTIONS), _single(seg, images))


def test_rows_may_carry_sam_points_and_a_previous_mask(seg, images):
    previous = seg(images[0], clicks=CLICKS[0], **OPTIONS)["probabilities"]
    rows = [{"image": images[0], "input_points": [[30, 20], [5, 5]], "input_labels": [1, 0], "prev_mask": previous},
            {"image": images[1], "clicks": CLICKS[1]}]
    expected = [seg(images[0], clicks=CLICKS[0], prev_mask=previous, **OPTIONS), _single(seg, images)[1]]
    _assert_same(seg(rows, batch_size=2, **OPTIONS), expected)
    per_image = seg(images[:2], input_points=[[[30, 20], [5, 5]], [[20, 30]]], input_labels=[[1, 0], [1]], **OPTIONS)
    _assert_same(per_image, _single(seg, images[:2]))


def test_a_datasets_column_through_key_dataset_and_a_dataset_of_rows(seg, images):
    datasets = pytest.importorskip("datasets")
    from transformers.pipelines.pt_utils import KeyDataset

    pil = [Image.fromarray(image) for image in images]
    ds = datasets.Dataset.from_dict({"image": pil, "clicks": CLICKS, "name": ["a", "b", "c"]})
    expected = _single(seg, images)
    _assert_same(list(seg(KeyDataset(ds, "image"), clicks=CLICKS, **OPTIONS)), expected)
    _assert_same(list(seg(ds, **OPTIONS)), expected)  # rows: "image" and "clicks" used, other columns left out
    _assert_same(list(seg(ds, batch_size=2, **OPTIONS)), expected)
    _assert_same(list(seg(({"image": im, "clicks": c} for im, c in zip(images, CLICKS)), **OPTIONS)), expected)


def test_the_student_takes_batches_too(tmp_path, images):
    from test_thread_safety import _tiny_student

    seg = pipeline("interactive-segmentation", model=str(_tiny_student(tmp_path / "student")))
    _assert_same(seg(images, clicks=CLICKS, batch_size=2, **OPTIONS), _single(seg, images))


def test_an_empty_list_gives_no_results(seg):
    assert seg([], clicks=[]) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda seg, ims: seg(ims, clicks=CLICKS[:2]), "clicks has 2 entries for 3 images"),
        (lambda seg, ims: seg(ims, prev_mask=np.zeros((48, 72))), "give each image's prev_mask in its input dict"),
        (lambda seg, ims: seg([{"image": ims[0], "clicks": CLICKS[0]}], clicks=[CLICKS[0]]),
         "clicks given both in an input dict and as a keyword"),
        (lambda seg, ims: seg([{"image": ims[0], "click": CLICKS[0]}]), r"unknown key\(s\) \['click'\]"),
        (lambda seg, ims: seg([{"clicks": CLICKS[0]}]), "no 'image' key"),
        (lambda seg, ims: seg(ims, input_points=[[[1, 1]], [[2, 2]], [[3, 3]]], input_labels=[1]),
         "input_labels needs one per image too"),
        (lambda seg, ims: seg(torch.zeros(8, 8, 3), clicks=CLICKS), "unsupported image type Tensor"),
    ],
)
def test_batch_mistakes_are_one_line_errors(seg, images, call, message):
    with pytest.raises(ValueError, match=message):
        call(seg, images)
