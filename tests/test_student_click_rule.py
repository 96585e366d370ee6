"""The student's learned multi-click rule (`hf_iis.models.student.click_rule`): zero-started it is the predictor's
bounded naive Bayes exactly, one-click sets keep their own map, it reads the previous map and every click, it survives
save / load, the config refuses unknown rules, a shipped student predicts as before, and `distill.py train-rule`
refuses bad input and trains, resumes and saves on a tiny cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_iis.checkpoint_paths import STUDENT_CHECKPOINT
from hf_iis.distillation.rule_training import RuleTrainSpec, load_rule_student, train_rule
from hf_iis.inference.click_rules import student_click_logits
from hf_iis.models.student.click_rule import bounded_naive_bayes
from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel
from tests.conftest import load_script
from tests.test_distill import cache, sources, synthetic_image  # noqa: F401  (module fixtures reused)


def _pair(seed: int = 0) -> tuple[SignedClickStudentModel, SignedClickStudentModel]:
    """A tiny naive-Bayes student and the same weights with a zero-started learned rule."""
    torch.manual_seed(seed)
    plain = SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).eval()
    learned = SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny", click_rule="learned")).eval()
    info = learned.load_state_dict(plain.state_dict(), strict=False)
    assert not info.unexpected_keys and all(k.startswith("learned_rule.") for k in info.missing_keys)
    return plain, learned


def _randomise_rule(model: SignedClickStudentModel, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.learned_rule.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


def _clicks():
    points = torch.tensor([[[10.0, 12.0], [40.0, 30.0], [50.0, 8.0]],
                           [[33.0, 20.0], [0.0, 0.0], [0.0, 0.0]],
                           [[5.0, 50.0], [22.0, 22.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, -1, 1], [1, 0, 0], [-1, 1, 0]])
    return points, labels


def test_a_zero_started_rule_is_the_predictors_naive_bayes_exactly():
    plain, learned = _pair()
    emb = plain.encode_image(torch.randn(1, 3, 64, 64))
    points, labels = _clicks()
    with torch.no_grad():
        expected = student_click_logits(plain, emb, points, labels)
        assert torch.equal(student_click_logits(learned, emb, points, labels), expected)
        assert torch.equal(learned.decode(emb, points, labels), expected)
        assert torch.equal(learned.decode(emb, points, labels, prev_logits=torch.randn(3, 1, 16, 16)), expected)
        # without negative clicks the bounded rule is the model's own naive Bayes
        positive = labels.clamp_min(0)
        assert torch.allclose(learned.decode(emb, points, positive), plain.decode(emb, points, positive), atol=1e-5)


def test_one_click_sets_keep_their_own_map_with_a_trained_rule():
    _, learned = _pair()
    _randomise_rule(learned)
    emb = learned.encode_image(torch.randn(1, 3, 64, 64))
    points, labels = _clicks()
    with torch.no_grad():
        per_click = learned.click_logits(emb, points, labels)
        combined = learned.decode(emb, points, labels, prev_logits=torch.randn(3, 1, 16, 16))
    base = bounded_naive_bayes(per_click, labels, emb.prior_logits)
    assert torch.equal(combined[1], base[1])  # the one-click set: no residual, u + (ℓ − u) as before the rule
    assert torch.allclose(combined[1], per_click[1, :1], atol=1e-5)  # = f+(x) itself, up to rounding
    assert not torch.allclose(combined[0], base[0])


def test_the_rule_reads_the_previous_map_and_every_click():
    _, learned = _pair()
    _randomise_rule(learned)
    emb = learned.encode_image(torch.randn(1, 3, 64, 64))
    points, labels = _clicks()
    points, labels = points[:1], labels[:1]  # (+, −, +)
    with torch.no_grad():
        base = learned.decode(emb, points, labels)
        with_prev = learned.decode(emb, points, labels, prev_logits=torch.full((1, 1, 16, 16), 3.0))
        assert (with_prev - base).abs().max() > 1e-3
        for i in range(3):  # moving any one click (the oldest too) moves the answer
            moved = points.clone()
            moved[0, i] = torch.tensor([60.0, 60.0]) - moved[0, i]
            assert (learned.decode(emb, moved, labels) - base).abs().max() > 1e-3, i
        # hand case of the base: u + (ℓ1 − u) + min(0, ℓ2 − u) + (ℓ3 − u)
        per_click = learned.click_logits(emb, points, labels)
        u = emb.prior_logits
        hand = u + (per_click[:, :1] - u) + (per_click[:, 1:2] - u).clamp_max(0) + (per_click[:, 2:3] - u)
        assert torch.allclose(bounded_naive_bayes(per_click, labels, u), hand, atol=1e-5)


def test_save_and_load_keep_the_rule(tmp_path):
    _, learned = _pair()
    _randomise_rule(learned)
    learned.save_pretrained(tmp_path)
    assert any(k.startswith("learned_rule.") for k in load_file(tmp_path / "model.safetensors"))
    loaded = SignedClickStudentModel.from_pretrained(tmp_path).eval()
    assert loaded.config.click_rule == "learned"
    emb = learned.encode_image(torch.randn(1, 3, 64, 64))
    points, labels = _clicks()
    with torch.no_grad():
        assert torch.equal(loaded.decode(emb, points, labels), learned.decode(emb, points, labels))


@pytest.mark.parametrize("kwargs, word", [({"click_rule": "bayes"}, "click_rule"),
                                          ({"click_rule_channels": 0}, "click_rule_channels")])
def test_the_config_refuses_unknown_rules(kwargs, word):
    with pytest.raises(ValueError, match=word) as info:
        SignedClickStudentConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_a_shipped_student_predicts_as_before(photo):
    """The shipped student has no learned rule: its default config and its maps are the pre-rule formula's."""
    from hf_iis.inference.predictors import load_predictor

    predictor = load_predictor(STUDENT_CHECKPOINT)
    assert predictor.model.config.click_rule == "naive_bayes" and predictor.model.learned_rule is None
    predictor.set_image(photo)
    emb = predictor.model.encode_image(torch.from_numpy(np.resize(photo, (320, 320, 3))).permute(2, 0, 1)[None]
                                       .float() / 127.5 - 1)
    points = torch.tensor([[[100.0, 120.0], [200.0, 90.0], [60.0, 250.0]]])
    labels = torch.tensor([[1, -1, 1]])
    with torch.no_grad():
        per_click = predictor.model.click_logits(emb, points, labels)
        u = emb.prior_logits  # the formula the predictor applied before the learned rule existed
        terms = per_click - u
        old = u + torch.where((labels < 0)[..., None, None], terms.clamp_max(0), terms).sum(1, keepdim=True)
        assert torch.equal(student_click_logits(predictor.model, emb, points, labels), old)
    probabilities = predictor.predict([(300, 200, 1), (100, 50, -1)]).probabilities
    assert probabilities.shape == photo.shape[:2]


