"""The Space's event handlers (`hf_iis.space`) called directly: clicks accumulate, undo, reset, errors, downscaling,
the cache, visitor-level upload messages, the map legends and hints, a lone negative click.

`DiskSegmenter` (a deterministic stand-in with the pipeline's call signature) is shared with the other
`test_space_*` files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from huggingface_hub import SpaceCard
from PIL import Image

from hf_iis import space
from hf_iis.space import Session

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "spaces"


class DiskSegmenter:
    """Disks of `radius` pixels around positive clicks minus disks around negative clicks; records every call."""

    def __init__(self, radius: int = 30) -> None:
        self.radius = radius
        self.calls: list[dict] = []

    def __call__(self, image, clicks=None, tta=1, triangulation=0, prev_mask=None, return_uncertainty=False,
                 multimask_output=False) -> dict:
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
                           "prev_mask": None if prev_mask is None else np.array(prev_mask),
                           "multimask_output": multimask_output})
        probabilities = mask.astype(np.float32)
        out = {"mask": Image.fromarray((mask * 255).astype(np.uint8)), "probabilities": probabilities,
               "score": 1.0 if mask.any() else 0.0, "seconds": 0.001}
        if return_uncertainty and (tta > 1 or triangulation > 0):  # as the pipeline: one estimate has no spread
            out["uncertainty"] = np.zeros_like(probabilities)
        return out


def grabcut_path(data_root: Path) -> Path:
    return sorted((data_root / "GrabCut" / "data_GT").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def app():
    return space


@pytest.fixture()
def stand_in(app):
    segmenter = DiskSegmenter()
    return segmenter, app.Handlers(segmenter)


def unpack(out: tuple) -> dict:
    state, canvas, prob_map, unc_map, mask, answers, status, details = out
    return {"state": state, "canvas": canvas, "prob_map": prob_map, "unc_map": unc_map, "mask": mask,
            "status": status, "details": json.loads(details), "answers": answers}


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
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], first["state"].steps[-1].probability_map())
    assert not second["prob_map"]["visible"]
    assert first["state"].clicks == ((200, 150, 1),)  # handlers never change the incoming session

    undone = unpack(handlers.undo(second["state"], False, False))
    assert undone["details"]["clicks"] == [[200, 150, 1]]
    assert undone["details"]["mask_area"] == first["details"]["mask_area"]
    reset = unpack(handlers.reset(undone["state"], False, False))
    assert reset["details"]["n_clicks"] == 0 and reset["state"].image is not None and reset["canvas"] is not None

    prob_map = handlers.toggle_probability(first["state"], True)
    assert prob_map["visible"] and prob_map["value"] is not None
    unc_map, status = handlers.toggle_uncertainty(first["state"], False)
    assert not unc_map["visible"] and "1 click" in status


def test_slider_rerun_recomputes_the_last_click_from_the_same_previous_mask(app, stand_in, photo):
    segmenter, handlers = stand_in
    state = handlers.load(photo, False, False)[0]
    state = handlers.click(state, 100, 100, app.POSITIVE, 1, 0, False, False)[0]
    state = handlers.click(state, 300, 200, app.POSITIVE, 1, 0, False, False)[0]
    rerun = unpack(handlers.rerun(state, 8, 16, False, False))
    assert rerun["details"]["n_clicks"] == 2 and rerun["details"]["tta"] == 8
    assert rerun["details"]["triangulation"] == 16 and len(rerun["state"].steps) == 2
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], state.steps[0].probability_map())


def test_click_before_an_image_and_nothing_to_undo_give_messages(app, stand_in):
    segmenter, handlers = stand_in
    with pytest.warns(UserWarning, match="before clicking"):
        out = unpack(handlers.click(Session(), 10, 10, app.POSITIVE, 1, 0, False, False))
    assert "Upload an image" in out["status"] and out["canvas"] is None and not segmenter.calls
    with pytest.warns(UserWarning, match="Nothing to undo"):
        out = unpack(handlers.undo(Session(), False, False))
    assert "Nothing to undo" in out["status"]
    assert unpack(handlers.load(None, False, False))["status"].startswith("Upload an image")


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.txt", b"this is text, not a picture"), ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
     ("truncated.jpg", None)],
)
def test_corrupt_and_non_image_uploads_give_a_readable_message(app, stand_in, tmp_path, photo, name, content):
    _, handlers = stand_in
    path = tmp_path / name
    if content is None:  # a real JPEG cut in half
        Image.fromarray(photo).save(path, quality=90)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.warns(UserWarning, match="not an image that can be read"):
        out = unpack(handlers.load({"path": str(path), "orig_name": name}, False, False))
    assert out["status"].startswith("⚠️") and name in out["status"] and "Traceback" not in out["status"]
    assert str(tmp_path) not in out["status"]  # the server's paths stay private
    assert out["state"].image is None and out["canvas"] is None
    # Gradio repeats `change` for an upload its preview cannot show: the repeat changes nothing and warns no more
    repeat = handlers.load({"path": str(path), "orig_name": name}, False, False, out["state"])
    assert len(repeat) == 8 and all(value == gr.skip() for value in repeat)


def test_too_small_and_too_large_images_are_refused_readably(app, stand_in, tmp_path, monkeypatch):
    _, handlers = stand_in
    Image.new("RGB", (5, 5)).save(tmp_path / "tiny.png")
    with pytest.warns(UserWarning, match="at least 8 pixels"):
        handlers.load(str(tmp_path / "tiny.png"), False, False)
    monkeypatch.setattr(app.uploads, "MAX_UPLOAD_PIXELS", 1000)
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


def test_api_handler_errors_are_readable(app, stand_in, photo, tmp_path):
    _, handlers = stand_in
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    for clicks, match in [("[[1, 2", "JSON"), ("[[10000, 5, 1]]", "outside"), ("[[1, 2, 0]]", "sign"),
                          ("[]", "no clicks")]:
        with pytest.raises(gr.Error, match=match):
            handlers.segment({"path": str(path)}, clicks, 1, 0)
    with pytest.raises(gr.Error, match="tta"):
        handlers.segment({"path": str(path)}, "[[1, 2, 1]]", 9, 0)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(gr.Error, match="not an image"):
        handlers.segment({"path": str(tmp_path / "bad.jpg"), "orig_name": "bad.jpg"}, "[[1, 2, 1]]", 1, 0)


def test_real_pipeline_second_click_reuses_the_cached_embedding(app, tiny_checkpoint, photo):
    handlers = app.Handlers(app.load_segmenter(tiny_checkpoint))
    state = handlers.load(photo, False, False)[0]
    first = unpack(handlers.click(state, 100, 120, app.POSITIVE, 2, 2, True, True))
    assert first["details"]["embedding"] == "computed" and "embedding computed" in first["status"]
    assert first["details"]["encoder_runs"] == 2  # two TTA views, encoded for this visitor
    second = unpack(handlers.click(first["state"], 300, 200, app.NEGATIVE, 2, 2, True, True))
    assert second["details"]["embedding"] == "cached" and second["details"]["encoder_runs"] == 2
    assert "embedding cached" in second["status"] and "encoder runs" not in second["status"]
    height, width = photo.shape[:2]
    assert second["mask"].size == (width, height) and second["canvas"].size == (width, height)
    assert second["prob_map"]["value"].width == width and second["prob_map"]["value"].height > height  # + legend
    assert second["unc_map"]["value"] is not None


def test_encoder_runs_are_counted_per_visitor(app, tiny_checkpoint, photo):
    handlers = app.Handlers(app.load_segmenter(tiny_checkpoint))
    first = handlers.click(handlers.load(photo, False, False)[0], 100, 120, app.POSITIVE, 2, 0, False, False)
    other = unpack(handlers.click(handlers.load(photo[::-1].copy(), False, False)[0], 10, 10, app.POSITIVE,
                                  1, 0, False, False))
    assert other["details"]["encoder_runs"] == 1 and other["details"]["embedding"] == "computed"
    assert json.loads(first[-1])["encoder_runs"] == 2  # the other visitor's run is not counted here
    # the other visitor's image replaced this one in the shared cache: this visitor's next click encodes again
    again = unpack(handlers.click(first[0], 200, 150, app.POSITIVE, 2, 0, False, False))
    assert again["details"]["embedding"] == "computed" and again["details"]["encoder_runs"] == 4


def test_model_resolution(app, tiny_checkpoint, tmp_path, monkeypatch):
    import hf_iis.checkpoint_paths

    monkeypatch.delenv("HF_IIS_MODEL", raising=False)
    assert app.resolve_model(None) == str(hf_iis.DEFAULT_CHECKPOINT)  # resolve_checkpoint's embedded default
    monkeypatch.setattr(hf_iis.checkpoint_paths, "DEFAULT_CHECKPOINT", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="--model"):
        app.resolve_model(None)
    assert app.resolve_model("some/folder") == "some/folder"  # a hub repo id
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found: hub_foldr"):
        app.resolve_model("hub_foldr")  # a typo fails at once, naming it
    monkeypatch.setenv("HF_IIS_MODEL", str(tiny_checkpoint))
    assert app.resolve_model(None) == str(tiny_checkpoint)


@pytest.mark.slow
def test_spaces_app_py_is_the_thin_entry_point(tmp_path):
    text = (SPACE_DIR / "app.py").read_text()
    assert "from hf_iis.space import main" in text and len(text.splitlines()) < 30
    result = subprocess.run([sys.executable, str(SPACE_DIR / "app.py"), "--model", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and "checkpoint folder not found" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_upload_is_read_once_when_gradio_fires_change_twice(app, stand_in, tmp_path, monkeypatch):
    _, handlers = stand_in
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    payload = {"path": str(path), "orig_name": "broken.jpg"}
    visitor = SimpleNamespace(session_hash="visitor-a")
    reads, repeats = [], []
    real_read = app.handlers.read_upload

    def read_while_gradio_repeats(value, *args):
        reads.append(value)
        if len(reads) == 1:  # Gradio's second `change` runs while the first reads: it sees the session from before
            repeats.append(handlers.load(payload, False, False, Session(), visitor))
        return real_read(value, *args)

    monkeypatch.setattr(app.handlers, "read_upload", read_while_gradio_repeats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = unpack(handlers.load(payload, False, False, Session(), visitor))
        later = handlers.load(payload, False, False, first["state"], visitor)  # a repeat after the first finished
        stale = handlers.load(payload, False, False, Session(), visitor)  # ... before its session was stored
    assert len(reads) == 1 and all(value == gr.skip() for value in (*repeats[0], *later, *stale))
    assert [str(w.message) for w in caught].count(first["status"].removeprefix("⚠️ ")) == 1
    with pytest.warns(UserWarning, match="not an image"):  # another visitor's upload of the same file is its own
        handlers.load(payload, False, False, Session(), SimpleNamespace(session_hash="visitor-b"))
    assert len(reads) == 2

    good = {"path": str(tmp_path / "good.png"), "orig_name": "good.png"}
    Image.new("RGB", (40, 30), (10, 200, 10)).save(good["path"])
    loaded = unpack(handlers.load(good, False, False, first["state"], visitor))
    assert loaded["state"].image is not None and len(reads) == 3
    clicked = handlers.click(loaded["state"], 5, 5, app.POSITIVE, 1, 0, False, False)[0]
    # a good file's repeat is not read again either, and it keeps the visitor's clicks
    assert all(value == gr.skip() for value in handlers.load(good, False, False, clicked, visitor))
    assert len(reads) == 3 and len(clicked.clicks) == 1
    assert unpack(handlers.load(None, False, False, clicked, visitor))["state"].image is None  # cleared: then the
    assert unpack(handlers.load(good, False, False, Session(), visitor))["state"].image is not None  # same file loads


def test_a_16_bit_grayscale_upload_gets_a_visitor_level_message(app, stand_in, tmp_path):
    _, handlers = stand_in
    path = tmp_path / "scan.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 15).astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    expected = "16-bit grayscale images are not supported: save it as an 8-bit PNG or JPEG"
    with pytest.warns(UserWarning, match=expected):
        out = unpack(handlers.load({"path": str(path), "orig_name": "scan.png"}, False, False))
    assert "scan.png" in out["status"] and "fromarray" not in out["status"] and "mode" not in out["status"]
    with pytest.raises(gr.Error, match=expected):
        handlers.segment({"path": str(path), "orig_name": "scan.png"}, "[[1, 2, 1]]", 1, 0)


def test_a_decompression_bomb_upload_gets_a_visitor_level_message(app, stand_in, tmp_path):
    from test_huge_images import write_png

    _, handlers = stand_in
    bomb = write_png(tmp_path / "bomb.png", 15000, 15000)  # 27 KB, over PIL's decompression-bomb limit
    expected = "“bomb.png” is 225 megapixels; the limit is 100 megapixels: downscale it"
    with pytest.warns(UserWarning, match=expected):
        out = unpack(handlers.load({"path": str(bomb), "orig_name": "bomb.png"}, False, False))
    assert "not an image that can be read" not in out["status"] and out["state"].image is None
    with pytest.raises(gr.Error, match=expected):
        handlers.segment({"path": str(bomb), "orig_name": "bomb.png"}, "[[1, 2, 1]]", 1, 0)


def test_the_uncertainty_map_of_one_estimate_says_what_to_raise(app, stand_in, photo):
    _, handlers = stand_in
    state = handlers.load(photo, False, False)[0]
    single = unpack(handlers.click(state, 100, 100, app.POSITIVE, 1, 0, False, True))
    card = single["unc_map"]["value"]
    assert single["unc_map"]["visible"] and card is not None  # a card saying what to do, not an empty box
    assert "raise TTA views to ≥ 2 or triangulation pixels above 0" in single["status"]
    assert single["details"]["uncertainty"] is False
    ensemble = unpack(handlers.rerun(single["state"], 2, 0, False, True))
    assert ensemble["unc_map"]["value"].size != card.size and "raise TTA" not in ensemble["status"]
    assert "raise TTA" not in unpack(handlers.rerun(single["state"], 1, 0, False, False))["status"]
    unc_map, status = handlers.toggle_uncertainty(single["state"], True)  # the checkbox ticked after the click
    assert unc_map["value"].size == card.size and "raise TTA views" in status


def _bar_ends(legend: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Whether a row of `legend` runs from colour `low` on the left to colour `high` on the right, over more than
    half of its width (the colour bar)."""
    for row in legend.astype(int):
        at_low = np.flatnonzero(np.abs(row - low).max(1) <= 12)
        at_high = np.flatnonzero(np.abs(row - high).max(1) <= 12)
        if at_low.size and at_high.size and at_high[-1] - at_low[0] > len(row) // 2:
            return True
    return False


