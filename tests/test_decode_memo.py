"""The kept last decode (`hf_iis/models/signed_click/decode_memo.py`): a multi-map predict decodes a click set once
on the plain view, not twice, with the same result; the memo never answers other inputs, training or batches."""

from __future__ import annotations

import numpy as np
import torch

from hf_iis import SignedClickImageProcessor, SignedClickPredictor
from hf_iis.models.signed_click.decode_memo import MAX_SETS, LastDecode, forget_last_decode
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from tests.conftest import tiny_saliency_model


def _counted(model):
    calls = []
    inner = model._decode_masks

    def counting(*args):
        calls.append(args[1].shape[0])
        return inner(*args)

    model._decode_masks = counting
    return calls


def _model():
    model = grow_outputs(tiny_saliency_model(), num_masks=3).eval()
    return model


def _one_click_setup():
    """A counted model, an image embedding and one positive click: what most tests below start from."""
    model = _model()
    calls = _counted(model)
    emb = model.encode_image(torch.rand(1, 3, 64, 64))
    return model, calls, emb, torch.tensor([[[20.0, 30.0]]]), torch.tensor([[1]])


def test_equal_inputs_decode_once_and_a_copy_is_returned():
    model, calls, emb, points, labels = _one_click_setup()
    prev = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        a_logits, a_iou = model.decode_masks(emb, points, labels, prev)
        a_logits.add_(100.0)  # a caller editing its result in place must not reach the next caller
        b_logits, b_iou = model.decode_masks(emb, points.clone(), labels.long(), prev.clone())
        assert len(calls) == 1
        assert torch.equal(b_logits + 100.0, a_logits) and torch.equal(a_iou, b_iou)
        model.decode_masks(emb, points, labels, prev * 0.5)  # another previous mask: decoded again
        model.decode_masks(emb, points + 1.0, labels, prev)  # another click
        model.decode_masks(emb, points, -labels, prev)  # another sign
        assert len(calls) == 4
        forget_last_decode(model)
        model.decode_masks(emb, points, -labels, prev)
        assert len(calls) == 5


def test_a_weight_changed_in_place_is_decoded_afresh():
    """An optimizer step or load_state_dict between two inference calls with the same inputs: not the kept answer."""
    model, calls, emb, points, labels = _one_click_setup()
    with torch.inference_mode():
        before, _ = model.decode_masks(emb, points, labels)
    with torch.no_grad():
        next(model.decoder.parameters()).add_(1.0)
    with torch.inference_mode():
        after, _ = model.decode_masks(emb, points, labels)
    assert len(calls) == 2 and not torch.equal(before, after)
    model.load_state_dict(model.state_dict())  # copies in place: the versions move, the values do not
    with torch.inference_mode():
        model.decode_masks(emb, points, labels)
    assert len(calls) == 3


def test_training_gradients_and_batches_are_never_kept():
    model, calls, emb, points, labels = _one_click_setup()
    with torch.no_grad():
        model.train()
        model.decode_masks(emb, points, labels)
        model.decode_masks(emb, points, labels)
        model.eval()
        many = points.expand(MAX_SETS + 1, 1, 2)
        model.decode_masks(emb, many, labels.expand(MAX_SETS + 1, 1))
        model.decode_masks(emb, many, labels.expand(MAX_SETS + 1, 1))
    model.decode_masks(emb, points, labels)  # gradients on
    model.decode_masks(emb, points, labels)
    assert len(calls) == 6


def test_a_multi_map_predict_decodes_the_plain_view_once_with_the_same_answer(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    SignedClickImageProcessor(size=64).save_pretrained(tmp_path)
    predictor = SignedClickPredictor.from_pretrained(tmp_path)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    predictor.set_image(image)
    calls = _counted(predictor.model)
    clicks = [(30, 20, 1)]
    first = predictor.predict(clicks, zoom_in=False)
    assert len(calls) == 1  # the IoU head's read and the chosen map's decode are one pass
    second = predictor.predict(clicks + [(10, 10, -1)], prev_logits=first.input_logits, zoom_in=False)
    assert len(calls) == 2  # the corrective set: one pass (the first click's ranking is cached)
    # the same answers with every decode run afresh
    reference = SignedClickPredictor.from_pretrained(tmp_path)
    reference.set_image(image)
    reference.model.__dict__["_last_decode"] = _NeverKept()
    calls_ref = _counted(reference.model)
    ref_first = reference.predict(clicks, zoom_in=False)
    ref_second = reference.predict(clicks + [(10, 10, -1)], prev_logits=ref_first.input_logits, zoom_in=False)
    assert np.array_equal(first.probabilities, ref_first.probabilities)
    assert np.array_equal(second.probabilities, ref_second.probabilities)
    assert first.predicted_iou == ref_first.predicted_iou and second.map_index == ref_second.map_index
    assert len(calls_ref) == 4  # without the memo: two passes per call


class _NeverKept(LastDecode):
    def get(self, *args):
        return None
