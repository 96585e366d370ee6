"""`SignedClickPredictor`, the central module: the per-view embedding cache, the batched multi-view decode against a
per-view loop, `predict_torch` (several click sets at once) against separate `predict` calls, `points_per_batch`
as an argument that never changes results, model-frame logits fed back, and checks made once per call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_iis
from hf_iis import SignedClickPredictor
from hf_iis.scaling.triangulation import sample_auxiliary_pixels, triangulate
from hf_iis.scaling.tta import resolve_views

ATOL = 1e-5


@pytest.fixture(autouse=True)
def bilinear_by_default(monkeypatch):
    """These tests check the decoding and its frames against maps brought to the photo bilinearly (what
    `predict_torch` and `map_to_input` invert exactly); the default guided upsampling has its own tests
    (test_guided_upsampling.py). A call that names `upsample` keeps it."""
    predict = SignedClickPredictor.predict

    def bilinear(self, *args, upsample="bilinear", **kwargs):
        return predict(self, *args, upsample=upsample, **kwargs)

    monkeypatch.setattr(SignedClickPredictor, "predict", bilinear)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A synthetic 150x100 photo-like image: a bright disc on a gradient, with noise (resized to 64x43 inside)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:100, :150]
    disc = ((xx - 90) ** 2 + (yy - 45) ** 2 < 30**2)[..., None] * np.array([180, 60, 40])
    base = np.stack([xx * 1.2, yy * 1.5, np.full_like(xx, 90)], axis=-1) + disc + rng.normal(0, 12, (100, 150, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture()
def predictor(tiny_checkpoint, image) -> SignedClickPredictor:
    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(image)
    return predictor


CLICKS = [(90.0, 45.0, 1), (20.0, 80.0, -1), (100.0, 50.0, 1)]


def _prev(image) -> np.ndarray:
    return np.random.default_rng(1).random(image.shape[:2]).astype(np.float32)


def _per_view_reference(predictor, clicks, prev, tta, num_aux, blend, seed=0) -> np.ndarray:
    """The estimate computed one view at a time with plain `decode` calls and the one-shot triangulation formula
    (what `predict` did before views were batched)."""
    proc, model, size = predictor.processor, predictor.model, predictor.processor.size
    original, reshaped = predictor.original_size, predictor.reshaped_size
    points = proc.points_to_input(torch.tensor([[c[0], c[1]] for c in clicks]), original, reshaped)[None]
    labels = torch.tensor([[c[2] for c in clicks]])
    prev_in = None if prev is None else proc.map_to_input(torch.from_numpy(prev)[None, None], reshaped)
    generator = torch.Generator().manual_seed(seed)
    views = resolve_views(tta)
    embeddings = predictor.view_embeddings(views)
    maps = []
    with torch.no_grad():
        for view in views:
            emb = embeddings[view.name]
            view_prev = None if prev_in is None else view.apply_image(prev_in)
            direct = torch.sigmoid(model.decode(emb, view.apply_points(points, size), labels, view_prev))[0, 0]
            estimate = direct
            if num_aux:
                valid = view.apply_image(proc.valid_region(reshaped).float(), mode="nearest")[0, 0] > 0.5
                aux, weights = sample_auxiliary_pixels(direct, valid, num_aux, "stratified", generator)
                aux_labels = torch.tensor([[1]] * num_aux + [[-1]] * num_aux)
                aux_maps = torch.sigmoid(model.decode(emb, torch.cat([aux, aux])[:, None], aux_labels))[:, 0]
                triangulated, _ = triangulate(direct, aux, weights, aux_maps[:num_aux], aux_maps[num_aux:])
                estimate = blend * direct + (1.0 - blend) * triangulated
            maps.append(view.invert_map(estimate, size))
    mean = torch.stack(maps).mean(0)
    return proc.map_to_original(mean[None, None], original, reshaped)[0, 0].clamp(0, 1).numpy()


# ----------------------------------------------------------------------------- the cache
def test_embeddings_are_cached_per_image_and_view(predictor, image):
    assert predictor.encode_count == 0  # set_image alone encodes nothing
    first = predictor.predict(CLICKS[:1], tta=4)
    assert (first.encoded_views, predictor.encode_count) == (4, 1)  # four views, one encoder batch
    predictor.set_image(image.copy())  # the same pixels: the cache stays
    again = predictor.predict(CLICKS, tta=4, triangulation=3)
    assert (again.encoded_views, predictor.encode_count) == (0, 1)
    assert predictor.predict(CLICKS, tta=8).encoded_views == 4 and predictor.encode_count == 2  # only the missing
    predictor.set_image(image[::-1].copy())  # new pixels: encoded again
    assert predictor.predict(CLICKS[:1]).encoded_views == 1 and predictor.encode_count == 3


# ----------------------------------------------------------------------------- batched == looped
@pytest.mark.parametrize("tta", [1, 2, 3, 4, 5, 6, 7, 8, 12])
@pytest.mark.parametrize("use_prev", [False, True])
@pytest.mark.parametrize("num_aux", [0, 4])
def test_batched_views_equal_a_per_view_loop(predictor, image, tta, use_prev, num_aux):
    prev = _prev(image) if use_prev else None
    out = predictor.predict(CLICKS, prev, tta=tta, triangulation=num_aux, triangulation_blend=0.3)
    expected = _per_view_reference(predictor, CLICKS, prev, tta, num_aux, 0.3)
    assert np.abs(out.probabilities - expected).max() < ATOL


def test_one_decoder_call_serves_all_views_of_one_input_size(tiny_checkpoint, image, monkeypatch):
    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    calls = []
    decode = predictor.model.decode
    monkeypatch.setattr(predictor.model, "decode", lambda *a, **k: calls.append(a[1].shape[0]) or decode(*a, **k))
    predictor.set_image(image)
    predictor.predict(CLICKS, tta=8)
    assert calls == [8]  # the 8 D4 views in one call, through image_index
    calls.clear()
    predictor.predict(CLICKS, tta=8, points_per_batch=3)
    assert calls == [3, 3, 2]
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor

    wide = SignedClickPredictor(predictor.model, SignedClickImageProcessor(size=128))  # scale views: 96 and 160 px
    wide.set_image(image)
    calls.clear()
    wide.predict(CLICKS, tta=12)
    assert sorted(calls) == [2, 2, 8]  # one call per input size


# ----------------------------------------------------------------------------- points_per_batch
def test_points_per_batch_is_an_argument_that_never_changes_results(predictor, image):
    kwargs = {"tta": 4, "triangulation": 5, "return_uncertainty": True}
    reference = predictor.predict(CLICKS, _prev(image), **kwargs)
    points = np.array([[10.0, 10.0], [90.0, 45.0], [149.0, 99.0]])
    singles = predictor.predict_single_clicks(points, tta=4)
    for batch in (1, 2, 3, 7, 200):
        out = predictor.predict(CLICKS, _prev(image), points_per_batch=batch, **kwargs)
        assert np.abs(out.probabilities - reference.probabilities).max() < ATOL
        assert np.abs(out.uncertainty - reference.uncertainty).max() < ATOL
        assert np.abs(predictor.predict_single_clicks(points, tta=4, points_per_batch=batch) - singles).max() < ATOL
        assert predictor.points_per_batch == 64  # an argument, not a setting
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="points_per_batch must be a whole number"):
            predictor.predict(CLICKS, points_per_batch=bad)


# ----------------------------------------------------------------------------- predict_torch
def test_predict_torch_serves_several_click_sets_like_separate_predict_calls(predictor, image):
    sets = [CLICKS[:1], CLICKS[:2], CLICKS]  # 1, 2 and 3 clicks: padded with label 0 to one tensor
    firsts = [predictor.predict(clicks[:1]) for clicks in sets]
    proc, original, reshaped = predictor.processor, predictor.original_size, predictor.reshaped_size
    points = torch.zeros(3, 3, 2)
    labels = torch.zeros(3, 3, dtype=torch.long)
    for i, clicks in enumerate(sets):
        points[i, : len(clicks)] = proc.points_to_input(torch.tensor([c[:2] for c in clicks]), original, reshaped)
        labels[i, : len(clicks)] = torch.tensor([c[2] for c in clicks])
    prev_logits = torch.from_numpy(np.stack([first.input_logits for first in firsts]))[:, None]
    kwargs = {"tta": 3, "triangulation": 3, "return_uncertainty": True, "seed": 5}
    batched = predictor.predict_torch(points, labels, prev_logits, **kwargs)
    assert batched.probabilities.shape == batched.uncertainty.shape == (3, 64, 64)
    assert batched.views == ["identity", "hflip", "vflip"]
    for i, clicks in enumerate(sets):
        separate = predictor.predict(clicks, prev_logits=firsts[i].input_logits, **kwargs)
        mapped = proc.map_to_original(batched.probabilities[i][None, None], original, reshaped)[0, 0].numpy()
        assert np.abs(mapped - separate.probabilities).max() < ATOL
        assert np.abs(torch.sigmoid(batched.logits[i]).numpy() - 1 / (1 + np.exp(-separate.input_logits))).max() < ATOL


def test_predict_torch_checks_its_tensors(predictor):
    points, labels = torch.full((2, 2, 2), 10.0), torch.tensor([[1, 0], [-1, 1]])
    with pytest.raises(ValueError, match=r"points must be \(B, N, 2\)"):
        predictor.predict_torch(points[0], labels[0])
    with pytest.raises(ValueError, match="labels must be"):
        predictor.predict_torch(points, labels * 2)
    with pytest.raises(ValueError, match="at least one click"):
        predictor.predict_torch(points, torch.tensor([[1, 0], [0, 0]]))
    with pytest.raises(ValueError, match="prev_logits has shape"):
        predictor.predict_torch(points, labels, torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="not both"):
        predictor.predict_torch(points, labels, torch.zeros(2, 1, 64, 64), prev_masks=torch.zeros(2, 1, 64, 64))


# ----------------------------------------------------------------------------- logits fed back
def test_input_logits_are_the_estimate_in_the_model_frame(predictor):
    out = predictor.predict(CLICKS, tta=2)
    assert out.input_logits.shape == (64, 64) and out.input_logits.dtype == np.float32
    probabilities = torch.sigmoid(torch.from_numpy(out.input_logits))[None, None]
    upsampled = predictor.processor.map_to_original(probabilities, predictor.original_size, predictor.reshaped_size)
    assert np.abs(upsampled[0, 0].numpy() - out.probabilities).max() < ATOL


def test_logits_fed_back_equal_probabilities_fed_back_when_no_resize_is_involved(tiny_checkpoint, image):
    """With the longest side equal to the model input (64x43 here), the original resolution is the model frame
    cropped, so `prev_logits=input_logits` and `prev_mask=probabilities` are the same previous mask."""
    predictor = SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(image[::2, ::2][:, :64].copy())  # 50x64: no resize, only padding
    clicks = [(40.0, 22.0, 1)]
    first = predictor.predict(clicks, tta=2)
    more = clicks + [(5.0, 40.0, -1)]
    through_logits = predictor.predict(more, prev_logits=first.input_logits, tta=2, triangulation=2)
    through_mask = predictor.predict(more, prev_mask=first.probabilities, tta=2, triangulation=2)
    assert np.abs(through_logits.probabilities - through_mask.probabilities).max() < ATOL


def test_logits_fed_back_on_a_resized_image_stay_close_to_probabilities_fed_back(predictor):
    """150x100 -> 64x43: the probabilities' round trip (upsample, then downsample again) blurs the previous mask
    slightly; the logits skip it. The results must stay close (measured on this model: max 0.003, mean 9e-5 in
    probability), and the previous mask must matter (without one the results differ by a mean 0.013)."""
    first = predictor.predict(CLICKS[:1])
    through_logits = predictor.predict(CLICKS, prev_logits=first.input_logits).probabilities
    through_mask = predictor.predict(CLICKS, prev_mask=first.probabilities).probabilities
    difference = np.abs(through_logits - through_mask)
    assert difference.max() < 0.02 and difference.mean() < 0.001
    assert np.abs(predictor.predict(CLICKS).probabilities - through_mask).mean() > 10 * difference.mean()


def test_prev_logits_are_checked(predictor):
    first = predictor.predict(CLICKS[:1])
    assert predictor.predict(CLICKS, prev_logits=torch.from_numpy(first.input_logits)[None, None]).probabilities.size
    with pytest.raises(ValueError, match=r"prev_logits has shape \(43, 64\); it must be \(64, 64\)"):
        predictor.predict(CLICKS, prev_logits=first.input_logits[:43])
    with pytest.raises(ValueError, match="finite"):
        predictor.predict(CLICKS, prev_logits=np.full((64, 64), np.nan, np.float32))
    with pytest.raises(ValueError, match="prev_mask or prev_logits, not both"):
        predictor.predict(CLICKS, prev_mask=first.probabilities, prev_logits=first.input_logits)


# ----------------------------------------------------------------------------- checks
def test_bad_input_is_a_value_error_naming_the_problem(tiny_checkpoint, predictor, image):
    with pytest.raises(ValueError, match="no image set"):
        SignedClickPredictor.from_pretrained(tiny_checkpoint).predict(CLICKS)
    for clicks, message in (([], "no clicks given"), ([(500, 1, 1)], "outside the 150x100 image"),
                            ([(1, 1, 0)], "sign must be"), ([(1, 1)], "each click must be")):
        with pytest.raises(ValueError, match=message):
            predictor.predict(clicks)
    with pytest.raises(ValueError, match="prev_mask has shape"):
        predictor.predict(CLICKS, np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="threshold must be a probability"):
        predictor.predict(CLICKS, threshold=1.5)
    with pytest.raises(ValueError, match="set_loaded_image takes the"):
        predictor.set_loaded_image(image.astype(np.float32))


def test_a_pipeline_call_checks_its_inputs_once_and_scores_once(tiny_checkpoint, image, monkeypatch):
    import hf_iis.inference.pipeline_interactive_segmentation as pipeline_module
    import hf_iis.inference.predictor as predictor_module
    import hf_iis.inference.view_cache as view_cache_module  # set_image / set_loaded_image live there

    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    calls: dict[str, int] = {}

    def count(module, name):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: calls.update({name: calls.get(name, 0) + 1}) or
                            original(*a, **k))

    for module, name in ((pipeline_module, "load_image"), (view_cache_module, "load_image"),
                         (predictor_module, "validate_clicks"), (predictor_module, "validate_prev_mask"),
                         (predictor_module, "mask_score")):
        count(module, name)
    out = seg(image, clicks=CLICKS, prev_mask=_prev(image), threshold=0.3, tta=2)
    assert calls == {"load_image": 1, "validate_clicks": 1, "validate_prev_mask": 1, "mask_score": 1}
    inside = out["probabilities"] >= 0.3
    assert out["score"] == pytest.approx(float(out["probabilities"][inside].mean()))
    assert np.array_equal(np.asarray(out["mask"]) > 0, inside)
    with pytest.raises(ValueError, match="outside the 150x100 image"):
        seg(image, clicks=[(150, 5, 1)])


def test_embeddings_cat_keeps_order_and_optional_parts(tiny_checkpoint):
    model = hf_iis.SignedClickModel.from_pretrained(tiny_checkpoint).eval()
    with torch.no_grad():
        a, b = model.encode_image(torch.randn(1, 3, 64, 64)), model.encode_image(torch.randn(1, 3, 64, 64))
    both = type(a).cat([a, b])
    assert both.batch_size == 2 and torch.equal(both.index(slice(1, 2)).features, b.features)
    assert (both.fine is None) == (a.fine is None)


def test_default_processor_normalises_like_the_model_config(tiny_checkpoint):
    """Without an explicit processor the predictor serves with the config's pixel_mean / pixel_std (what training
    normalised with), not the processor class's defaults."""
    model = SignedClickPredictor.from_pretrained(str(tiny_checkpoint)).model
    model.config.pixel_mean, model.config.pixel_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    processor = SignedClickPredictor(model).processor
    assert processor.image_mean == [0.485, 0.456, 0.406] and processor.image_std == [0.229, 0.224, 0.225]
    assert processor.size == model.config.image_size