def test_probability_and_uncertainty_maps_carry_a_colour_legend(app, stand_in, photo):
    from hf_iis.space.rendering import colour, probability_picture, uncertainty_picture

    probabilities = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (300, 1))
    picture = np.asarray(probability_picture(probabilities))
    assert picture.shape[1] == 400 and picture.shape[0] > 300
    assert np.array_equal(picture[:300], colour(probabilities))  # the map on top, the legend strip below
    legend = picture[300:]
    assert _bar_ends(legend, colour(np.float32(0.0)), colour(np.float32(1.0)))
    assert (legend.sum(2) < 150).sum() > 50  # its labels
    spread = probabilities * 0.2  # a spread peaks far below 1: its own scale, named on the legend
    picture = np.asarray(uncertainty_picture(spread))
    assert np.array_equal(picture[:300], colour(spread, 0.2))
    assert _bar_ends(picture[300:], colour(np.float32(0.0)), colour(np.float32(1.0)))
    small = uncertainty_picture(np.zeros((40, 50), np.float32))  # a tiny map still gets a readable legend
    assert small.width >= 300 and small.height > 40
    _, handlers = stand_in
    state = handlers.load(photo, False, False)[0]
    out = unpack(handlers.click(state, 100, 100, app.POSITIVE, 2, 0, True, True))
    height, width = photo.shape[:2]
    for name in ("prob_map", "unc_map"):
        assert out[name]["value"].width == width and out[name]["value"].height > height


