"""The pipeline contract, the embedding cache, and every bad input named in the core issue."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline

import hf_iis  # noqa: F401


@pytest.fixture(scope="module")
def seg(tiny_checkpoint):
    return pipeline("interactive-segmentation", model=str(tiny_checkpoint), tta=2)


def test_contract_on_a_real_image(seg, photo):
    height, width = photo.shape[:2]
    out = seg(photo, clicks=[(width // 2, height // 2, 1)], triangulation=4, return_uncertainty=True)
    assert isinstance(out["mask"], Image.Image) and out["mask"].mode == "L"
    assert out["mask"].size == (width, height)
    assert set(np.unique(np.asarray(out["mask"]))) <= {0, 255}
    probs = out["probabilities"]
    assert probs.dtype == np.float32 and probs.shape == (height, width) and 0 <= probs.min() <= probs.max() <= 1
    assert out["uncertainty"].shape == (height, width) and out["uncertainty"].dtype == np.float32
    assert isinstance(out["score"], float)
    assert out["views"] == ["identity", "hflip"]  # from pipeline(..., tta=2)
    assert np.array_equal(np.asarray(out["mask"]) > 0, probs >= 0.5)


def test_call_kwargs_override_pipeline_kwargs_and_refinement(seg, photo):
    first = seg(photo, clicks=[(100, 100, 1)], tta=4)
    assert first["views"] == ["identity", "hflip", "vflip", "rot180"]
    second = seg(photo, clicks=[(100, 100, 1), (400, 300, -1)], prev_mask=first["probabilities"])
    assert second["views"] == ["identity", "hflip"]
    assert "uncertainty" not in second


def test_same_image_is_encoded_once_per_view(seg, photo):
    seg(photo, clicks=[(10, 10, 1)], tta=1)
    before = seg.predictor.encode_count
    seg(photo, clicks=[(20, 30, 1), (50, 60, -1)], tta=1, triangulation=3)
    assert seg.predictor.encode_count == before


def test_path_pil_and_array_inputs_agree(seg, photo, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    clicks = [(200, 150, 1)]
    from_path = seg(str(path), clicks=clicks)["probabilities"]
    from_pil = seg(Image.fromarray(photo), clicks=clicks)["probabilities"]
    from_array = seg(photo, clicks=clicks)["probabilities"]
    assert np.array_equal(from_path, from_array) and np.array_equal(from_pil, from_array)


def test_grayscale_and_rgba_are_converted(seg, photo):
    gray = photo.mean(2).astype(np.uint8)
    assert seg(gray, clicks=[(5, 5, 1)])["mask"].size == (gray.shape[1], gray.shape[0])
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    out_rgba = seg(Image.fromarray(rgba, "RGBA"), clicks=[(5, 5, 1)])["probabilities"]
    assert np.array_equal(out_rgba, seg(photo, clicks=[(5, 5, 1)])["probabilities"])


@pytest.mark.parametrize(
    "clicks, message",
    [
        ([], "no clicks given"),
        (None, "no clicks given"),
        ([(700, 10, 1)], "outside the 600x400 image"),
        ([(-3, 10, 1)], "outside"),
        ([(10, 10, 0)], "sign must be"),
        ([(10, 10, 2)], "sign must be"),
        ([(10, 10)], "each click must be"),
        ((10, 10, 1), "single click"),
        ([("a", 10, 1)], "non-numeric"),
    ],
)
def test_bad_clicks(seg, photo, clicks, message):
    with pytest.raises(ValueError, match=message):
        seg(photo, clicks=clicks)


def test_bad_images(seg, tmp_path):
    with pytest.raises(ValueError, match="more than 8 bits"):
        seg(Image.fromarray(np.zeros((20, 20), np.uint16)), clicks=[(1, 1, 1)])
    with pytest.raises(ValueError, match="dtype uint16"):
        seg(np.zeros((20, 20, 3), np.uint16), clicks=[(1, 1, 1)])
    with pytest.raises(ValueError, match="at least 8 pixels"):
        seg(np.zeros((1, 1, 3), np.uint8), clicks=[(0, 0, 1)])
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ValueError, match="corrupt or not an image"):
        seg(str(corrupt), clicks=[(1, 1, 1)])
    with pytest.raises(FileNotFoundError, match="image file not found"):
        seg(str(tmp_path / "missing.png"), clicks=[(1, 1, 1)])
    with pytest.raises(ValueError, match="shape"):
        seg(np.zeros((20, 20, 5), np.uint8), clicks=[(1, 1, 1)])


def test_pixel_budget(tiny_checkpoint):
    small_budget = pipeline("interactive-segmentation", model=str(tiny_checkpoint), max_pixels=10_000)
    with pytest.raises(ValueError, match="over the budget of 10000"):
        small_budget(np.zeros((200, 200, 3), np.uint8), clicks=[(1, 1, 1)])


def test_bad_prev_mask_and_options(seg, photo):
    with pytest.raises(ValueError, match="prev_mask has shape"):
        seg(photo, clicks=[(1, 1, 1)], prev_mask=np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="unknown TTA view"):
        seg(photo, clicks=[(1, 1, 1)], tta=["spin"])
    with pytest.raises(ValueError, match="unknown argument"):
        seg(photo, clicks=[(1, 1, 1)], triangulations=4)
    for bad in (2.5, "two", -1, 100_000):
        with pytest.raises(ValueError, match="triangulation must be a whole number"):
            seg(photo, clicks=[(1, 1, 1)], triangulation=bad)
    with pytest.raises(ValueError, match="tta must be a whole number"):
        seg(photo, clicks=[(1, 1, 1)], tta=2.5)
    for bad in (0, 1, 2, -0.5, "half"):
        with pytest.raises(ValueError, match="threshold must be a probability"):
            seg(photo, clicks=[(1, 1, 1)], threshold=bad)


def test_points_per_batch_is_checked_and_lasts_one_call(seg, photo):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="points_per_batch must be a whole number"):
            seg(photo, clicks=[(1, 1, 1)], points_per_batch=bad)
    default = seg.predictor.points_per_batch
    small = seg(photo, clicks=[(5, 5, 1)], triangulation=6, points_per_batch=2)
    assert seg.predictor.points_per_batch == default
    again = seg(photo, clicks=[(5, 5, 1)], triangulation=6)
    assert np.allclose(small["probabilities"], again["probabilities"], atol=1e-5)  # batching never changes results


def test_score_follows_the_threshold_and_uncertainty_needs_an_ensemble(seg, photo):
    height, width = photo.shape[:2]
    click = [(width // 2, height // 2, 1)]
    for threshold in (0.3, 0.7):
        out = seg(photo, clicks=click, threshold=threshold)
        inside = out["probabilities"] >= threshold
        expected = float(out["probabilities"][inside].mean()) if inside.any() else 0.0
        assert out["score"] == pytest.approx(expected)
    assert "uncertainty" not in seg(photo, clicks=click, tta=1, return_uncertainty=True)
    assert "uncertainty" in seg(photo, clicks=click, tta=1, triangulation=2, return_uncertainty=True)


def test_missing_checkpoint_weights(tiny_checkpoint, tmp_path):
    from hf_iis.checkpoint_paths import resolve_checkpoint

    folder = tmp_path / "no_weights"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="has no weights"):
        resolve_checkpoint(folder)
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_checkpoint(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_checkpoint(tmp_path)


def test_unsupported_precision_is_refused_up_front(tiny_checkpoint):
    """float32, bfloat16 and float16 run (tests/test_devices.py); anything else is one line naming them."""
    import torch

    with pytest.raises(ValueError, match="unsupported dtype torch.float64; use torch.float32, torch.bfloat16"):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint), dtype=torch.float64)
