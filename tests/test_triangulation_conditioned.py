"""Triangulation with the condition kept (`triangulation_mode="conditioned"`): the mixture on cases small enough to
check by hand, the click sets it decodes, independence of `points_per_batch`, the plumbing and bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hf_iis
from hf_iis.inference.predictor_views import triangulate_view
from hf_iis.scaling.conditioned_triangulation import (
    TRIANGULATION_MODES,
    auxiliary_click_sets,
    check_triangulation_mode,
    conditioned_triangulate,
)
from hf_iis.scaling.triangulation import sample_auxiliary_pixels
from tests.conftest import tiny_saliency_model

# P(z | C, y ∈ m), P(z | C, y ∉ m) of the stub's two-click sets, and P(z | y ∈ m), P(z | y ∉ m) of its single clicks
TWO_IN, TWO_OUT, ONE_IN, ONE_OUT = 0.9, 0.2, 0.6, 0.3


class StubModel:
    """`decode` answers a constant map chosen by the set's length and its last click's sign, and records the sets."""

    def __init__(self, size=(3, 4)):
        self.size, self.calls = size, []

    def decode(self, embeddings, points, labels, prev_masks=None, image_index=None, map_index=None):
        self.calls.append((points.clone(), labels.clone(), None if prev_masks is None else prev_masks.clone()))
        table = {(2, 1): TWO_IN, (2, -1): TWO_OUT, (1, 1): ONE_IN, (1, -1): ONE_OUT}
        values = torch.tensor([table[(points.shape[1], int(sign))] for sign in labels[:, -1]])
        return torch.logit(values)[:, None, None, None].expand(-1, 1, *self.size).clone()


def _run_stub(mode, direct=0.75, click=((1.0, 2.0), 1), k=4, points_per_batch=64, valid=None):
    model = StubModel()
    direct = torch.full(model.size, direct) if isinstance(direct, float) else direct
    valid = torch.ones(model.size, dtype=torch.bool) if valid is None else valid
    (x, y), sign = click
    estimate, spread = triangulate_view(model, None, direct, valid, k, "uniform", torch.Generator().manual_seed(0),
                                        points_per_batch, mode=mode, click_points=torch.tensor([[x, y]]),
                                        click_labels=torch.tensor([sign]))
    return model, estimate, spread


def test_stub_with_known_two_click_answers_gives_the_hand_computed_mixture():
    # conditioned: 0.9 · 0.75 + 0.2 · 0.25 = 0.725; the seed's form: 0.6 · 0.75 + 0.3 · 0.25 = 0.525
    model, estimate, spread = _run_stub("conditioned")
    assert torch.allclose(estimate, torch.full((3, 4), 0.725), atol=1e-5)
    assert torch.allclose(spread, torch.zeros(3, 4), atol=1e-3)  # every term is the same constant
    assert all(points.shape[1] == 2 for points, _, _ in model.calls)
    _, estimate, _ = _run_stub("independent")
    assert torch.allclose(estimate, torch.full((3, 4), 0.525), atol=1e-5)


def test_hand_computed_two_pixel_case():
    # The formula itself: P(y_1 | C) = 0.8, P(y_2 | C) = 0.25, weights 1/2, two pixels z.
    direct = torch.tensor([[0.8, 0.25]])
    auxiliary = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y_in = torch.tensor([[[0.9, 0.1]], [[0.6, 0.3]]])  # σ f(C ∪ {(y_i, +1)})(z)
    y_out = torch.tensor([[[0.2, 0.7]], [[0.4, 0.5]]])  # σ f(C ∪ {(y_i, −1)})(z)
    estimate, _ = conditioned_triangulate(direct, auxiliary, torch.tensor([0.5, 0.5]), y_in, y_out)
    # z=0: 0.5·(0.9·0.8 + 0.2·0.2) + 0.5·(0.6·0.25 + 0.4·0.75) = 0.605; z=1: 0.5·0.22 + 0.5·0.45 = 0.335
    assert torch.allclose(estimate, torch.tensor([[0.605, 0.335]]))


@pytest.mark.parametrize("sign", [1, -1])
def test_conditioned_sets_keep_the_click_and_take_the_direct_map_as_previous_mask(sign):
    """x stays first with its own sign (a negative first click too), y_i follows as +1 then −1, and the direct
    estimate, zero on the padding, is every two-click set's previous mask; the seed's form decodes single clicks
    without one."""
    direct = torch.rand(3, 4, generator=torch.Generator().manual_seed(1))
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[:, 3] = False  # a padding column
    model, _, _ = _run_stub("conditioned", direct, click=((1.0, 2.0), sign), k=3, valid=valid)
    (points, labels, seen_prev), = model.calls
    assert labels.tolist() == [[sign, 1]] * 3 + [[sign, -1]] * 3
    assert torch.equal(points[:, 0], torch.tensor([[1.0, 2.0]] * 6))
    assert torch.equal(points[:3, 1], points[3:, 1])  # the same y_i in both halves
    assert torch.equal(seen_prev, (direct * valid).expand(6, 1, -1, -1))
    model, _, _ = _run_stub("independent", direct, click=((1.0, 2.0), sign), k=3, valid=valid)
    (points, labels, seen_prev), = model.calls
    assert labels.tolist() == [[1]] * 3 + [[-1]] * 3 and seen_prev is None


def test_negative_first_click_mixture_with_the_negative_click_rule():
    # C = {(x, −1)}: P(y | x ∉ m) = 0.1 everywhere. f(C ∪ {(y, −1)}) = 0.2 is capped at the previous map, 0.1
    # (click_rules.py: a negative click removes, never adds): 0.9 · 0.1 + 0.1 · 0.9 = 0.18
    _, estimate, _ = _run_stub("conditioned", 0.1, click=((0.0, 0.0), -1))
    assert torch.allclose(estimate, torch.full((3, 4), 0.18), atol=1e-5)
    # the seed's form has no previous mask, so nothing is capped: 0.6 · 0.1 + 0.3 · 0.9 = 0.33
    _, estimate, _ = _run_stub("independent", 0.1, click=((0.0, 0.0), -1))
    assert torch.allclose(estimate, torch.full((3, 4), 0.33), atol=1e-5)


def test_stub_result_does_not_depend_on_points_per_batch():
    sizes = (1, 2, 5, 64)
    results = [_run_stub("conditioned", k=7, points_per_batch=n) for n in sizes]
    assert [len(model.calls) for model, _, _ in results] == [14, 7, 4, 1]  # 14 two-click sets, n at most per call
    assert all(points.shape[0] <= n for (model, _, _), n in zip(results, sizes) for points, _, _ in model.calls)
    assert all(torch.allclose(results[0][1], other[1], atol=1e-6) for other in results[1:])  # up to rounding


def test_auxiliary_click_sets_with_padding():
    points = torch.tensor([[5.0, 6.0], [0.0, 0.0]])
    labels = torch.tensor([1, 0])  # one click and a padding slot
    aux = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    sets, signs = auxiliary_click_sets("conditioned", points, labels, aux)
    assert sets.shape == (4, 3, 2) and signs.tolist() == [[1, 0, 1], [1, 0, 1], [1, 0, -1], [1, 0, -1]]
    assert sets[:, 2].tolist() == [[1, 2], [3, 4], [1, 2], [3, 4]]
    sets, signs = auxiliary_click_sets("independent", points, labels, aux)
    assert sets.shape == (4, 1, 2) and signs.tolist() == [[1], [1], [-1], [-1]]


# ---------------------------------------------------------------- the predictor, the pipeline and the CLI
def _image() -> np.ndarray:
    return (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    predictor = hf_iis.SignedClickPredictor.from_pretrained(tiny_checkpoint)
    predictor.set_image(_image())
    return predictor


@pytest.mark.parametrize("sampling", ["uniform", "foreground"])
def test_predictor_equals_the_formula_on_its_own_two_click_decodes(predictor, sampling):
    """tta=1, blend 0: the conditioned estimate is the mixture of the model's answers to C ∪ {(y_i, ±1)}."""
    points, labels = torch.tensor([[[30.0, 20.0]]]), torch.tensor([[1]])
    out = predictor.predict_torch(points, labels, triangulation=5, triangulation_sampling=sampling,
                                  triangulation_blend=0.0, triangulation_mode="conditioned", seed=3)
    direct = predictor.predict_torch(points, labels).probabilities[0]
    aux, weights = sample_auxiliary_pixels(direct, predictor._valid[0, 0], 5, sampling,
                                           torch.Generator().manual_seed(3))
    sets, signs = auxiliary_click_sets("conditioned", points[0], labels[0], aux)
    # the direct map as every set's previous mask; predict_torch applies the negative click rule as triangulation does
    maps = predictor.predict_torch(sets, signs, prev_masks=direct[None, None].expand(10, -1, -1, -1)).probabilities
    expected, _ = conditioned_triangulate(direct, aux, weights, maps[:5], maps[5:])
    assert torch.allclose(out.probabilities[0], expected, atol=1e-5)
    seed_form = predictor.predict_torch(points, labels, triangulation=5, triangulation_sampling=sampling,
                                        triangulation_blend=0.0, seed=3)
    assert not torch.allclose(seed_form.probabilities, out.probabilities, atol=1e-4)


