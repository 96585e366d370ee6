"""Zoom-in crop views on the original photo (`hf_iis/scaling/zoom_geometry.py`, `hf_iis/inference/zoom.py`): the
geometry round-trips exactly, a zoomed prediction of a tiny object beats the unzoomed one with a deterministic stub
model, the crop's encoding is cached until the box moves, bad values are refused where they are given, clicks outside
the crop never index out of it, and the keyword reaches the predictor from the pipeline, the CLI, the Space and the
evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_iis
from hf_iis.cli import main as cli_main
from hf_iis.inference.predictor import SignedClickPredictor
from hf_iis.inference.zoom import AUTO_FIRST_CLICK_GAIN, zoom_applies
from hf_iis.models.signed_click.embeddings import SignedClickImageEmbeddings
from hf_iis.scaling.zoom_geometry import (
    CropBox,
    check_margin,
    check_min_size,
    check_zoom_in,
    crop_box,
    crop_clicks,
    keep_previous_box,
    paste,
    tight_box,
)

SIZE = 64  # the stub's model input
STRIDE = 8  # the stub sees the photo as 8 x 8 px blocks: a low-resolution model


class BlockStub(torch.nn.Module):
    """A deterministic stand-in for the model: the "object" is every bright pixel, seen at stride 8 (the fraction of
    bright pixels in each 8 x 8 block of the model input, thresholded at one half). Clicks are ignored, so what a
    prediction gets right depends only on the resolution at which the model sees the photo."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # a parameter: the predictor reads the device from one
        self.config = hf_iis.SignedClickConfig.from_preset("tiny", image_size=SIZE, use_pretrained_backbone=False)

    def encode_image(self, pixel_values: torch.Tensor) -> SignedClickImageEmbeddings:
        bright = (pixel_values.mean(1, keepdim=True) > 0).float()  # normalised: white > 0 > black
        blocks = torch.nn.functional.avg_pool2d(bright, STRIDE)
        return SignedClickImageEmbeddings(features=blocks, low_level=blocks)

    def decode(self, embeddings, points, labels, prev_masks=None, image_index=None, map_index=None):
        blocks = embeddings.features if image_index is None else embeddings.features[image_index]
        blocks = blocks.expand(points.shape[0], -1, -1, -1)
        up = torch.nn.functional.interpolate(blocks, scale_factor=STRIDE, mode="nearest")
        return 20.0 * (up - 0.3)  # a block at least 30 % bright is "object"