def test_repeated_clicks_extend_a_sequence_with_its_own_clicks_only():
    from hf_iis.distillation.rule_training import repeat_clicks

    sequences = torch.tensor([[0, 5, 6], [1, 7, -1], [2, -1, -1]])
    out = repeat_clicks(sequences, np.random.default_rng(0), prob=1.0, max_clicks=8)
    assert out.shape[1] <= 8
    for before, after in zip(sequences.tolist(), out.tolist(), strict=True):
        real = [i for i in before if i >= 0]
        longer = [i for i in after if i >= 0]
        assert longer[: len(real)] == real and len(longer) > len(real) and set(longer) == set(real)
    assert torch.equal(repeat_clicks(sequences, np.random.default_rng(0), prob=0.0, max_clicks=8), sequences)


# ---------------------------------------------------------------------------------------------------- train-rule
@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory) -> Path:
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_student")
    SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


def _argv(student, cache_dir, out, *extra):
    return ["train-rule", "--student", str(student), "--cache", str(cache_dir), "--out", str(out), "--steps", "4",
            "--batch-images", "3", "--threads", "1", "--no-progress", *extra]


@pytest.mark.slow  # builds the tiny cache (~25 s)
def test_train_rule_refuses_bad_input_before_any_work(tiny_student, tiny_checkpoint, cache, tmp_path, capsys):  # noqa: F811
    main = load_script("distill").main
    wrong_size = tmp_path / "student128"
    shutil.copytree(tiny_student, wrong_size)
    config = json.loads((wrong_size / "config.json").read_text())
    (wrong_size / "config.json").write_text(json.dumps({**config, "image_size": 128}))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(_argv(tmp_path / "nothing", cache, tmp_path / "o1"), "not a student checkpoint"),
             (_argv(tiny_checkpoint, cache, tmp_path / "o2"), "not a distilled student"),
             (_argv(tiny_student, tmp_path / "nothing", tmp_path / "o3"), "no teacher-target cache"),
             (_argv(tiny_student, cache, tmp_path / "o4", "--prev-drop", "2"), "prev_drop"),
             (_argv(tiny_student, cache, tmp_path / "o5", "--steps", "0"), "--steps"),
             (_argv(tiny_student, cache, a_file), "--out"),
             (_argv(wrong_size, cache, tmp_path / "o6"), "does not fit the cache"),
             (_argv(tiny_student, cache, tmp_path / "o7", "--batch-images", "99"), "fewer than one batch")]
    for argv, words in cases:
        assert main(argv) == 2, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # datasets' bars aside
        assert len(errors) == 1 and errors[0].startswith("distill.py: error:") and words in errors[0], (argv, errors)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 8))


