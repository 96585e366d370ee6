"""A multi-map model's answers in the Space: offered best first in the answers radio (hidden for one answer); the
picked one is the shown mask, the full-size mask and the next click's `prev_mask`; the details say how many answers
there are and which one is chosen; `/segment` keeps its output (the best answer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_space_handlers import DiskSegmenter, unpack

from hf_iis import space
from hf_iis.space.handlers import NOT_ANSWER_1
from hf_iis.space.rendering import upsample
from tests.conftest import tiny_saliency_model

torch.set_num_threads(1)

RADII = (30, 15, 60)  # the stand-in's answers, best first
IOUS = (0.91, 0.62, 0.35)


class AnswersSegmenter(DiskSegmenter):
    """Three answers per click, as a multi-map model gives them: disks of the radii in `RADII` (best first), with
    predicted IoUs `IOUS`; `multimask_output=False` gives the best one alone."""

    def __call__(self, image, clicks=None, multimask_output=False, **kwargs) -> dict:
        answers = []
        for radius in RADII:
            self.radius = radius
            answers.append(super().__call__(image, clicks=clicks, multimask_output=multimask_output, **kwargs))
        del self.calls[-len(RADII) + 1:]  # one model call
        best = {**answers[0], "iou_score": IOUS[0]}
        if multimask_output:
            best.update(masks=[a["mask"] for a in answers], mask_probabilities=[a["probabilities"] for a in answers],
                        iou_scores=list(IOUS), scores=[a["score"] for a in answers])
        return best


@pytest.fixture()
def answers():
    segmenter = AnswersSegmenter()
    return segmenter, space.Handlers(segmenter)


def disk_area(radius: int) -> float:
    return np.pi * radius**2


def test_answers_are_offered_best_first_and_the_pick_is_the_mask_and_the_next_prev_mask(answers, photo):
    segmenter, handlers = answers
    height, width = photo.shape[:2]
    state = handlers.load(photo, False, False)[0]
    first = unpack(handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False))
    assert segmenter.calls[-1]["multimask_output"] is True
    radio = first["answers"]
    labels, values = zip(*radio["choices"])
    assert radio["visible"] and labels == ("answer 1 · predicted IoU 0.91", "answer 2 · predicted IoU 0.62",
                                           "answer 3 · predicted IoU 0.35")
    assert radio["value"] == values[0]
    assert first["details"]["answers"] == 3 and first["details"]["answer"] == 1
    assert first["details"]["predicted_iou"] == 0.91 and "answer 1 of 3 (predicted IoU 0.91)" in first["status"]
    assert abs(first["details"]["mask_area"] - disk_area(30)) < 0.05 * disk_area(30)

    calls = len(segmenter.calls)
    picked = unpack(handlers.choose(first["state"], values[2], False, False))  # the radio's value
    assert len(segmenter.calls) == calls  # picking an answer runs no model
    assert picked["answers"]["value"] == values[2] and picked["answers"]["visible"]
    assert picked["details"]["answer"] == 3 and picked["details"]["answers"] == 3
    assert picked["details"]["predicted_iou"] == 0.35 and "answer 3 of 3" in picked["status"]
    assert abs(picked["details"]["mask_area"] - disk_area(60)) < 0.05 * disk_area(60)
    step = picked["state"].last
    assert np.array_equal(step.probabilities, step.answers[2]) and step.chosen == 2
    full = np.asarray(picked["mask"]) > 0  # the full-size download is the picked answer's
    assert full.shape == (height, width) and np.array_equal(full, step.mask((width, height)))
    assert full[200, 300 + 45] and not (np.asarray(first["mask"]) > 0)[200, 300 + 45]
    assert first["state"].last.chosen == 0  # handlers never change the incoming session

    second = unpack(handlers.click(picked["state"], 320, 210, space.NEGATIVE, 1, 0, False, False))
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], step.answers[2].astype(np.float32))
    assert second["details"]["answer"] == 1 and second["details"]["n_clicks"] == 2  # a new click: its best
    undone = unpack(handlers.undo(second["state"], False, False))
    assert undone["details"]["answer"] == 3 and undone["answers"]["value"] == values[2]
    assert undone["details"]["mask_area"] == picked["details"]["mask_area"]
    rerun = unpack(handlers.rerun(undone["state"], 2, 0, False, False))  # a new prediction: its best again
    assert rerun["details"]["answer"] == 1 and rerun["details"]["tta"] == 2
    assert unpack(handlers.choose(rerun["state"], 0, False, False))["details"]["answer"] == 1


def test_a_pick_that_is_not_offered_gives_a_message_and_keeps_the_session(answers, photo):
    _, handlers = answers
    state = handlers.load(photo, False, False)[0]
    clicked = handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False)[0]
    with pytest.warns(UserWarning, match="no answer 5"):
        out = unpack(handlers.choose(clicked, 5, False, False))
    assert out["state"] is clicked and out["details"]["answer"] == 1
    before = unpack(handlers.choose(state, 1, False, False))  # no click yet: nothing to pick, nothing changes
    assert before["state"] is state and not before["answers"]["visible"]
    assert unpack(handlers.choose(clicked, None, False, False))["state"] is clicked


def test_a_pick_made_on_an_earlier_click_is_not_applied_to_the_next(answers, photo):
    """A pick made while the next click was still queued arrives after that click's prediction: it names the step it
    was made on, and is not applied to the new click's answers."""
    _, handlers = answers
    state = handlers.load(photo, False, False)[0]
    first = unpack(handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False))
    stale = first["answers"]["choices"][2][1]
    second = unpack(handlers.click(first["state"], 320, 210, space.POSITIVE, 1, 0, False, False))
    with pytest.warns(UserWarning, match="belonged to an earlier click"):
        out = unpack(handlers.choose(second["state"], stale, False, False))
    assert out["state"] is second["state"] and out["details"]["answer"] == 1
    fresh = second["answers"]["choices"][2][1]
    assert unpack(handlers.choose(second["state"], fresh, False, False))["details"]["answer"] == 3
    undone = unpack(handlers.undo(second["state"], False, False))  # the first click again: its own list counts
    assert unpack(handlers.choose(undone["state"], stale, False, False))["details"]["answer"] == 3