def tiny_object_photo(side: int = 512, square: tuple[int, int, int] = (300, 200, 24)):
    """A black photo with one white square (x0, y0, side): its gt mask and a click at its centre."""
    x0, y0, s = square
    image = np.zeros((side, side, 3), np.uint8)
    image[y0 : y0 + s, x0 : x0 + s] = 255
    gt = image[..., 0] > 0
    return image, gt, (x0 + s / 2 - 0.5, y0 + s / 2 - 0.5, 1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture
def stub_predictor():
    return SignedClickPredictor(BlockStub(), hf_iis.SignedClickImageProcessor(size=SIZE))


# ----------------------------------------------------------------------------- geometry
def test_crop_then_identity_then_paste_returns_the_mask_exactly():
    rng = np.random.default_rng(0)
    for _ in range(20):
        height, width = rng.integers(20, 200, size=2)
        mask = rng.random((height, width)) > 0.7
        mask[: height // 3] = False
        corrupted = np.where(rng.random((height, width)) > 0.5, 1.0, 0.0).astype(np.float32)
        tight = tight_box(mask.astype(np.float32), [])
        box = crop_box(tight, 0.4, 16, width, height)
        # outside the box the full estimate is the mask; inside, the "model" is the identity on the crop
        full = np.where(mask, 1.0, 0.0).astype(np.float32)
        full[box.y0 : box.y1, box.x0 : box.x1] = corrupted[box.y0 : box.y1, box.x0 : box.x1]
        pasted = paste(full, box.crop(mask.astype(np.float32)), box)
        assert np.array_equal(pasted >= 0.5, mask)


def test_crop_box_holds_the_estimate_with_its_margin_and_minimum_side_inside_the_photo():
    tight = CropBox(100, 50, 120, 90)  # 20 x 40
    box = crop_box(tight, 0.4, 16, 640, 480)
    assert box.contains(tight)
    assert (box.width, box.height) == (36, 72)  # (1 + 2 * 0.4) times each side, around the same centre
    assert crop_box(tight, 0.4, 320, 640, 480).width == 320  # the minimum side
    edge = crop_box(CropBox(0, 470, 10, 480), 0.4, 100, 640, 480)  # at a corner: shifted inside, same size
    assert (edge.x0, edge.y1, edge.width, edge.height) == (0, 480, 100, 100)
    assert crop_box(tight, 0.4, 1000, 640, 480) == CropBox(0, 0, 640, 480)  # never larger than the photo
    assert tight_box(np.zeros((10, 10), np.float32), [(3.0, 4.0, 1), (9.0, 9.0, -1)]) == CropBox(3, 4, 4, 5)
    assert tight_box(np.zeros((10, 10), np.float32), [(9.0, 9.0, -1)]) is None  # no estimate, no positive click


def test_clicks_outside_the_crop_are_left_out_and_edge_clicks_stay_valid():
    box = CropBox(10, 20, 50, 60)
    clicks = [(30.0, 40.0, 1), (5.0, 40.0, -1), (49.4, 59.4, -1), (49.6, 40.0, -1), (9.6, 19.6, 1)]
    assert crop_clicks(clicks, box, 100, 100) == [(20.0, 20.0, 1), pytest.approx((39.4, 39.4, -1)),
                                                  pytest.approx((-0.4, -0.4, 1))]
    last = crop_clicks([(99.49, 99.49, -1)], CropBox(60, 60, 100, 100), 100, 100)[0]
    assert last[0] < 40 - 0.5 and last[1] < 40 - 0.5  # the photo's last pixel is the crop's last pixel


def test_box_tolerance_keeps_a_box_that_barely_moved():
    old = CropBox(100, 100, 300, 300)
    assert keep_previous_box(old, CropBox(102, 101, 301, 302), CropBox(150, 150, 250, 250))
    assert not keep_previous_box(old, CropBox(140, 100, 340, 300), CropBox(150, 150, 250, 250))  # IoU 0.67
    assert not keep_previous_box(old, CropBox(101, 100, 301, 300), CropBox(150, 150, 305, 250))  # estimate outside
    assert not keep_previous_box(None, old, old)


@pytest.mark.parametrize("bad", ["yes", "on", 1, 0, None, "Auto"])
def test_zoom_in_accepts_only_its_three_values(bad):
    with pytest.raises(ValueError, match=r"zoom_in must be False, True or 'auto'"):
        check_zoom_in(bad)
    assert [check_zoom_in(v) for v in (False, True, "auto", np.True_)] == [False, True, "auto", True]


@pytest.mark.parametrize("bad", [-0.1, 2.5, True, "0.4", float("nan")])
def test_margin_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"zoom_margin must be a number in \[0, 2\]"):
        check_margin(bad)


@pytest.mark.parametrize("bad", [0, 8, 40.5, True, "64"])
def test_min_size_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"zoom_min_size must be None .* >= 16"):
        check_min_size(bad)


def test_auto_zooms_corrective_clicks_and_small_objects_only():
    small, large = CropBox(0, 0, 100, 100), CropBox(0, 0, 500, 480)  # gains 6.4 and 1.28 on 640 x 480
    one, two = [(5.0, 5.0, 1)], [(5.0, 5.0, 1), (50.0, 50.0, -1)]
    assert zoom_applies("auto", one, small, 640, 480) and 640 / 100 >= AUTO_FIRST_CLICK_GAIN
    assert not zoom_applies("auto", one, large, 640, 480)
    assert zoom_applies("auto", two, large, 640, 480) and zoom_applies(True, one, large, 640, 480)
    assert not zoom_applies(True, one, CropBox(0, 0, 600, 480), 640, 480)  # gain 1.07 < MIN_GAIN
    assert not zoom_applies(True, [(5.0, 5.0, -1)], small, 640, 480)  # no positive click: nothing selected
    assert not zoom_applies(False, two, small, 640, 480)


