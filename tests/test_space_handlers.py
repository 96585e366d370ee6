"""The Space's event handlers called directly: clicks accumulate, undo, reset, errors, downscaling, the cache.

`DiskSegmenter` (a deterministic stand-in with the pipeline's call signature) and `load_space_app` are shared
with the other `test_space_*` files.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from huggingface_hub import SpaceCard
from PIL import Image

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces"


def load_space_app():
    """spaces/app.py as a module (it is a script folder, not a package)."""
    name = "hf_iis_space_app"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SPACE_DIR / "app.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class DiskSegmenter:
    """Disks of `radius` pixels around positive clicks minus disks around negative clicks; records every call."""

    def __init__(self, radius: int = 30) -> None:
        self.radius = radius
        self.calls: list[dict] = []

    def __call__(self, image, clicks=None, tta=1, triangulation=0, prev_mask=None, return_uncertainty=False) -> dict:
        image = np.asarray(image)
        height, width = image.shape[:2]
        rows, cols = np.mgrid[:height, :width]
        mask = np.zeros((height, width), bool)
        for sign in (1, -1):
            for x, y, s in clicks:
                if s == sign:
                    disk = (cols - x) ** 2 + (rows - y) ** 2 <= self.radius**2
                    mask = mask | disk if sign > 0 else mask & ~disk
        self.calls.append({"shape": image.shape, "clicks": list(clicks), "tta": tta, "triangulation": triangulation,
                           "prev_mask": None if prev_mask is None else np.array(prev_mask)})
        probabilities = mask.astype(np.float32)
        out = {"mask": Image.fromarray((mask * 255).astype(np.uint8)), "probabilities": probabilities,
               "score": 1.0 if mask.any() else 0.0, "seconds": 0.001}
        if return_uncertainty:
            out["uncertainty"] = np.zeros_like(probabilities)
        return out


def grabcut_path(data_root: Path) -> Path:
    return sorted((data_root / "GrabCut" / "data_GT").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def app():
    return load_space_app()


@pytest.fixture()
def stand_in(app):
    segmenter = DiskSegmenter()
    return segmenter, app.Handlers(segmenter)


def unpack(out: tuple) -> dict:
    state, canvas, prob_map, unc_map, mask, status, details = out
    return {"state": state, "canvas": canvas, "prob_map": prob_map, "unc_map": unc_map, "mask": mask,
            "status": status, "details": json.loads(details)}


def test_clicks_accumulate_with_prev_mask_then_undo_and_reset(app, stand_in, data_root):
    segmenter, handlers = stand_in
    path = grabcut_path(data_root)
    width, height = Image.open(path).size
    loaded = unpack(handlers.load({"path": str(path), "orig_name": path.name}, False, False))
    assert path.name in loaded["status"] and loaded["details"]["n_clicks"] == 0
    assert loaded["canvas"].size == (width, height)

    first = unpack(handlers.click(loaded["state"], 200, 150, app.POSITIVE, 2, 4, True, True))
    assert first["details"]["clicks"] == [[200, 150, 1]] and first["details"]["mask_at_last_click"] is True
    assert segmenter.calls[-1]["prev_mask"] is None and segmenter.calls[-1]["tta"] == 2
    assert segmenter.calls[-1]["triangulation"] == 4
    assert first["prob_map"]["visible"] and first["unc_map"]["visible"]
    assert first["mask"].size == (width, height) and "prediction" in first["status"] and " s**" in first["status"]

    second = unpack(handlers.click(first["state"], 215, 150, app.NEGATIVE, 2, 4, False, False))
    assert second["details"]["clicks"] == [[200, 150, 1], [215, 150, -1]]
    assert second["details"]["mask_at_last_click"] is False
    assert 0 < second["details"]["mask_area"] < first["details"]["mask_area"]
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], first["state"]["steps"][-1]["probs"].astype(np.float32))
    assert not second["prob_map"]["visible"]
    assert first["state"]["clicks"] == [(200, 150, 1)]  # handlers never mutate the incoming state

    undone = unpack(handlers.undo(second["state"], False, False))
    assert undone["details"]["clicks"] == [[200, 150, 1]]
    assert undone["details"]["mask_area"] == first["details"]["mask_area"]
    reset = unpack(handlers.reset(undone["state"], False, False))
    assert reset["details"]["n_clicks"] == 0 and reset["state"]["image"] is not None and reset["canvas"] is not None

    toggled = handlers.toggle(first["state"], True, False)
    assert toggled[1]["visible"] and toggled[1]["value"] is not None and not toggled[2]["visible"]


def test_slider_rerun_recomputes_the_last_click_from_the_same_previous_mask(app, stand_in, grabcut_image):
    segmenter, handlers = stand_in
    state = handlers.load(grabcut_image, False, False)[0]
    state = handlers.click(state, 100, 100, app.POSITIVE, 1, 0, False, False)[0]
    state = handlers.click(state, 300, 200, app.POSITIVE, 1, 0, False, False)[0]
    rerun = unpack(handlers.rerun(state, 8, 16, False, False))
    assert rerun["details"]["n_clicks"] == 2 and rerun["details"]["tta"] == 8
    assert rerun["details"]["triangulation"] == 16 and len(rerun["state"]["steps"]) == 2
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], state["steps"][0]["probs"].astype(np.float32))


def test_click_before_an_image_and_nothing_to_undo_give_messages(app, stand_in):
    segmenter, handlers = stand_in
    with pytest.warns(UserWarning, match="before clicking"):
        out = unpack(handlers.click(app.empty_state(), 10, 10, app.POSITIVE, 1, 0, False, False))
    assert "Upload an image" in out["status"] and out["canvas"] is None and not segmenter.calls
    with pytest.warns(UserWarning, match="Nothing to undo"):
        out = unpack(handlers.undo(app.empty_state(), False, False))
    assert "Nothing to undo" in out["status"]
    assert unpack(handlers.load(None, False, False))["status"].startswith("Upload an image")


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"this is text, not a picture"), ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
     ("truncated.jpg", None)],
)
def test_corrupt_and_non_image_uploads_give_a_readable_message(app, stand_in, tmp_path, grabcut_image, name, content):
    _, handlers = stand_in
    path = tmp_path / name
    if content is None:  # a real JPEG cut in half
        Image.fromarray(grabcut_image).save(path, quality=90)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.warns(UserWarning, match="not an image that can be read"):
        out = unpack(handlers.load({"path": str(path), "orig_name": name}, False, False))
    assert out["status"].startswith("⚠️") and name in out["status"] and "Traceback" not in out["status"]
    assert str(tmp_path) not in out["status"]  # the server's paths stay private
    assert out["state"]["image"] is None and out["canvas"] is None
    # Gradio repeats `change` for an upload its preview cannot show: the repeat changes nothing and warns no more
    repeat = handlers.load({"path": str(path), "orig_name": name}, False, False, out["state"])
    assert len(repeat) == 7 and all(value == gr.skip() for value in repeat)


def test_too_small_and_too_large_images_are_refused_readably(app, stand_in, tmp_path, monkeypatch):
    _, handlers = stand_in
    Image.new("RGB", (5, 5)).save(tmp_path / "tiny.png")
    with pytest.warns(UserWarning, match="at least 8 pixels"):
        handlers.load(str(tmp_path / "tiny.png"), False, False)
    monkeypatch.setattr(app, "MAX_UPLOAD_PIXELS", 1000)
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    with pytest.warns(UserWarning, match="megapixels"):
        out = unpack(handlers.load(str(tmp_path / "big.png"), False, False))
    assert "the limit is" in out["status"]


def test_a_huge_upload_is_downscaled_for_the_model_and_the_mask_comes_back_full_size(app, tmp_path):
    segmenter = DiskSegmenter(radius=20)
    handlers = app.Handlers(segmenter, max_pixels=50_000)
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(path)
    loaded = unpack(handlers.load(str(path), False, False))
    model_w, model_h = loaded["details"]["model_size"]
    assert loaded["details"]["image_size"] == [1200, 900] and model_w * model_h <= 50_000
    assert abs(model_w / model_h - 1200 / 900) < 0.02 and "upsampled back to 1200×900" in loaded["status"]
    clicked = unpack(handlers.click(loaded["state"], model_w // 2, model_h // 2, app.POSITIVE, 1, 0, False, False))
    assert segmenter.calls[-1]["shape"][:2] == (model_h, model_w)
    assert clicked["mask"].size == (1200, 900) and clicked["details"]["mask_size"] == [1200, 900]
    full = np.asarray(clicked["mask"]) > 0
    assert full[450, 600] and not full[0, 0]

    # the API path: clicks in uploaded pixels, the mask at the uploaded size
    result, score = handlers.segment({"path": str(path)}, "[[600, 450, 1]]", 1, 0)
    mask = np.asarray(Image.open(result.path))
    assert mask.shape == (900, 1200) and mask[450, 600] == 255 and score == 1.0
    x, y, _ = segmenter.calls[-1]["clicks"][0]
    assert abs(x - (model_w - 1) / 2) < 1 and abs(y - (model_h - 1) / 2) < 1


def test_exif_rotated_jpeg_keeps_its_displayed_size(app, stand_in, tmp_path):
    _, handlers = stand_in
    image = Image.new("RGB", (60, 40), (200, 10, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    out = unpack(handlers.load(str(tmp_path / "rotated.jpg"), False, False))
    assert out["details"]["image_size"] == [40, 60] and out["details"]["model_size"] == [40, 60]


def test_api_handler_errors_are_readable(app, stand_in, grabcut_image, tmp_path):
    _, handlers = stand_in
    path = tmp_path / "photo.png"
    Image.fromarray(grabcut_image).save(path)
    for clicks, match in [("[[1, 2", "JSON"), ("[[10000, 5, 1]]", "outside"), ("[[1, 2, 0]]", "sign"),
                          ("[]", "no clicks")]:
        with pytest.raises(gr.Error, match=match):
            handlers.segment({"path": str(path)}, clicks, 1, 0)
    with pytest.raises(gr.Error, match="tta"):
        handlers.segment({"path": str(path)}, "[[1, 2, 1]]", 9, 0)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(gr.Error, match="not an image"):
        handlers.segment({"path": str(tmp_path / "bad.jpg"), "orig_name": "bad.jpg"}, "[[1, 2, 1]]", 1, 0)


def test_real_pipeline_second_click_reuses_the_cached_embedding(app, tiny_checkpoint, grabcut_image):
    handlers = app.Handlers(app.load_segmenter(tiny_checkpoint))
    state = handlers.load(grabcut_image, False, False)[0]
    first = unpack(handlers.click(state, 100, 120, app.POSITIVE, 2, 2, True, True))
    assert first["details"]["embedding"] == "computed" and "embedding computed" in first["status"]
    runs = first["details"]["encoder_runs"]
    second = unpack(handlers.click(first["state"], 300, 200, app.NEGATIVE, 2, 2, True, True))
    assert second["details"]["embedding"] == "cached" and second["details"]["encoder_runs"] == runs
    assert "embedding cached" in second["status"]
    height, width = grabcut_image.shape[:2]
    assert second["mask"].size == (width, height) and second["canvas"].size == (width, height)
    assert second["prob_map"]["value"].size == (width, height) and second["unc_map"]["value"] is not None


def test_model_resolution(app, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_IIS_MODEL", raising=False)
    monkeypatch.setattr(app, "DEFAULT_CHECKPOINT", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="--model"):
        app.resolve_model(None)
    assert app.resolve_model("some/folder") == "some/folder"
    monkeypatch.setenv("HF_IIS_MODEL", str(tmp_path))
    assert app.resolve_model(None) == str(tmp_path)


def test_space_card_and_requirements():
    card = SpaceCard.load(SPACE_DIR / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == gr.__version__ == "6.31.0"
    assert (SPACE_DIR / card.data.app_file).is_file() and card.data.license == "apache-2.0" and card.data.models
    assert card.data.title and card.data.emoji and card.data.colorFrom and card.data.colorTo
    lines = [line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["-e ..[space]"]