def test_a_lone_negative_click_selects_nothing_in_the_space(app, tmp_path):
    import skimage.data

    handlers = app.Handlers(app.load_segmenter(None))  # the embedded default: a real f−(I, x) map
    astronaut = skimage.data.astronaut()
    state = handlers.load(astronaut, False, False)[0]
    negative = unpack(handlers.click(state, 255, 120, app.NEGATIVE, 1, 0, True, False))
    assert negative["details"]["mask_area"] == 0 and negative["details"]["score"] == 0.0
    assert not np.asarray(negative["mask"]).any() and negative["details"]["selects"] is False
    assert "nothing selected" in negative["status"] and "add a positive click" in negative["status"]
    assert negative["prob_map"]["value"] is not None and negative["state"].last.probability_map().max() > 0
    assert unpack(handlers.rerun(negative["state"], 4, 0, False, False))["details"]["mask_area"] == 0
    positive = unpack(handlers.click(negative["state"], 255, 200, app.POSITIVE, 1, 0, False, False))
    assert positive["details"]["mask_area"] > 0 and "nothing selected" not in positive["status"]
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    result, score = handlers.segment({"path": str(path)}, "[[255, 120, -1]]", 1, 0)
    assert not np.asarray(Image.open(result.path)).any() and score == 0.0