# ----------------------------------------------------------------------------- the predictor
def test_zoom_on_a_tiny_object_beats_the_full_view(stub_predictor):
    image, gt, click = tiny_object_photo()
    stub_predictor.set_image(image)
    plain = stub_predictor.predict([click], zoom_in=False)
    zoomed = stub_predictor.predict([click], zoom_in=True)
    assert plain.zoom_box is None and zoomed.zoom_box is not None
    assert iou(plain.mask(), gt) < 0.1  # 3 x 3 model pixels: under 30 % of any 8 x 8 block
    assert iou(zoomed.mask(), gt) > 0.5
    x0, y0, x1, y1 = zoomed.zoom_box
    assert (x1 - x0, y1 - y0) == (SIZE, SIZE)  # the default minimum side: the model's input size
    assert np.array_equal(zoomed.probabilities[:y0], plain.probabilities[:y0])  # outside: the full estimate
    assert zoomed.views == ["identity", "zoom:identity"] and zoomed.encoded_views == 1  # the crop; the photo: cached
    assert zoomed.input_logits.shape == (SIZE, SIZE)


def test_zoom_composes_with_flip_views(stub_predictor):
    image, gt, click = tiny_object_photo()
    stub_predictor.set_image(image)
    zoomed = stub_predictor.predict([click], zoom_in=True, tta=4)
    assert zoomed.views[4:] == ["zoom:identity", "zoom:hflip", "zoom:vflip", "zoom:rot180"]
    assert iou(zoomed.mask(), gt) > 0.5


def test_the_crop_is_encoded_again_only_when_the_box_moves(stub_predictor):
    image, gt, click = tiny_object_photo()
    stub_predictor.set_image(image)
    first = stub_predictor.predict([click], zoom_in=True)
    crop = stub_predictor.zoom_state.crop_predictor
    assert crop.encode_count == 1
    nudged = (click[0] + 1, click[1] - 1, 1)  # a box a pixel away: IoU > 0.9, the cached crop serves
    again = stub_predictor.predict([click, nudged], prev_mask=first.probabilities, zoom_in=True)
    assert crop.encode_count == 1 and again.zoom_box == first.zoom_box and again.encoded_views == 0
    assert stub_predictor.predict([click], zoom_in=True).encoded_views == 0
    far = stub_predictor.predict([(60.0, 60.0, 1)], zoom_in=True)  # another place: a new box, a new encoding
    assert crop.encode_count == 2 and far.zoom_box != first.zoom_box and far.encoded_views == 1
    stub_predictor.set_image(image[::-1].copy())  # a new photo drops the old box
    assert stub_predictor.predict([(311.5, 299.5, 1)], zoom_in=True).zoom_box != first.zoom_box
    assert crop.encode_count == 3


def test_a_negative_click_outside_the_crop_is_left_out_not_an_index_error(stub_predictor):
    image, gt, click = tiny_object_photo()
    stub_predictor.set_image(image)
    for far in [(0.0, 0.0, -1), (511.49, 511.49, -1), (511.49, 0.0, -1)]:
        out = stub_predictor.predict([click, far], zoom_in="auto")
        assert out.zoom_box is not None and iou(out.mask(), gt) > 0.5
    corner = stub_predictor.predict([(511.49, 511.49, 1)], zoom_in=True)  # a positive click on the last pixel
    assert corner.zoom_box[2:] == (512, 512)


def test_auto_leaves_a_large_objects_first_click_unzoomed(stub_predictor):
    image, _, _ = tiny_object_photo(side=128, square=(10, 10, 100))
    stub_predictor.set_image(image)
    assert stub_predictor.predict([(60.0, 60.0, 1)], zoom_in="auto").zoom_box is None


def test_the_keyword_is_checked_before_any_work(stub_predictor):
    image, _, click = tiny_object_photo()
    stub_predictor.set_image(image)
    for bad in ({"zoom_in": "yes"}, {"zoom_margin": 3}, {"zoom_min_size": 1}):
        with pytest.raises(ValueError, match="zoom_"):
            stub_predictor.predict([click], **bad)
    assert stub_predictor.encode_count == 0


