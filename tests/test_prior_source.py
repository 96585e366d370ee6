"""`config.prior_source`: the output prior's click component cut from the saliency branch's stride-2 map (default,
every existing checkpoint) or from the photo's own full-resolution saliency map (`"stretched"`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hf_iis import SignedClickConfig, SignedClickImageProcessor, SignedClickModel
from hf_iis.backbones.stretched_saliency import STRETCHED_SIZE, stretched_input
from hf_iis.inference.predictor import SignedClickPredictor
from hf_iis.models.signed_click.grow_outputs import grow_outputs
from tests.conftest import load_script, tiny_saliency_model


def _two_blobs_one_pixel_apart():
    """A full-resolution saliency map whose two blobs are one column apart, and the stride-2 map the saliency
    branch would keep of it (max-pooled), where the gap is gone."""
    full = torch.zeros(1, 1, 64, 64)
    full[..., 8:24, 8:30] = 0.9   # blob A: columns 8..29
    full[..., 8:24, 31:50] = 0.8  # blob B: columns 31..49; column 30 is the gap
    return full, F.max_pool2d(full, 2)


def test_stretched_prior_is_the_component_at_full_resolution():
    """A positive click on blob A: map 1 of the untrained grown model is blob A alone, pixel for pixel, with the
    stretched source; the branch's stride-2 map merges the two blobs into one component."""
    branch = grow_outputs(tiny_saliency_model(), num_masks=3)
    stretched = grow_outputs(tiny_saliency_model(), num_masks=3, prior_source="stretched")
    assert stretched.config.prior_source == "stretched" and branch.config.prior_source == "branch"
    full, coarse = _two_blobs_one_pixel_apart()
    points, labels = torch.tensor([[[15.0, 12.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        pixels = torch.randn(1, 3, 64, 64)
        embeddings = stretched.encode_image(pixels, prior_saliency=full)
        embeddings.saliency = coarse
        component = stretched.decode(embeddings, points, labels, map_index=0)[0, 0] >= 0
        merged = branch.decode(embeddings, points, labels, map_index=0)[0, 0] >= 0
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[8:24, 8:30] = True
    assert torch.equal(component, expected)
    assert merged[8:24, 31:50].all()  # the branch's component runs across the gap


def test_default_source_is_the_branch_and_old_configs_load_unchanged(tmp_path):
    """Configs written before the option (no `prior_source` key) read as "branch" and answer bit for bit as an
    explicit "branch" model, without the extra saliency pass."""
    assert SignedClickConfig().prior_source == "branch"
    grown = grow_outputs(tiny_saliency_model(), num_masks=3)
    grown.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config.pop("prior_source") == "branch"
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = SignedClickModel.from_pretrained(tmp_path).eval()
    assert old.config.prior_source == "branch"
    with torch.no_grad():
        pixels = torch.randn(1, 3, 64, 64)
        embeddings = old.encode_image(pixels)
        assert embeddings.prior_saliency is None
        points, labels = torch.tensor([[[15.0, 12.0]]]), torch.tensor([[1]])
        assert torch.equal(old.decode_masks(embeddings, points, labels)[0],
                           grown.decode_masks(embeddings, points, labels)[0])


@pytest.mark.parametrize("overrides, message", [
    ({"prior_source": "padded"}, "prior_source must be one of"),
    ({"prior_source": "stretched"}, "needs prior_in_output=True"),
])
def test_bad_prior_source_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        SignedClickConfig(saliency_encoder="u2netp", **overrides)


def test_stretched_source_without_its_map_is_a_clear_error():
    model = grow_outputs(tiny_saliency_model(), num_masks=3, prior_source="stretched")
    with torch.no_grad():
        embeddings = model.encode_image(torch.randn(1, 3, 64, 64))
        with pytest.raises(ValueError, match="needs embeddings with prior_saliency"):
            model.decode(embeddings, torch.tensor([[[15.0, 12.0]]]), torch.tensor([[1]]))
        with pytest.raises(ValueError, match="prior_saliency must have shape"):
            model.encode_image(torch.randn(1, 3, 64, 64), prior_saliency=torch.zeros(1, 1, 32, 32))


def test_stretched_input_is_the_baselines_input(photo):
    """The model's extra pass sees exactly what the U²-Net-p click-component baseline's net sees."""
    from hf_iis.evaluation.saliency_peers import SALIENCY_SIZE, saliency_input

    assert STRETCHED_SIZE == SALIENCY_SIZE
    assert np.array_equal(stretched_input(photo), saliency_input(photo))


def test_predictor_runs_the_extra_pass_once_per_image(photo, monkeypatch):
    model = grow_outputs(tiny_saliency_model(), num_masks=3, prior_source="stretched")
    calls = []
    original = model.encode_prior_saliency
    monkeypatch.setattr(model, "encode_prior_saliency", lambda x: calls.append(x.shape) or original(x))
    predictor = SignedClickPredictor(model, SignedClickImageProcessor(size=64))
    predictor.set_image(photo)
    for click in ([(300, 200, 1)], [(300, 200, 1), (100, 50, -1)], [(50, 300, 1)]):
        predictor.predict(click, tta=2, zoom_in=False)
    assert calls == [(1, 3, STRETCHED_SIZE, STRETCHED_SIZE)]
    assert predictor._embeddings and all(e.prior_saliency.shape == (1, 1, 64, 64)
                                         for e in predictor._embeddings.values())
    predictor.set_image(np.ascontiguousarray(photo[::-1]))
    predictor.predict([(300, 200, 1)], zoom_in=False)
    assert len(calls) == 2


def test_grow_cli_takes_the_prior_source(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    tiny_saliency_model().save_pretrained(teacher)
    SignedClickImageProcessor(size=64).save_pretrained(teacher)
    script = load_script("train_decoder")
    out = tmp_path / "grown"
    assert script.main(["grow", "--teacher", str(teacher), "--out", str(out), "--prior-source", "stretched"]) == 0
    assert SignedClickModel.from_pretrained(out).config.prior_source == "stretched"
    capsys.readouterr()
    assert script.main(["grow", "--teacher", str(teacher), "--out", str(tmp_path / "x"),
                        "--prior-source", "padded"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prior-source must be one of" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--datasets", "Nope", "--data-root", "/tmp", "--out", "/tmp/x"], "unknown benchmark 'Nope'"),
    (["--threads", "0", "--out", "/tmp/x"], "--threads and --limit must be >= 1"),
])
def test_prior_gap_analysis_refuses_bad_arguments_in_one_line(args, message, capsys):
    assert load_script("analyze_prior_gap").main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("analyze_prior_gap.py: error:") and message in err[0]


def test_prior_source_benchmark_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    assert load_script("bench_prior_source").main(["--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench_prior_source.py: error:") and "no config.json" in err[0]
