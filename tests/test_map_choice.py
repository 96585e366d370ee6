"""Which of a multi-map model's maps answers corrective clicks: "first_click" (the default, as SAM: the map the IoU
head ranks best for the first click alone, kept for the session's later clicks) or "click_set" (re-chosen for each
whole click set); `map_index` forces a map, and the Space keeps the map of the answer a visitor picked.

The IoU head is rigged (`rig`) so that the two rankings are known and differ: one-click sets rank map 2 first, longer
sets map 0 first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from hf_iis import SignedClickImageProcessor, SignedClickPredictor
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from tests.conftest import load_script, tiny_saliency_model

torch.set_num_threads(1)

ONE_CLICK = (0.0, 0.0, 3.0)  # IoU logits of one-click sets: map 2 first, then 0, then 1
SEVERAL = (3.0, 0.0, 0.0)  # of longer sets: map 0 first
C1, C2, C3 = (30.0, 20.0, 1), (50.0, 30.0, -1), (10.0, 40.0, -1)


def sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def rig(model, one_click=ONE_CLICK, several=SEVERAL, by_x=None):
    """Replace the model's IoU logits (map k is the model's lowered by k logits) and record every decoder call's
    click count and whether it had a previous mask. `by_x` = (x, logits): one-click sets whose click lies left of
    model-input column x get these logits instead."""
    original = model.decode_masks
    calls = []

    def decode_masks(embeddings, points, labels, prev_masks=None, image_index=None):
        maps, _ = original(embeddings, points, labels, prev_masks, image_index)
        rows = []
        for p, lab in zip(points, labels):
            n = int((lab != 0).sum())
            rows.append(several if n > 1 else by_x[1] if by_x and float(p[0, 0]) < by_x[0] else one_click)
        calls.append((points.shape[1], prev_masks is None))
        # the grown model's maps agree on corrective sets (the prior enters the first click only): shift them apart
        maps = maps - torch.arange(maps.shape[1], dtype=maps.dtype).view(1, -1, 1, 1)
        return maps, torch.tensor(rows, dtype=maps.dtype)

    model.decode_masks = decode_masks
    return calls


@pytest.fixture()
def grown():
    return grow_outputs(tiny_saliency_model(), num_masks=3)


@pytest.fixture()
def predictor(grown):
    predictor = SignedClickPredictor(grown, SignedClickImageProcessor(size=64))
    predictor.set_image((np.random.default_rng(3).random((48, 72, 3)) * 255).astype(np.uint8))
    return predictor


def test_first_click_keeps_the_first_clicks_map_and_click_set_does_not(predictor):
    rig(predictor.model)
    first = predictor.predict([C1], zoom_in=False)
    assert first.map_index == 2 and first.predicted_iou == pytest.approx(sigmoid(3.0))
    clicks, back = [C1, C2], dict(prev_logits=first.input_logits, zoom_in=False)
    kept = predictor.predict(clicks, **back)
    assert kept.map_index == 2
    assert kept.predicted_iou == pytest.approx(sigmoid(0.0))  # the whole set's prediction for map 2
    assert predictor.predict(clicks, map_choice="first_click", **back).map_index == 2  # the default
    forced = predictor.predict(clicks, map_index=2, **back)
    assert np.array_equal(kept.probabilities, forced.probabilities)
    rechosen = predictor.predict(clicks, map_choice="click_set", **back)
    assert rechosen.map_index == 0 and rechosen.predicted_iou == pytest.approx(sigmoid(3.0))
    assert not np.array_equal(rechosen.probabilities, kept.probabilities)
    # every answer: in the first click's order, each with its whole-set predicted IoU
    every = predictor.predict(clicks, multimask_output=True, **back)
    assert [a.map_index for a in every.alternatives] == [2, 0, 1]
    assert [a.predicted_iou for a in every.alternatives] == pytest.approx([0.5, sigmoid(3.0), 0.5])
    assert [a.map_index for a in predictor.predict(clicks, multimask_output=True, map_choice="click_set",
                                                   **back).alternatives][0] == 0


def test_predict_torch_chooses_per_set_by_the_same_rule(predictor):
    rig(predictor.model)
    points = predictor.processor.points_to_input(torch.tensor([[[30.0, 20.0], [0.0, 0.0]], [[30.0, 20.0],
                                                                                           [50.0, 30.0]]]),
                                                 predictor.original_size, predictor.reshaped_size)
    labels = torch.tensor([[1, 0], [1, -1]])
    forced = {k: predictor.predict_torch(points, labels, map_index=k).probabilities for k in range(3)}
    kept = predictor.predict_torch(points, labels).probabilities
    assert torch.allclose(kept, forced[2], atol=1e-5)  # both sets' first click ranks map 2 first
    rechosen = predictor.predict_torch(points, labels, map_choice="click_set").probabilities
    assert torch.allclose(rechosen[0], forced[2][0], atol=1e-5)
    assert torch.allclose(rechosen[1], forced[0][1], atol=1e-5) and not torch.allclose(rechosen[1], kept[1])


def test_first_click_ious_are_read_once_per_image(predictor):
    calls = rig(predictor.model)
    first = predictor.predict([C1], zoom_in=False)
    assert len(calls) == 2  # one IoU read (the set is its first click) and the chosen map's decode
    calls.clear()
    for extra in (C2, C3):  # corrective clicks: the whole set's IoU read and the map, as with "click_set"
        predictor.predict([C1, extra], prev_logits=first.input_logits, zoom_in=False)
        assert len(calls) == 2 and (1, True) not in calls
        calls.clear()
    predictor.predict([C1, C2], prev_logits=first.input_logits, zoom_in=False, map_choice="click_set")
    assert len(calls) == 2
    calls.clear()
    predictor.set_image((np.random.default_rng(4).random((48, 72, 3)) * 255).astype(np.uint8))  # another image
    predictor.predict([C1, C2], zoom_in=False)
    assert len(calls) == 3 and (1, True) in calls  # its first click is read again
    calls.clear()
    predictor.predict([C1, C3], zoom_in=False)
    assert len(calls) == 2


def test_map_index_forces_the_map_and_comes_first(predictor):
    rig(predictor.model)
    out = predictor.predict([C1], map_index=1, zoom_in=False)
    assert out.map_index == 1 and out.predicted_iou == pytest.approx(0.5)
    every = predictor.predict([C1], map_index=1, multimask_output=True, zoom_in=False)
    assert [a.map_index for a in every.alternatives] == [1, 2, 0]  # the forced map, then the ranking
    assert np.array_equal(every.probabilities, out.probabilities)


@pytest.mark.parametrize("bad", [3, -1, True, 1.0, "1"])
def test_bad_map_index_is_a_one_line_error(predictor, bad):
    with pytest.raises(ValueError, match=r"map_index must be an int in \[0, 2\] or None") as error:
        predictor.predict([C1], map_index=bad)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="map_index"):
        predictor.predict_torch(torch.tensor([[[5.0, 5.0]]]), torch.tensor([[1]]), map_index=bad)


@pytest.mark.parametrize("bad", ["best", "", None, 1])
def test_bad_map_choice_is_a_one_line_error(predictor, bad):
    with pytest.raises(ValueError, match="map_choice must be one of 'first_click', 'click_set'") as error:
        predictor.predict([C1], map_choice=bad)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="map_choice"):
        predictor.predict_torch(torch.tensor([[[5.0, 5.0]]]), torch.tensor([[1]]), map_choice=bad)


def test_one_map_models_and_the_student_take_map_zero_only(tiny_checkpoint):
    import hf_iis
    from hf_iis.inference.student_predictor import SignedClickStudentPredictor

    image = (np.random.default_rng(3).random((48, 72, 3)) * 255).astype(np.uint8)
    torch.manual_seed(0)
    student = SignedClickStudentPredictor(hf_iis.SignedClickStudentModel(
        hf_iis.SignedClickStudentConfig.from_preset("tiny")).eval(), SignedClickImageProcessor(size=64))
    for predictor in (SignedClickPredictor.from_pretrained(tiny_checkpoint), student):
        predictor.set_image(image)
        plain = predictor.predict([C1])
        assert plain.map_index == 0
        same = predictor.predict([C1], map_index=0, map_choice="click_set")
        assert np.array_equal(same.probabilities, plain.probabilities)
        with pytest.raises(ValueError, match=r"map_index must be 0 or None \(this model has one map\), got 1"):
            predictor.predict([C1], map_index=1)
        with pytest.raises(ValueError, match="map_choice must be one of"):
            predictor.predict([C1], map_choice="best")


def test_zoom_runs_the_full_images_map_in_the_crop(grown, monkeypatch):
    from hf_iis.inference import zoom
    from hf_iis.scaling.zoom_geometry import CropBox, crop_clicks

    # a click left of model-input column 12 ranks the maps 0, 2, 1, elsewhere 1, 0, 2: the photo's click at x = 40 of
    # 300 px is left of it, the same click in the crop's frame is not, so a crop choosing again would take map 1
    rig(grown, one_click=(0.0, 3.0, 0.0), by_x=(12.0, (3.0, 0.0, 1.0)))
    predictor = SignedClickPredictor(grown, SignedClickImageProcessor(size=64))
    predictor.set_image((np.random.default_rng(1).random((200, 300, 3)) * 255).astype(np.uint8))
    seen = []
    make_crop = zoom._crop_predictor

    def spying(parent, state):
        crop = make_crop(parent, state)
        if not hasattr(crop, "unspied"):
            crop.unspied = crop.predict
            crop.predict = lambda *args, **kwargs: seen.append(kwargs) or crop.unspied(*args, **kwargs)
        return crop

    monkeypatch.setattr(zoom, "_crop_predictor", spying)
    click = [(40.0, 40.0, 1)]
    full = predictor.predict(click, zoom_in=False, threshold=0.999, multimask_output=True)
    assert [a.map_index for a in full.alternatives] == [0, 2, 1]
    out = predictor.predict(click, zoom_in=True, threshold=0.999, multimask_output=True)
    assert out.zoom_box is not None and seen[-1]["map_index"] == 0 and out.map_index == 0
    assert [a.map_index for a in out.alternatives] == [0, 2, 1]  # the full image's order
    in_crop = crop_clicks(click, CropBox(*out.zoom_box), 300, 200)
    assert predictor.zoom_state.crop_predictor.unspied(in_crop, zoom_in=False).map_index == 1  # its own choice
    single = predictor.predict(click, zoom_in=True, threshold=0.999)
    assert single.zoom_box is not None and seen[-1]["map_index"] == 0 and single.map_index == 0


def test_pipeline_forwards_and_checks_the_map_keywords(grown, tiny_checkpoint, tmp_path):
    grown.save_pretrained(tmp_path)
    SignedClickImageProcessor(size=64).save_pretrained(tmp_path)
    image = (np.random.default_rng(3).random((48, 72, 3)) * 255).astype(np.uint8)
    seg = pipeline("interactive-segmentation", model=str(tmp_path))
    out = seg(image, clicks=[C1], multimask_output=True)
    assert sorted(out["map_indices"]) == [0, 1, 2] and out["map_index"] == out["map_indices"][0]
    forced = seg(image, clicks=[C1], map_index=1, multimask_output=True, map_choice="click_set")
    assert forced["map_index"] == 1 and forced["map_indices"][0] == 1
    assert seg(image, clicks=[C1], map_index=2)["map_index"] == 2
    for bad in ({"map_index": 3}, {"map_index": "1"}, {"map_choice": "best"}):
        with pytest.raises(ValueError, match=next(iter(bad))) as error:
            seg(image, clicks=[C1], **bad)
        assert "\n" not in str(error.value)
        with pytest.raises(ValueError, match=next(iter(bad))):
            pipeline("interactive-segmentation", model=str(tmp_path), **bad)
    one_map = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    assert one_map(image, clicks=[C1], map_index=0)["map_index"] == 0
    with pytest.raises(ValueError, match="this model has one map"):
        one_map(image, clicks=[C1], map_index=1)


class MapsSegmenter:
    """A stand-in with three answers per click whose maps are (2, 0, 1) unless `map_index` forces one first; records
    the keywords of every call (and, as the tests' other stand-ins, refuses unknown ones)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, image, clicks=None, tta=1, triangulation=0, prev_mask=None, return_uncertainty=False,
                 multimask_output=False, map_index=None) -> dict:
        self.calls.append({"clicks": list(clicks), "map_index": map_index})
        maps = [2, 0, 1] if map_index is None else [map_index] + [k for k in (2, 0, 1) if k != map_index]
        height, width = np.asarray(image).shape[:2]
        answers = [np.full((height, width), 0.2 * (k + 1), np.float32) for k in maps]
        return {"probabilities": answers[0], "score": 1.0, "map_index": maps[0], "mask_probabilities": answers,
                "iou_scores": [0.9, 0.6, 0.3], "scores": [1.0, 1.0, 1.0], "map_indices": maps}