def test_space_card_and_requirements():
    card = SpaceCard.load(SPACE_DIR / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == gr.__version__ == "6.31.0"
    assert (SPACE_DIR / card.data.app_file).is_file() and card.data.license == "apache-2.0" and card.data.models
    assert card.data.title and card.data.emoji and card.data.colorFrom and card.data.colorTo
    lines = [line for line in (SPACE_DIR / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["-e ..[space]"]


def test_space_serves_a_student_with_one_encode_per_view(app, photo, tmp_path):
    """The distilled student (hf_iis/checkpoints/student's kind) behind the same handlers: clicks, TTA views and
    exact triangulation, the embedding cached across clicks."""
    import torch

    import hf_iis
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    folder = tmp_path / "student"
    SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny", anchor_at_click=True)).save_pretrained(
        folder)
    hf_iis.SignedClickImageProcessor(size=64).save_pretrained(folder)
    handlers = app.Handlers(app.load_segmenter(folder))
    first = unpack(handlers.click(handlers.load(photo, False, False)[0], 100, 120, app.POSITIVE, 2, 4, True, True))
    assert first["details"]["embedding"] == "computed" and first["details"]["encoder_runs"] == 2
    second = unpack(handlers.click(first["state"], 300, 200, app.NEGATIVE, 2, 0, True, True))
    assert second["details"]["embedding"] == "cached" and second["details"]["encoder_runs"] == 2
    height, width = photo.shape[:2]
    assert second["mask"].size == (width, height)