def test_multi_map_models_zoom_every_answer():
    from hf_iis.models.signed_click.grow_outputs import grow_outputs

    torch.manual_seed(0)
    model = grow_outputs(hf_iis.SignedClickModel(hf_iis.SignedClickConfig.from_preset(
        "tiny", image_size=SIZE, use_pretrained_backbone=False, saliency_encoder="u2netp", saliency_input_size=SIZE,
        saliency_click_prior=True)).eval(), num_masks=3)
    predictor = SignedClickPredictor(model, hf_iis.SignedClickImageProcessor(size=SIZE))
    image = (np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    # threshold 0.999: a random model's mask is (nearly) empty, so the box is the click's, and zoom applies
    out = predictor.predict([(40.0, 40.0, 1)], zoom_in=True, threshold=0.999, multimask_output=True)
    assert out.zoom_box is not None and len(out.alternatives) == 3
    assert all(a.zoom_box == out.zoom_box and a.probabilities.shape == (200, 300) for a in out.alternatives)
    assert out.predicted_iou is not None


def test_the_student_zooms_too():
    from hf_iis.inference.student_predictor import SignedClickStudentPredictor

    torch.manual_seed(0)
    model = hf_iis.SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny")).eval()
    predictor = SignedClickStudentPredictor(model, hf_iis.SignedClickImageProcessor(size=SIZE))
    image = (np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    plain = predictor.predict([(40.0, 40.0, 1)], threshold=0.999)
    out = predictor.predict([(40.0, 40.0, 1), (250.0, 150.0, -1)], threshold=0.999, zoom_in=True, tta=2)
    assert out.zoom_box is not None and out.views == ["identity", "hflip", "zoom:identity", "zoom:hflip"]
    x0, y0, x1, y1 = out.zoom_box
    assert np.array_equal(out.probabilities[y1:], predictor.predict([(40.0, 40.0, 1), (250.0, 150.0, -1)],
                                                                    threshold=0.999, tta=2).probabilities[y1:])
    assert plain.zoom_box is None


# ----------------------------------------------------------------------------- pipeline, CLI, evaluation
@pytest.mark.parametrize("bad", [{"zoom_in": "yes"}, {"zoom_margin": -1.0}, {"zoom_min_size": 4}])
def test_pipeline_refuses_bad_zoom_values_at_construction_and_per_call(tiny_checkpoint, bad):
    with pytest.raises(ValueError, match="zoom_"):
        pipeline("interactive-segmentation", model=str(tiny_checkpoint), **bad)
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    with pytest.raises(ValueError, match="zoom_"):
        seg(np.zeros((40, 60, 3), np.uint8), clicks=[(5, 5, 1)], **bad)


def test_pipeline_forwards_zoom_from_construction_and_per_call(tiny_checkpoint, monkeypatch):
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint), zoom_in="auto", zoom_margin=0.2)
    seen = []
    original = seg.predictor.predict
    monkeypatch.setattr(seg.predictor, "predict", lambda *a, **k: seen.append(k) or original(*a, **k))
    image = (np.random.default_rng(2).random((120, 160, 3)) * 255).astype(np.uint8)
    seg(image, clicks=[(20, 20, 1)])
    out = seg(image, clicks=[(20, 20, 1)], zoom_in=True, threshold=0.999, zoom_min_size=32)
    given = [k for k in seen if "zoom_margin" in k]  # the pipeline's calls, not the zoomed path's inner ones
    assert (given[0]["zoom_in"], given[0]["zoom_margin"]) == ("auto", 0.2)
    assert (given[1]["zoom_in"], given[1]["zoom_min_size"]) == (True, 32)
    assert out["zoom_box"] is not None and out["views"][-1] == "zoom:identity"