def test_space_keeps_the_picked_answers_map_until_a_new_image(photo):
    from hf_iis import space

    segmenter = MapsSegmenter()
    handlers = space.Handlers(segmenter)
    state = handlers.load(photo, False, False)[0]
    state = handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False)[0]
    assert segmenter.calls[-1]["map_index"] is None
    state = handlers.click(state, 310, 210, space.POSITIVE, 1, 0, False, False)[0]
    assert segmenter.calls[-1]["map_index"] is None  # no pick yet: the model's own rule
    state = handlers.choose(state, f"{state.last.key}:1", False, False)[0]  # answer 2: map 0
    assert state.map_index == 0
    state = handlers.click(state, 100, 100, space.NEGATIVE, 1, 0, False, False)[0]
    assert segmenter.calls[-1]["map_index"] == 0 and state.last.map_indices[0] == 0
    state = handlers.choose(state, f"{state.last.key}:2", False, False)[0]  # answer 3 of that click: map 1
    state = handlers.rerun(state, 2, 0, False, False)[0]
    assert segmenter.calls[-1]["map_index"] == 1
    assert handlers.reset(state, False, False)[0].map_index is None
    fresh = handlers.load(photo[:200], False, False, state)[0]  # a new image
    assert fresh.map_index is None
    handlers.click(fresh, 30, 20, space.POSITIVE, 1, 0, False, False)
    assert segmenter.calls[-1]["map_index"] is None


