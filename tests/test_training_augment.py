"""Augmentation keeps image, masks, ignore and clicks consistent (D4 and scale views, crops), on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from hf_iis.scaling.tta import D4_VIEWS, VIEW_ORDER
from hf_iis.training.augment import AugmentParams, InputFormat, augment
from hf_iis.training.collate import SKIP_REASONS, TrainTransform, collate_click_sets
from hf_iis.training.sampling import sample_pixels
from hf_iis.training.toy import coco_mval_rows, make_dataset


@pytest.fixture(scope="module")
def rows(data_root):
    return coco_mval_rows(data_root, n=3, max_side=200)


def _arrays(row):
    image = np.asarray(row["image"])
    masks = np.stack([np.asarray(m) > 127 for m in row["masks"]])
    return image, masks


@pytest.mark.parametrize("view", [v.name for v in VIEW_ORDER])
def test_clicks_inside_the_mask_stay_inside_under_every_view(rows, view):
    image, masks = _arrays(rows[0])
    params = AugmentParams(crop_prob=1.0, crop_min_area=0.5, views=[view], view_prob=1.0)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        aug = augment(image, masks, None, params, InputFormat(96), rng)
        assert aug.pixel_values.shape == (3, 96, 96) and aug.masks.shape == (1, 96, 96)
        # a click deep inside the original mask (away from resampling edges) lands inside the augmented mask
        # original pixels per output pixel: the crop's resize, then the view's rescale (a 0.75 view shrinks again)
        scale = 96 / max(aug.geometry.crop[2:]) * aug.geometry.view.output_size(96) / 96
        x0, y0, cw, ch = aug.geometry.crop
        in_crop = np.zeros_like(masks[0])
        in_crop[y0:y0 + ch, x0:x0 + cw] = True  # the crop's edge is an edge too: erode from it as from the mask's
        inner = ndimage.binary_erosion(masks[0] & in_crop, iterations=int(np.ceil(3 / scale)) + 1)
        clicks = sample_pixels(inner, 20, rng)
        if clicks is None:
            continue
        mapped = np.rint(aug.geometry.map_points(clicks)).astype(int)
        inside = (mapped >= 0).all(1) & (mapped < 96).all(1)
        assert inside.any() or view.startswith(("scale1.25", "hflip+scale1.25"))
        for x, y in mapped[inside]:
            assert aug.masks[0, y, x], (view, seed, x, y)


@pytest.mark.parametrize("view", D4_VIEWS, ids=lambda v: v.name)
def test_d4_view_matches_the_tta_view_of_the_plain_input(rows, view):
    """Augmenting with a D4 view = the TTA view applied to the plain (processor-like) input."""
    image, masks = _arrays(rows[1])
    plain = augment(image, masks, None, AugmentParams.no_augmentation(), InputFormat(64), np.random.default_rng(0))
    params = AugmentParams.no_augmentation()
    params.views, params.view_prob = [view.name], 1.0
    viewed = augment(image, masks, None, params, InputFormat(64), np.random.default_rng(0))
    assert torch.allclose(viewed.pixel_values, view.apply_image(plain.pixel_values))
    assert np.array_equal(viewed.masks, view.apply_image(torch.from_numpy(plain.masks)).numpy())
    assert np.array_equal(viewed.valid, view.apply_image(torch.from_numpy(plain.valid)).numpy())


def test_padding_is_zero_invalid_and_never_clicked(rows):
    image, masks = _arrays(rows[0])  # a landscape image: padding at the bottom
    aug = augment(image, masks, None, AugmentParams.no_augmentation(), InputFormat(96), np.random.default_rng(0))
    h, w = aug.geometry.resized
    assert h < 96 or w < 96
    assert not aug.valid[h:].any() and not aug.valid[:, w:].any()
    assert aug.valid[:h, :w].all()
    assert torch.all(aug.pixel_values[:, h:] == 0) and torch.all(aug.pixel_values[:, :, w:] == 0)


def test_ignore_pixels_are_invalid(rows):
    image, masks = _arrays(rows[0])
    ignore = ndimage.binary_dilation(masks[0], iterations=3) & ~ndimage.binary_erosion(masks[0], iterations=3)
    aug = augment(image, masks, ignore, AugmentParams(crop_prob=0.0, view_prob=1.0), InputFormat(96),
                  np.random.default_rng(1))
    plain = augment(image, masks, ignore, AugmentParams.no_augmentation(), InputFormat(96), np.random.default_rng(1))
    assert (~aug.valid).sum() > (~plain.valid).sum() - ignore.sum()  # the band is there, in some view
    transform = TrainTransform(AugmentParams(), InputFormat(96), pairs_per_mask=50, seed=0)
    row = dict(rows[0], ignore=ignore)
    sample = transform.sample(row)["sample"]
    valid = sample["valid"].numpy()
    for x, y in np.concatenate([sample["positives"][0], sample["negatives"][0]]).astype(int):
        assert valid[y, x]


def test_transform_and_collate_build_signed_click_sets(rows):
    ds = make_dataset(rows)
    transform = TrainTransform(AugmentParams(), InputFormat(64), masks_per_image=1, pairs_per_mask=2, seed=0)
    items = [transform.sample(ds[i]) for i in range(len(ds))]
    batch = collate_click_sets(items)
    n = len(rows) * 1 * 2 * 2
    assert batch["pixel_values"].shape == (len(rows), 3, 64, 64)
    assert batch["points"].shape == (n, 1, 2) and batch["labels"].shape == (n, 1)
    assert batch["labels"][:, 0].tolist() == [1, -1] * (n // 2)
    assert batch["target_masks"].shape == (n, 1, 64, 64) and batch["target_valid"].dtype == torch.bool
    for i in range(n):
        x, y = batch["points"][i, 0].long().tolist()
        inside = bool(batch["target_masks"][i, 0, y, x])
        assert inside == (batch["labels"][i, 0] == 1)
        assert batch["target_valid"][i, 0, y, x]
    # the same row, epoch and seed give the same sample; another epoch gives another
    again = transform.sample(ds[0])["sample"]
    assert torch.equal(again["pixel_values"], items[0]["sample"]["pixel_values"])
    transform.epoch = 1
    assert not torch.equal(transform.sample(ds[0])["sample"]["pixel_values"], items[0]["sample"]["pixel_values"])


def test_bad_rows_are_skipped_and_counted(rows):
    from PIL import Image

    good = rows[0]
    small = Image.new("L", (5, 5))
    bad_rows = [
        dict(good, id="nomask", masks=[]),
        dict(good, id="empty", masks=[Image.new("L", good["image"].size)]),
        dict(good, id="size", masks=[small]),
        dict(good, id="corrupt", image={"bytes": b"not an image", "path": None}),
        dict(good, id="partly_empty", masks=[good["masks"][0], Image.new("L", good["image"].size)]),
    ]
    transform = TrainTransform(AugmentParams(), InputFormat(64), seed=0)
    batch = collate_click_sets([transform.sample(r) for r in bad_rows])
    counts = dict(zip(SKIP_REASONS, batch["skipped"].tolist()))
    assert counts["no_masks"] == 1 and counts["empty_masks"] == 1
    assert counts["size_mismatch"] == 1 and counts["corrupt_image"] == 1
    assert counts["dropped_empty_mask"] == 1  # the partly empty row loses its empty mask
    assert batch["pixel_values"].shape[0] == 1  # only the partly empty row survives
    empty = collate_click_sets([transform.sample(bad_rows[0])])
    assert empty["pixel_values"].shape[0] == 0 and empty["skipped"].sum() == 1