def test_one_answer_hides_the_radio(app_handlers, photo):
    segmenter, handlers = app_handlers
    state = handlers.load(photo, False, False)[0]
    out = unpack(handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False))
    assert not out["answers"]["visible"] and out["details"]["answers"] == 1 and out["details"]["answer"] == 1
    assert out["details"]["predicted_iou"] is None and "answer 1 of" not in out["status"]
    assert not unpack(handlers.load(None, False, False))["answers"]["visible"]


@pytest.fixture()
def app_handlers():
    segmenter = DiskSegmenter()
    return segmenter, space.Handlers(segmenter)


def test_the_uncertainty_map_is_answer_1s(answers, photo):
    _, handlers = answers
    state = handlers.load(photo, False, False)[0]
    best = unpack(handlers.click(state, 300, 200, space.POSITIVE, 2, 0, False, True))
    assert best["details"]["uncertainty"] is True
    other = unpack(handlers.choose(best["state"], 1, False, True))
    assert other["details"]["uncertainty"] is False and "pick answer 1" in other["status"]
    assert "raise TTA" not in other["status"]
    card = other["unc_map"]["value"]
    assert card.size == space.rendering.hint_card(NOT_ANSWER_1).size
    back = unpack(handlers.choose(other["state"], 0, False, True))
    assert back["details"]["uncertainty"] is True and back["unc_map"]["value"].size != card.size


def test_the_segment_endpoint_keeps_its_output(answers, photo, tmp_path):
    segmenter, handlers = answers
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    result, score = handlers.segment({"path": str(path)}, "[[300, 200, 1]]", 1, 0)
    assert segmenter.calls[-1]["multimask_output"] is False  # the best answer alone: no other map is run
    mask = np.asarray(Image.open(result.path)) > 0
    assert abs(mask.sum() - disk_area(30)) < 0.05 * disk_area(30) and score == 1.0


# ----------------------------------------------------------------------------- a real multi-map model
@pytest.fixture(scope="module")
def multimask_checkpoint(tmp_path_factory):
    from hf_iis import SignedClickImageProcessor
    from hf_iis.models.signed_click.grow_outputs import grow_outputs

    grown = grow_outputs(tiny_saliency_model(), num_masks=3)
    folder = tmp_path_factory.mktemp("space_multimask")
    grown.save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


class Recording:
    """The real pipeline, recording each call's keyword arguments."""

    def __init__(self, pipeline) -> None:
        self.pipeline, self.calls = pipeline, []

    def __call__(self, image, **kwargs) -> dict:
        self.calls.append(kwargs)
        return self.pipeline(image, **kwargs)


def test_a_real_multi_map_model_offers_its_answers_and_the_pick_is_fed_back(multimask_checkpoint, photo):
    segmenter = Recording(space.load_segmenter(multimask_checkpoint))
    handlers = space.Handlers(segmenter)
    height, width = photo.shape[:2]
    state = handlers.load(photo, False, False)[0]
    first = unpack(handlers.click(state, 300, 200, space.POSITIVE, 1, 0, False, False))
    direct = segmenter.pipeline(photo, clicks=[(300, 200, 1)], multimask_output=True)
    assert first["details"]["answers"] == 3 and first["answers"]["visible"]
    assert [label for label, _ in first["answers"]["choices"]] == [f"answer {k + 1} · predicted IoU {iou:.2f}"
                                                                   for k, iou in enumerate(direct["iou_scores"])]
    # best first by the photo's ranking: this first click zooms, and the crop runs the photo's maps in its order
    unzoomed = segmenter.pipeline(photo, clicks=[(300, 200, 1)], multimask_output=True, zoom_in=False)
    assert direct["map_indices"] == unzoomed["map_indices"]
    assert unzoomed["iou_scores"] == sorted(unzoomed["iou_scores"], reverse=True)
    assert first["details"]["predicted_iou"] == round(direct["iou_scores"][0], 4)
    step = first["state"].last
    for answer, expected in zip(step.answers, direct["mask_probabilities"]):
        assert np.array_equal(answer, expected.astype(np.float16))

    picked = unpack(handlers.choose(first["state"], first["answers"]["choices"][2][1], False, False))
    step = picked["state"].last
    assert picked["details"]["answer"] == 3
    assert np.array_equal(step.probability_map(), direct["mask_probabilities"][2].astype(np.float16))
    assert picked["details"]["score"] == round(direct["scores"][2], 4)
    full = np.asarray(picked["mask"]) > 0
    assert full.shape == (height, width)
    assert np.array_equal(full, upsample(direct["mask_probabilities"][2].astype(np.float16).astype(np.float32),
                                         (width, height)) >= 0.5)

    # zoom off: a zoomed second click would encode its crop; here the photo's cached embedding is the point
    second = unpack(handlers.click(picked["state"], 100, 100, space.NEGATIVE, 1, 0, False, False, "off"))
    assert np.array_equal(segmenter.calls[-1]["prev_mask"], step.probability_map())
    assert second["details"]["answers"] == 3 and second["details"]["embedding"] == "cached"