def test_space_without_map_indices_passes_no_map_index(photo):
    """A segmenter that does not name its maps (the tests' older stand-ins) never gets the keyword."""
    from hf_iis import space

    class Anonymous(MapsSegmenter):
        def __call__(self, image, **kwargs):
            out = super().__call__(image, **kwargs)
            del out["map_indices"], out["map_index"]
            return out

    segmenter = Anonymous()
    handlers = space.Handlers(segmenter)
    state = handlers.load(photo, False, False)[0]
    state = handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False)[0]
    state = handlers.choose(state, f"{state.last.key}:1", False, False)[0]
    handlers.click(state, 310, 210, space.POSITIVE, 1, 0, False, False)
    assert state.map_index is None and segmenter.calls[-1]["map_index"] is None


def test_evaluation_passes_and_names_the_map_choice(tmp_path, capsys):
    from hf_iis.evaluation.segmenters import ModelSegmenter

    class Recorder:
        def __init__(self):
            self.kwargs = None

        def predict(self, clicks=None, prev_mask=None, map_choice="first_click", **kwargs):
            self.kwargs = {"map_choice": map_choice, **kwargs}
            return type("P", (), {"probabilities": np.zeros((4, 4), np.float32)})()

    recorder = Recorder()
    seg = ModelSegmenter(recorder, map_choice="click_set")
    seg.predict([type("C", (), {"x": 1, "y": 1, "sign": 1})()], None)
    assert recorder.kwargs["map_choice"] == "click_set" and "maps=click_set" in seg.settings_label
    assert "maps=" not in ModelSegmenter(recorder).settings_label
    out = tmp_path / "o"
    assert load_script("evaluate").main(["--map-choice", "best", "--peers", "none", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evaluate.py: error: --map-choice") and "first_click" in err[0]
    assert not out.exists()