def test_predictor_result_does_not_depend_on_points_per_batch(predictor):
    clicks, prev = [(30, 20, 1), (5, 5, -1)], np.full((48, 80), 0.4, np.float32)
    results = [predictor.predict(clicks, prev, tta=2, triangulation=5, triangulation_mode="conditioned",
                                 points_per_batch=n).probabilities for n in (1, 3, 64)]
    assert all(np.allclose(results[0], other, atol=1e-5) for other in results[1:])


def test_pipeline_takes_the_mode_at_construction_and_per_call(tiny_checkpoint, predictor):
    from transformers import pipeline

    image = _image()
    seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint), triangulation_mode="conditioned")
    expected = predictor.predict([(30, 20, 1)], triangulation=3, triangulation_mode="conditioned").probabilities
    assert np.allclose(seg(image, clicks=[(30, 20, 1)], triangulation=3)["probabilities"], expected, atol=1e-5)
    independent = predictor.predict([(30, 20, 1)], triangulation=3).probabilities
    per_call = seg(image, clicks=[(30, 20, 1)], triangulation=3, triangulation_mode="independent")["probabilities"]
    assert np.allclose(per_call, independent, atol=1e-5)


@pytest.mark.parametrize("bad", ["seed", "Conditioned", "", None, 1])
def test_bad_modes_are_refused_naming_the_accepted_ones(tiny_checkpoint, predictor, bad):
    from transformers import pipeline

    message = r"unknown triangulation_mode .*'independent', 'conditioned'"
    with pytest.raises(ValueError, match=message):
        check_triangulation_mode(bad)
    with pytest.raises(ValueError, match=message):
        predictor.predict([(30, 20, 1)], triangulation=2, triangulation_mode=bad)
    with pytest.raises(ValueError, match=message):
        predictor.predict_torch(torch.tensor([[[30.0, 20.0]]]), torch.tensor([[1]]), triangulation_mode=bad)
    if bad is not None:  # None means "not given" to a pipeline, as for every keyword
        with pytest.raises(ValueError, match=message):
            pipeline("interactive-segmentation", model=str(tiny_checkpoint), triangulation_mode=bad)
        seg = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
        with pytest.raises(ValueError, match=message):
            seg(_image(), clicks=[(30, 20, 1)], triangulation_mode=bad)


