"""Huge images: the size is read from the file's header and checked against the pixel budget before decoding; PIL's
decompression-bomb refusal is the same ValueError; the CLI says so in one line."""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings
import zlib

import pytest
from PIL import Image
from transformers import pipeline

import hf_iis  # noqa: F401
from hf_iis.utils.image_io import DEFAULT_MAX_PIXELS, load_image


def write_png(path, width: int, height: int, decodable: bool = True):
    """A 1-bit grayscale PNG of width x height, all black (15000 x 15000 is 27 KB); with `decodable=False` its image
    data is empty, so only a reader that never decodes can say anything but "corrupt" about it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = b""
    if decodable:
        compressor = zlib.compressobj(9)
        row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """15000 x 15000 = 225 Mpx, over PIL's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS): PIL refuses to
    open it."""
    path = write_png(tmp_path_factory.mktemp("huge") / "bomb.png", 15000, 15000)
    assert path.stat().st_size < 100_000 and 15000 * 15000 > 2 * Image.MAX_IMAGE_PIXELS
    return path


def test_a_decompression_bomb_is_the_budget_value_error(bomb, tiny_checkpoint):
    with pytest.raises(ValueError, match=f"image is 225000000 pixels, over the budget of {DEFAULT_MAX_PIXELS}; "
                                         "downscale it first or raise max_pixels"):
        load_image(bomb)
    with pytest.raises(ValueError, match="over the budget of"):  # no budget of ours: PIL's limit is the budget
        load_image(bomb, max_pixels=None)
    with pytest.raises(ValueError, match="over the budget"):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint))(str(bomb), clicks=[(1, 1, 1)])


@pytest.mark.parametrize("width, height", [(8000, 6000), (10000, 10000)])  # under and over PIL's warning threshold
def test_an_over_budget_file_is_refused_from_its_header(tmp_path, width, height):
    path = write_png(tmp_path / "huge.png", width, height, decodable=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no DecompressionBombWarning on the way
        with pytest.raises(ValueError, match=f"image is {width}x{height} = {width * height} pixels, over the budget"):
            load_image(path)
    with pytest.raises(ValueError, match="corrupt or not an image"):  # within budget, it is decoded (and is empty)
        load_image(path, max_pixels=width * height)


def test_over_budget_rotated_photo_is_named_in_the_viewer_frame(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn: stored 20 x 10, shown 10 x 20
    Image.new("RGB", (20, 10)).save(tmp_path / "turned.jpg", exif=exif)
    with pytest.raises(ValueError, match="image is 10x20 = 200 pixels, over the budget of 100"):
        load_image(tmp_path / "turned.jpg", max_pixels=100)


@pytest.mark.slow
def test_cli_reports_a_bomb_in_one_line(bomb, tmp_path):
    result = subprocess.run([sys.executable, "-m", "hf_iis.cli", "segment", str(bomb), "--click", "1,1",
                             "--out", str(tmp_path / "mask.png")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hf-iis: error: image is 225000000 pixels, over the budget")
