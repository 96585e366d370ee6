"""Phone photos: a file's EXIF orientation turns the image the way a viewer shows it, at every entry point, and the
mask comes back in that frame."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps
from skimage import data
from transformers import pipeline

import hf_iis
from hf_iis.cli import main
from hf_iis.data.sample import read_rgb
from hf_iis.utils.image_io import load_image

COFFEE = data.coffee()  # 400 rows x 600 columns, as a viewer shows it
UPRIGHT_SIZE = (COFFEE.shape[1], COFFEE.shape[0])  # PIL (W, H) = (600, 400)
CLICK = (259, 290, 1)  # on the cup; inside both the upright and the stored frame, so only the frame can tell


@pytest.fixture(scope="module")
def coffee_exif6(tmp_path_factory):
    """The coffee as a phone held upright stores it: pixels a quarter turn counter-clockwise (600 rows x 400 columns)
    and EXIF orientation 6, "turn 90° clockwise to display"."""
    path = tmp_path_factory.mktemp("exif") / "coffee_exif6.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(COFFEE))).save(path, quality=95, exif=exif)
    with Image.open(path) as stored:
        assert stored.size == (400, 600)
        shown = np.asarray(ImageOps.exif_transpose(stored), dtype=np.float32)
    assert shown.shape == COFFEE.shape and np.abs(shown - COFFEE).mean() < 4  # what a viewer shows: the coffee
    return path


def test_load_image_turns_the_photo_upright(coffee_exif6):
    from_path = load_image(coffee_exif6)
    assert from_path.shape == COFFEE.shape
    assert np.abs(from_path.astype(np.float32) - COFFEE).mean() < 4
    with Image.open(coffee_exif6) as opened:  # a PIL image straight from Image.open carries the tag too
        assert np.array_equal(load_image(opened), from_path)


def test_pipeline_and_predictor_work_in_the_upright_frame(tiny_checkpoint, coffee_exif6):
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    out = seg(str(coffee_exif6), clicks=[CLICK])
    assert out["mask"].size == UPRIGHT_SIZE and out["probabilities"].shape == COFFEE.shape[:2]
    # the same pixels handed over already turned give the same answer: clicks were read in the upright frame
    assert np.array_equal(out["probabilities"], seg(load_image(coffee_exif6), clicks=[CLICK])["probabilities"])
    predictor = hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(str(coffee_exif6))
    assert predictor.original_size == COFFEE.shape[:2]
    assert predictor.predict([CLICK]).probabilities.shape == COFFEE.shape[:2]


def test_cli_writes_the_mask_and_overlay_in_the_upright_frame(tiny_checkpoint, coffee_exif6, tmp_path):
    code = main(["segment", str(coffee_exif6), "--click", f"{CLICK[0]},{CLICK[1]}", "--model", str(tiny_checkpoint),
                 "--out", str(tmp_path / "mask.png"), "--overlay", str(tmp_path / "overlay.png")])
    assert code == 0
    assert Image.open(tmp_path / "mask.png").size == UPRIGHT_SIZE
    assert Image.open(tmp_path / "overlay.png").size == UPRIGHT_SIZE


def test_dataset_reader_turns_the_photo_and_does_not_store_its_bytes(coffee_exif6, tmp_path):
    array, store_bytes = read_rgb(coffee_exif6)
    assert array.shape == COFFEE.shape and np.array_equal(array, load_image(coffee_exif6))
    assert not store_bytes  # the original bytes would decode to the stored frame in readers that ignore EXIF
    plain = tmp_path / "plain.jpg"
    Image.fromarray(COFFEE).save(plain, quality=95)
    array, store_bytes = read_rgb(plain)
    assert store_bytes and np.array_equal(array, np.asarray(Image.open(plain)))
