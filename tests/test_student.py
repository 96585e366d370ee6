"""The feature-space student: block-diagonal affinities, save / load, the pipeline contract, TTA, multi-click,
and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoModel, pipeline

import hf_iis
from hf_iis.distillation.loss import distillation_loss
from hf_iis.inference.predictors import load_predictor, predictor_for
from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel, StudentImageEmbeddings


def tiny_student(**overrides) -> SignedClickStudentModel:
    torch.manual_seed(0)
    return SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny", **overrides)).eval()


@pytest.fixture(scope="module")
def student_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    model = tiny_student(teacher="tests/tiny_teacher", teacher_scaling={"tta": 4, "triangulation": 0})
    model.save_pretrained(folder)
    hf_iis.SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def seg(student_folder):
    return pipeline("interactive-segmentation", model=str(student_folder))


@pytest.fixture
def one_thread():
    """A tiny model trains faster on one thread than on two (and much faster on a CPU shared with other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)


# ------------------------------------------------------------------ block-diagonal affinities
LABELS = np.array([[0] * 3 + [1] * 5] * 3 + [[0] * 3 + [2] * 5] * 3)  # a 6 x 8 label map with three regions


def test_constructed_embeddings_reproduce_a_block_diagonal_affinity():
    """φ(y) = α·onehot(label(y)), A = I, b+ = −α²/(2√D): σ f+(x)(y) is ≈1 within a region and ≈0 across."""
    model = tiny_student()
    alpha, d = 4.0, 8
    onehot = torch.nn.functional.one_hot(torch.from_numpy(LABELS), d).permute(2, 0, 1).float()[None]
    with torch.no_grad():
        model.head.positive_bias.fill_(-alpha**2 / (2 * math.sqrt(d)))
        emb = StudentImageEmbeddings(alpha * onehot, torch.zeros(1, 1, 6, 8))
        everything = torch.arange(48)
        affinity = torch.sigmoid(model.pairwise_logits(emb, everything, everything, 1))
    same = torch.from_numpy(LABELS.reshape(-1)[:, None] == LABELS.reshape(-1)[None, :])
    assert bool((affinity[same] > 0.9).all()) and bool((affinity[~same] < 0.1).all())