def test_the_cli_runs_both_modes_and_refuses_others(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    from hf_iis import cli

    image_path = tmp_path / "image.png"
    Image.fromarray(_image()).save(image_path)
    common = ["segment", str(image_path), "--click", "30,20", "--triangulation", "2", "--model", str(tiny_checkpoint)]
    assert cli.main([*common, "--triangulation-mode", "conditioned", "--out", str(tmp_path / "m.png")]) == 0
    assert "2 triangulation pixels (stratified, conditioned)" in capsys.readouterr().out
    assert cli.main([*common, "--triangulation-mode", "seed", "--out", str(tmp_path / "n.png")]) == 2
    err = capsys.readouterr().err
    assert "--triangulation-mode" in err and "'independent', 'conditioned'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "n.png").exists()
    for mode in TRIANGULATION_MODES:  # the CLI spells the accepted modes itself (no torch for --help): the same ones
        args = cli.build_parser().parse_args([*common, "--triangulation-mode", mode, "--out", "m.png"])
        assert args.triangulation_mode == mode


def test_the_student_refuses_the_conditioned_mode():
    from hf_iis.inference.predictors import predictor_for
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    model = SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny")).eval()
    predictor = predictor_for(model, hf_iis.SignedClickImageProcessor(size=64))
    predictor.set_image(_image())
    with pytest.raises(ValueError, match="no decoder"):
        predictor.predict([(30, 20, 1)], triangulation=1, triangulation_mode="conditioned")
    with pytest.raises(ValueError, match="unknown triangulation_mode"):
        predictor.predict([(30, 20, 1)], triangulation_mode="seed")
    predictor.predict([(30, 20, 1)], triangulation_mode="conditioned")  # no triangulation: nothing to condition


# ---------------------------------------------------------------- the scaling study
def test_scaling_study_reports_both_forms_beside_the_direct_estimate(tiny_checkpoint, data_root, tmp_path):
    import json

    from hf_iis.training.toy import coco_mval_rows, write_corpus
    from tests.conftest import load_script

    rows = coco_mval_rows(data_root, n=2, max_side=96)
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows[1:]})
    out = tmp_path / "analysis"
    argv = ["--model", str(tiny_checkpoint), "--corpus", str(corpus), "--triangulation", "2", "--samplings",
            "uniform,foreground", "--threads", "1", "--no-progress", "--out", str(out)]
    assert load_script("analyze_scaling").main(argv) == 0
    report = json.loads((out / "analysis.json").read_text())
    direct = report["per_view_miou1"]["identity"]
    for mode, key in (("independent", "triangulation_miou1"), ("conditioned", "conditioned_triangulation_miou1")):
        for sampling in ("uniform", "foreground"):
            assert report[key][f"K=2,{sampling},alpha=1.0"] == pytest.approx(direct)  # α = 1 is the direct map
            gain = report["triangulation_gain_over_direct"][f"{mode},K=2,{sampling}"]
            assert gain["diff"] == pytest.approx(report[key][f"K=2,{sampling},alpha=0.0"] - direct)
    text = (out / "analysis.md").read_text()
    assert "| K=2 uniform, conditioned |" in text and "| K | sampling | independent | conditioned |" in text
    assert report["command"].startswith("python scripts/analyze_scaling.py --model")