def test_cli_takes_zoom_in_and_refuses_other_words(tiny_checkpoint, photo, tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    args = ["segment", str(path), "--click", "300,200", "--model", str(tiny_checkpoint), "--out",
            str(tmp_path / "m.png")]
    assert cli_main([*args, "--zoom-in", "auto"]) == 0
    assert "zoom-in auto" in capsys.readouterr().out
    assert cli_main([*args, "--zoom-in", "maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--zoom-in" in err[0] and "auto" in err[0]


def test_evaluate_labels_rows_by_zoom_setting(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("evaluate", Path(__file__).parents[1] / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    args = evaluate.parse_args(["--zoom-in", "off,auto", "--out", str(tmp_path / "e")])
    assert evaluate.config_from_args(args, "x").zoom_in == [False, "auto"]
    with pytest.raises(ValueError, match="--zoom-in"):
        evaluate.config_from_args(evaluate.parse_args(["--zoom-in", "off,maybe"]), "x")


def test_space_zoom_radio_reaches_the_segmenter_and_the_status(photo, tmp_path):
    import json

    import gradio as gr
    from gradio.helpers import special_args
    from PIL import Image

    from hf_iis import space
    from hf_iis.space.rendering import as_cached_files

    calls = []

    def segmenter(image, clicks=None, **kwargs):  # the pipeline's signature; a crop box when asked to zoom
        calls.append(kwargs)
        out = {"probabilities": np.zeros(image.shape[:2], np.float32), "score": 0.0, "seconds": 0.001}
        if kwargs.get("zoom_in"):
            out["zoom_box"] = (0, 0, 10, 10)
        return out

    handlers = space.Handlers(segmenter)
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    state = handlers.load({"path": str(path), "orig_name": path.name}, False, False)[0]
    # the UI's select inputs: [state, sign, tta, triangulation, show_prob, show_unc, zoom]; Gradio puts the click
    # event at the handler's `evt` place, so the zoom word still lands on `zoom`
    event = gr.SelectData(None, {"index": [300, 200], "value": None, "selected": True})
    inputs, *_ = special_args(as_cached_files(handlers.select), [state, space.POSITIVE, 1, 0, False, False, "on"],
                              event_data=event)
    out = handlers.select(*inputs)
    assert calls[-1]["zoom_in"] is True
    assert json.loads(out[-1])["zoom_box"] == [0, 0, 10, 10] and "zoomed crop" in out[-2]
    rerun = handlers.rerun(out[0], 1, 0, False, False, "off")
    assert calls[-1]["zoom_in"] is False and json.loads(rerun[-1])["zoom_box"] is None


def test_auto_is_the_default_everywhere_and_off_is_passed_on(photo, tmp_path):
    """The predictor's default is "auto" (chosen on validation); the Space's radio starts there and sends no
    keyword for it, and "off" reaches the segmenter as zoom_in=False."""
    import inspect

    from PIL import Image

    from hf_iis import SignedClickPredictor, space
    from hf_iis.cli import build_parser

    assert inspect.signature(SignedClickPredictor.predict).parameters["zoom_in"].default == "auto"
    assert build_parser().parse_args(["segment", "x.png", "--click", "1,1", "--out", "m.png"]).zoom_in == "auto"
    calls = []

    def segmenter(image, clicks=None, **kwargs):
        calls.append(kwargs)
        return {"probabilities": np.zeros(image.shape[:2], np.float32), "score": 0.0, "seconds": 0.001}

    handlers = space.Handlers(segmenter)
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    state = handlers.load({"path": str(path), "orig_name": path.name}, False, False)[0]
    handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False)
    assert "zoom_in" not in calls[-1]
    handlers.click(state, 310, 210, space.POSITIVE, 1, 0, False, False, "off")
    assert calls[-1]["zoom_in"] is False


def test_measurements_without_zoom_say_so_to_a_predictor_whose_default_zooms():
    """evaluate.py's rows without zoom, compare_checkpoints' center clicks and the distillation targets pass
    zoom_in=False: the teacher's default ("auto") must not change what they measure."""
    from hf_iis.evaluation.segmenters import ModelSegmenter
    from hf_iis.utils.clicker import Click
    from tests.conftest import load_script

    seen = []

    class Recorder:
        def predict(self, clicks=None, prev_mask=None, zoom_in="auto", **kwargs):
            seen.append(zoom_in)
            return type("P", (), {"probabilities": np.zeros((4, 4), np.float32)})()

    ModelSegmenter(Recorder()).predict([Click(1.0, 1.0, 1)], None)
    ModelSegmenter(Recorder(), zoom_in="auto").predict([Click(1.0, 1.0, 1)], None)
    assert seen == [False, "auto"]
    settings = load_script("compare_checkpoints").CENTER_SETTINGS
    assert all(s["zoom_in"] is False for s in settings.values())