@pytest.mark.slow
def test_train_rule_trains_resumes_exactly_and_saves_a_learned_student(tiny_student, cache, tmp_path, capsys):  # noqa: F811
    main = load_script("distill").main
    assert main(_argv(tiny_student, cache, tmp_path / "straight")) == 0
    final = tmp_path / "straight" / "final"
    model = SignedClickStudentModel.from_pretrained(final)
    assert model.config.click_rule == "learned" and model.config.distillation["click_rule"]["steps"] == 4
    assert model.learned_rule.out.weight.abs().sum() > 0  # trained away from zero
    frozen = load_file(tiny_student / "model.safetensors")
    saved = load_file(final / "model.safetensors")
    assert all(torch.equal(frozen[k], saved[k]) for k in frozen)  # everything but the rule is frozen
    spec = RuleTrainSpec(steps=4, batch_images=3, save_every=2)
    assert train_rule(tiny_student, cache, tmp_path / "resumed", spec, progress=False, stop_at_step=3)["stopped"]
    capsys.readouterr()
    assert main(_argv(tiny_student, cache, tmp_path / "resumed")) == 2  # a run is there: --resume or another --out
    assert "--resume" in capsys.readouterr().err
    assert main(_argv(tiny_student, cache, tmp_path / "resumed", "--resume", "--save-every", "2", "--lr", "0.5")) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(_argv(tiny_student, cache, tmp_path / "resumed", "--resume", "--save-every", "2")) == 0
    resumed = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert all(torch.equal(saved[k], resumed[k]) for k in saved)
    # the trained student runs through the pipeline with its rule
    from hf_iis.inference.predictors import load_predictor

    predictor = load_predictor(final)
    image = synthetic_image(np.random.default_rng(3))
    predictor.set_image(image)
    assert predictor.predict([(20, 30, 1), (70, 10, -1)]).probabilities.shape == image.shape[:2]
    assert load_rule_student(final, 8).learned_rule is not None


def test_the_student_predictor_feeds_the_previous_map_to_a_learned_rule_only(tmp_path):
    """`SignedClickStudentPredictor.predict(prev_mask=...)`: a trained learned rule's answer to a two-click set
    depends on the previous map (it was trained with one); naive Bayes ignores it, as before."""
    from hf_iis.inference.student_predictor import SignedClickStudentPredictor
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor

    plain, learned = _pair()
    _randomise_rule(learned)
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    clicks = [(30, 20, 1), (10, 40, -1)]
    previous = np.zeros((48, 64), dtype=np.float32)
    previous[10:30, 20:40] = 1.0
    answers = {}
    for name, model in (("plain", plain), ("learned", learned)):
        model.save_pretrained(tmp_path / name)
        SignedClickImageProcessor(size=64).save_pretrained(tmp_path / name)
        predictor = SignedClickStudentPredictor.from_pretrained(tmp_path / name)
        predictor.set_image(image)
        answers[name] = [predictor.predict(clicks, prev_mask=p).probabilities for p in (None, previous)]
        answers[name].append(predictor.predict(clicks, prev_mask=np.ones_like(previous)).probabilities)
    assert np.array_equal(answers["plain"][0], answers["plain"][1])
    assert not np.allclose(answers["learned"][0], answers["learned"][1], atol=1e-4)
    assert not np.allclose(answers["learned"][1], answers["learned"][2], atol=1e-4)