def test_trained_heads_learn_a_block_diagonal_affinity(one_thread):
    """Distil the seed's targets for a synthetic three-region image into a tiny student: f+(x) = x's region,
    f−(x) = 1/2 on each other region (m uniform among the regions that avoid x); the learned pairwise maps must
    come out block-diagonal."""
    torch.manual_seed(0)
    model = tiny_student().train()
    grid = np.zeros((16, 16), dtype=int)  # the 16 x 16 grid of a 64 px input: three regions
    grid[:8, 6:] = 1
    grid[8:, 6:] = 2
    colours = torch.tensor([[0.8, -0.6, 0.1], [-0.7, 0.5, -0.4], [0.1, 0.2, 0.9]])
    pixels = colours[torch.from_numpy(np.kron(grid, np.ones((4, 4), dtype=int)))].permute(2, 0, 1)[None]
    flat = torch.from_numpy(grid.reshape(-1))
    same = (flat[:, None] == flat[None, :]).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(120):
        idx = torch.randint(0, 256, (16,), generator=gen)
        points = torch.stack([(idx % 16) * 4 + 1.5, (idx // 16) * 4 + 1.5], dim=1).repeat(2, 1)[None]
        signs = torch.cat([torch.ones(16), -torch.ones(16)]).long()[None]
        target = torch.cat([same[idx], 0.5 * (1 - same[idx])]).reshape(1, 32, 16, 16)
        noisy = pixels + 0.05 * torch.randn(pixels.shape, generator=gen)
        out = model(pixel_values=noisy, input_points=points, input_labels=signs)
        loss = distillation_loss(out.click_logits, target, torch.ones(1, 1, 16, 16, dtype=torch.bool))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():  # train-mode BatchNorm: running averages over one image lag behind 120 fast steps
        emb = model.encode_image(pixels)
        everything = torch.arange(256)
        positive = torch.sigmoid(model.pairwise_logits(emb, everything, everything, 1))
        negative = torch.sigmoid(model.pairwise_logits(emb, everything, everything, -1))
    agree = ((positive > 0.5).float() == same).float().mean()
    assert agree > 0.95, f"f+ thresholded agrees with the block-diagonal affinity on only {agree:.1%} of pairs"
    assert positive[same > 0].mean() > 0.8 and positive[same == 0].mean() < 0.2
    assert negative[same > 0].mean() < 0.2 and abs(float(negative[same == 0].mean()) - 0.5) < 0.2


# ------------------------------------------------------------------ save / load and the pipeline
def test_save_load_round_trip(student_folder):
    assert (student_folder / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(str(student_folder)).eval()
    assert isinstance(loaded, SignedClickStudentModel)
    assert loaded.config.teacher_scaling == {"tta": 4, "triangulation": 0}
    pixels = torch.randn(1, 3, 64, 64)
    points, labels = torch.tensor([[[10.0, 20.0], [40.0, 5.0]]]), torch.tensor([[1, -1]])
    with torch.no_grad():
        expected = tiny_student()(pixel_values=pixels, input_points=points, input_labels=labels).logits
        got = loaded(pixel_values=pixels, input_points=points, input_labels=labels).logits
    assert torch.allclose(expected, got, atol=1e-6)


def test_pipeline_contract(seg, image):
    assert type(seg.predictor).__name__ == "SignedClickStudentPredictor"
    out = seg(image, clicks=[(10, 20, 1)], tta=4, return_uncertainty=True)
    assert out["mask"].size == (70, 50) and out["probabilities"].shape == (50, 70)
    probabilities = out["probabilities"]
    assert probabilities.dtype == np.float32 and 0 <= probabilities.min() <= probabilities.max() <= 1
    assert out["uncertainty"].shape == (50, 70) and out["views"] == ["identity", "hflip", "vflip", "rot180"]
    assert np.array_equal(np.asarray(out["mask"]) > 0, out["probabilities"] >= 0.5)
    before = seg.predictor.encode_count
    again = seg(image, clicks=[(30, 30, 1), (60, 40, -1)], tta=4, triangulation=16, triangulation_sampling="foreground")
    assert seg.predictor.encode_count == before and again["encoded_views"] == 0  # one cached image pass per view


def test_tta_is_the_mean_of_the_views(student_folder, image):
    predictor = load_predictor(student_folder)
    predictor.set_image(image)
    clicks = [(12, 30, 1), (50, 10, -1)]
    views = [predictor.predict(clicks, tta=[name]).probabilities for name in ("identity", "hflip")]
    assert np.allclose(predictor.predict(clicks, tta=2).probabilities, np.mean(views, 0), atol=1e-5)


def test_multi_click_is_naive_bayes_and_single_clicks_agree(student_folder, image):
    predictor = load_predictor(student_folder)
    model = predictor.model
    predictor.set_image(image)
    emb = predictor.view_embeddings(hf_iis.scaling.tta.resolve_views(1))["identity"]
    points, labels = torch.tensor([[[5.0, 9.0], [40.0, 20.0], [22.0, 30.0]]]), torch.tensor([[1, -1, 1]])
    with torch.no_grad():
        per_click = model.click_logits(emb, points, labels)
        expected = per_click.sum(1) - 2 * emb.prior_logits[:, 0]
        assert torch.allclose(model.decode(emb, points, labels)[:, 0], expected, atol=1e-5)
        padded = model.decode(emb, torch.cat([points, torch.zeros(1, 1, 2)], 1), torch.tensor([[1, -1, 1, 0]]))
        assert torch.allclose(padded[:, 0], expected, atol=1e-5)  # label 0 = padding, ignored
    single = predictor.predict_single_clicks(np.array([[10, 20], [60, 5]]), sign=-1, tta=2)
    assert single.shape == (2, 50, 70)
    assert np.allclose(single[1], predictor.predict([(60, 5, -1)], tta=2).probabilities, atol=1e-5)


def test_lone_negative_click_selects_nothing(seg, image):
    out = seg(image, clicks=[(60, 40, -1)], tta=2)
    assert not np.asarray(out["mask"]).any() and out["score"] == 0.0
    assert out["probabilities"].max() > 0  # the f− map is still there


def test_dispatch_between_teacher_and_student(tiny_checkpoint, student_folder):
    assert type(load_predictor(tiny_checkpoint)).__name__ == "SignedClickPredictor"
    assert type(load_predictor(student_folder)).__name__ == "SignedClickStudentPredictor"
    assert type(predictor_for(tiny_student())).__name__ == "SignedClickStudentPredictor"
    assert type(hf_iis.load_pipeline(student_folder).predictor).__name__ == "SignedClickStudentPredictor"
    with pytest.raises(ValueError, match="not a student"):
        hf_iis.SignedClickStudentPredictor.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match="distilled student.*load_predictor"):
        hf_iis.SignedClickPredictor.from_pretrained(student_folder)


def test_bad_input(seg, image, student_folder):
    with pytest.raises(ValueError, match="outside the 70x50 image"):
        seg(image, clicks=[(70, 10, 1)])
    with pytest.raises(ValueError, match="sign"):
        seg(image, clicks=[(5, 5, 0)])
    with pytest.raises(ValueError, match="tta"):
        pipeline("interactive-segmentation", model=str(student_folder), tta=0)
    predictor = load_predictor(student_folder)
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict([(1, 1, 1)])
    predictor.set_image(image)
    with pytest.raises(ValueError, match="triangulation sampling"):
        predictor.predict([(1, 1, 1)], triangulation=4, triangulation_sampling="sideways")
    with pytest.raises(ValueError, match="stride"):
        hf_iis.SignedClickStudentConfig(stride=2)
    with pytest.raises(ValueError, match="input_points"):
        tiny_student()(pixel_values=torch.zeros(1, 3, 64, 64))


def test_evaluate_and_bench_latency_take_a_student_folder(student_folder, data_root, tmp_path, monkeypatch):
    from tests.conftest import load_script, require_full_data

    out = tmp_path / "eval"
    argv = ["--model", str(student_folder), "--datasets", "GrabCut", "--protocols", "miou1", "--limit", "2",
            "--peers", "none", "--tta", "1,2", "--triangulation", "0,4", "--sampling", "uniform,foreground",
            "--overlays", "0", "--no-progress", "--out", str(out)]
    assert load_script("evaluate").main(argv) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    assert len(rows) == 6 and all(0 <= r["metrics"]["mIoU@1 center"] <= 100 for r in rows)
    require_full_data("bench_latency on a GrabCut photo of at least 640x480")
    monkeypatch.setattr("sys.argv", ["bench_latency.py", "--model", str(student_folder), "--repeats", "1",
                                     "--threads", "1", "--data-root", str(data_root), "--out",
                                     str(tmp_path / "latency.json")])
    load_script("bench_latency").main()
    latency = json.loads((tmp_path / "latency.json").read_text())
    assert latency["input_size"] == 64 and "tta=4,triangulation=16" in latency["grid_ms"]["warm"]


def test_anchored_positive_head_gives_sigma_b_at_the_click_itself():
    """anchor_at_click: f+(x)(x) = b+ for every grid pixel x, whatever the embeddings; f− is unchanged."""
    from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    plain = SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).eval()
    anchored = SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny", anchor_at_click=True)).eval()
    anchored.load_state_dict(plain.state_dict())
    with torch.no_grad():
        anchored.head.positive_bias.fill_(1.5)
        anchored.head.positive.weight.add_(0.3 * torch.randn_like(anchored.head.positive.weight))
        emb = anchored.encode_image(torch.randn(1, 3, 64, 64))
        idx = torch.arange(emb.embeddings.shape[-1] * emb.embeddings.shape[-2])
        positive = anchored.pairwise_logits(emb, idx, idx, 1)
        assert torch.allclose(positive.diagonal(), torch.full((len(idx),), 1.5), atol=1e-5)
        assert not torch.allclose(positive, torch.full_like(positive, 1.5))  # elsewhere it still depends on φ(y)
        assert torch.equal(anchored.pairwise_logits(emb, idx, idx, -1), plain.pairwise_logits(emb, idx, idx, -1))
    assert SignedClickStudentConfig.from_preset("lite0").anchor_at_click
    assert not SignedClickStudentConfig().anchor_at_click  # students saved before the flag load unchanged


def test_the_shipped_student_loads_and_answers_a_click(image):
    """hf_iis/checkpoints/student (the distilled default) is a student checkpoint that loads offline from
    safetensors and segments through the pipeline; its config names its teacher and the teacher's scaling."""
    folder = hf_iis.STUDENT_CHECKPOINT
    if not (folder / "model.safetensors").is_file():
        pytest.fail(f"the shipped student is missing from {folder}")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "signed_click_student" and config["anchor_at_click"] is True
    assert config["teacher_scaling"]["tta"] >= 1 and config["distillation"]["steps"] > 0
    seg = pipeline("interactive-segmentation", model=str(folder))  # the README's way
    assert isinstance(seg.model, SignedClickStudentModel) and config["triangulation_stride"] == 16
    height, width = image.shape[:2]
    out = seg(image, clicks=[(width // 2, height // 2, 1)])
    assert out["mask"].size == (width, height) and out["probabilities"].shape == (height, width)
    assert out["probabilities"][height // 2, width // 2] > 0.5  # anchored: the clicked pixel is in its own mask