@pytest.mark.parametrize("extra, message", [
    (["--triangulation-modes", "seed"], "unknown triangulation_mode 'seed'; use one of ('independent', 'conditioned')"),
    (["--triangulation-modes", ","], "--triangulation-modes ',': give a comma list"),
    (["--samplings", "importance"], "unknown triangulation sampling 'importance'"),
    (["--triangulation", "0"], "K = 0 is the direct estimate"),
    (["--triangulation", "4,x"], "triangulation must be a whole number"),
])
def test_scaling_study_refuses_bad_values_before_any_work(tmp_path, capsys, extra, message):
    from tests.conftest import load_script

    out = tmp_path / "analysis"
    argv = ["--model", "/nonexistent/model", "--corpus", str(tmp_path / "missing"), "--out", str(out), *extra]
    assert load_script("analyze_scaling").main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("analyze_scaling.py: error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_multi_map_model_runs_the_conditioned_form_on_each_map(tmp_path):
    """With S maps, every map is triangulated on its own decodes (`map_index`, as in the seed's form); each map's
    result does not depend on `points_per_batch`, and `multimask_output` returns all of them."""
    from hf_iis.models.signed_click.grow_outputs import grow_outputs

    model = grow_outputs(tiny_saliency_model(), num_masks=3)
    predictor = hf_iis.SignedClickPredictor(model, hf_iis.SignedClickImageProcessor(size=64))
    predictor.set_image(_image())
    settings = dict(triangulation=3, triangulation_mode="conditioned", triangulation_blend=0.0)
    assert len(predictor.predict([(30, 20, 1)], multimask_output=True, **settings).alternatives) == 3
    points, labels = torch.tensor([[[30.0, 20.0]]]), torch.tensor([[1]])
    for k in range(3):
        one = predictor.predict_torch(points, labels, map_index=k, points_per_batch=1, **settings).probabilities
        many = predictor.predict_torch(points, labels, map_index=k, points_per_batch=64, **settings).probabilities
        assert torch.allclose(one, many, atol=1e-5)
