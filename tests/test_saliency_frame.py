"""`config.saliency_frame`: the saliency branch on the padded model input (default, every existing checkpoint) or
once per view on the photo alone stretched to a square, its outputs resampled into the padded model frame."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from hf_iis import SignedClickConfig, SignedClickImageProcessor, SignedClickModel
from hf_iis.backbones.saliency_frame import place_in_boxes
from hf_iis.inference.predictor import SignedClickPredictor
from hf_iis.scaling.tta import D4_VIEWS, VIEWS_BY_NAME
from hf_iis.scaling.view_boxes import view_box, view_stretched
from hf_iis.training.toy import write_corpus
from tests.conftest import load_script, tiny_saliency_model
from tests.test_decoder_training import _synthetic_rows


def test_default_frame_is_padded_and_its_outputs_are_the_old_formula(tmp_path):
    """A config without the key reads as "padded", and the branch's outputs are exactly the padded-input formula
    (the net on the resized model input, every output bilinearly resized to the frame)."""
    model = tiny_saliency_model()
    assert model.config.saliency_frame == "padded"
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config.pop("saliency_frame") == "padded"
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = SignedClickModel.from_pretrained(tmp_path).eval()
    assert old.config.saliency_frame == "padded"
    branch = old.saliency
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps, (f2, f4, f8) = branch.saliency_outputs(pixels)

        def up(t, size):
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        d2 = torch.sigmoid(up(maps[:, :1], (32, 32)))
        low = d2.amin(dim=(2, 3), keepdim=True)
        saliency = (d2 - low) / (d2.amax(dim=(2, 3), keepdim=True) - low).clamp_min(1e-6)
        expected = [proj(torch.cat([up(maps, s), up(f, s)], 1))
                    for s, f, proj in (((8, 8), f8, branch.to_s8), ((16, 16), f4, branch.to_s4),
                                       ((32, 32), f2, branch.to_s2))]
        got = branch(pixels, (8, 8), (16, 16), (32, 32))
        for a, b in zip(got, [*expected, saliency]):
            assert torch.equal(a, b)
        assert torch.equal(old.encode_image(pixels).saliency, model.encode_image(pixels).saliency)


def _stub_net(model: SignedClickModel, monkeypatch) -> None:
    """The branch's net replaced by a known map: d2..d6 = the stretched input's first channel, pooled to stride 2
    (so the map is whatever the test puts in the stretched photo), decoder features zero."""
    dec = model.saliency.u2net.decoder_channels

    def net_outputs(x):
        m = F.avg_pool2d(x[:, :1], 2)
        b, s = x.shape[0], x.shape[-1]
        feats = [x.new_zeros(b, dec[k], s // 2 ** k, s // 2 ** k) for k in (1, 2, 3)]
        return m.repeat(1, 5, 1, 1), feats

    monkeypatch.setattr(model.saliency, "net_outputs", net_outputs)


def test_stretched_map_lands_where_the_photo_is_in_each_view(monkeypatch):
    """A photo of 32 x 64 model pixels (top-left of the 64 square) whose stretched map holds one salient block: rows
    16..31, columns 16..31 of the 64 x 64 stretched input, i.e. rows 8..15, columns 8..15 of its stride-2 map. In the
    model frame's stride-2 map (32 x 32, the photo in rows 0..15) the block must be rows 4..7 (the stretch halves the
    rows) and columns 8..15 (it keeps the columns), with the padding rows 16..31 at 0; a vertical flip puts it where
    the flipped frame has it."""
    model = tiny_saliency_model(saliency_frame="stretched")
    _stub_net(model, monkeypatch)
    stretched = torch.full((1, 3, 64, 64), -10.0)
    stretched[:, :, 16:32, 16:32] = 10.0
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[4:8, 8:16] = True
    pixels = torch.randn(1, 3, 64, 64)
    maps = {}
    with torch.no_grad():
        for name in ("identity", "vflip"):
            view = VIEWS_BY_NAME[name]
            box = torch.tensor([view_box(view, (32, 64), 64)])
            maps[name] = model.encode_image(view.apply_image(pixels), saliency_pixel_values=view_stretched(
                view, stretched), saliency_boxes=box).saliency[0, 0]
    assert torch.equal(maps["identity"] >= 0.5, expected)
    assert torch.all(maps["identity"][16:] == 0)  # the padding is neutral: not salient
    assert torch.equal(maps["vflip"], maps["identity"].flip(0))


def test_view_boxes_follow_the_views():
    assert view_box(VIEWS_BY_NAME["identity"], (32, 64), 64) == (0.0, 0.0, 32.0, 64.0)
    assert view_box(VIEWS_BY_NAME["hflip"], (64, 40), 64) == (0.0, 24.0, 64.0, 64.0)
    valid = torch.zeros(64, 64)
    valid[:32, :48] = 1
    for view in D4_VIEWS:  # the box is where the view puts the image's pixels
        rows, cols = torch.nonzero(view.apply_image(valid), as_tuple=True)
        bbox = (float(rows.min()), float(cols.min()), float(rows.max()) + 1, float(cols.max()) + 1)
        assert view_box(view, (32, 48), 64) == bbox, view.name
    assert view_box(VIEWS_BY_NAME["scale0.75"], (32, 64), 128) == (0.0, 0.0, 24.0, 48.0)  # 128 -> 96


def test_place_in_boxes_maps_stretched_pixels_and_crops_outside_boxes():
    t = torch.arange(4.0).view(1, 1, 2, 2)  # pixel (u, v) holds 2u + v
    out = place_in_boxes(t, torch.tensor([[2.0, 0.0, 6.0, 8.0]]), (8, 8), (8, 8), fill=-1.0)
    assert torch.all(out[0, 0, :2] == -1) and torch.all(out[0, 0, 6:] == -1)
    assert out[0, 0, 2, 0] == 0 and out[0, 0, 2, 7] == 1 and out[0, 0, 5, 0] == 2 and out[0, 0, 5, 7] == 3
    cropped = place_in_boxes(t, torch.tensor([[0.0, 0.0, 16.0, 16.0]]), (8, 8), (8, 8))  # a zoomed-in view
    # only the box's top-left quarter is in the frame
    assert torch.equal(cropped, F.interpolate(t, size=(16, 16), mode="bilinear", align_corners=False)[..., :8, :8])


@pytest.mark.parametrize("overrides, message", [
    ({"saliency_frame": "square"}, "saliency_frame must be one of"),
    ({"saliency_frame": "stretched", "prior_in_output": True, "prior_source": "stretched"}, "second time"),
])
def test_bad_frames_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        SignedClickConfig(saliency_encoder="u2netp", **overrides)
    with pytest.raises(ValueError, match="needs a saliency_encoder"):
        SignedClickConfig(saliency_frame="stretched")


def test_encode_image_asks_for_the_stretched_input_and_refuses_it_in_the_padded_frame():
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), pytest.raises(ValueError, match="needs saliency_pixel_values"):
        tiny_saliency_model(saliency_frame="stretched").encode_image(pixels)
    with torch.no_grad(), pytest.raises(ValueError, match="this model's is 'padded'"):
        tiny_saliency_model().encode_image(pixels, saliency_pixel_values=torch.zeros(1, 3, 64, 64),
                              saliency_boxes=torch.zeros(1, 4))


def test_predictor_runs_the_branch_once_per_view_and_no_second_pass(photo, monkeypatch):
    from hf_iis.models.signed_click.grow_outputs import grow_outputs

    model = grow_outputs(tiny_saliency_model(saliency_frame="stretched"), num_masks=3)
    calls = []
    original = model.saliency.net_outputs
    monkeypatch.setattr(model.saliency, "net_outputs", lambda x: calls.append(tuple(x.shape)) or original(x))
    monkeypatch.setattr(model, "encode_prior_saliency", lambda x: pytest.fail("no second pass"))
    predictor = SignedClickPredictor(model, SignedClickImageProcessor(size=64))
    predictor.set_image(photo)
    for click in ([(300, 200, 1)], [(300, 200, 1), (100, 50, -1)]):
        predictor.predict(click, tta=10, zoom_in=False)  # D4 and a rescaled view
    assert sum(c[0] for c in calls) == 10 and all(c[1:] == (3, 64, 64) for c in calls)  # once per view, no more


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A one-map teacher grown twice (padded and stretched frame: the same weights) and a small cache of each."""
    root = tmp_path_factory.mktemp("saliency_frame")
    corpus = write_corpus(root / "corpus", {"train": _synthetic_rows(2), "validation": _synthetic_rows(1)})
    teacher = root / "teacher"
    tiny_saliency_model().save_pretrained(teacher)
    SignedClickImageProcessor(size=64).save_pretrained(teacher)
    script = load_script("train_decoder")
    out = {"root": root, "script": script}
    for frame in ("padded", "stretched"):
        model = root / f"grown_{frame}"
        assert script.main(["grow", "--teacher", str(teacher), "--out", str(model), "--saliency-frame", frame]) == 0
        cache = root / f"cache_{frame}"
        assert script.main(["cache", "--teacher", str(model), "--corpus", str(corpus), "--out", str(cache),
                            "--views", "2", "--images-per-shard", "2", "--threads", "1", "--limit", "2"]) == 0
        out[frame] = (model, cache)
    return out


def test_grow_writes_the_frame_with_the_same_weights(grown, capsys):
    (padded, _), (stretched, _) = grown["padded"], grown["stretched"]
    assert SignedClickModel.from_pretrained(stretched).config.saliency_frame == "stretched"
    assert SignedClickModel.from_pretrained(padded).config.saliency_frame == "padded"
    a, b = load_file(str(padded / "model.safetensors")), load_file(str(stretched / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    assert grown["script"].main(["grow", "--teacher", str(padded), "--out", str(grown["root"] / "x"),
                                 "--saliency-frame", "square"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--saliency-frame must be one of" in err[0]


def test_stretched_cache_holds_the_stretched_branch_and_records_its_frame(grown):
    (_, padded_cache), (_, stretched_cache) = grown["padded"], grown["stretched"]
    info = json.loads((stretched_cache / "cache_info.json").read_text())
    assert info["saliency_frame"] == "stretched" and info["saliency_input_size"] == 64
    a = load_file(str(padded_cache / "shard-00000.safetensors"))
    b = load_file(str(stretched_cache / "shard-00000.safetensors"))
    assert not torch.equal(a["saliency"], b["saliency"])


def _leg(grown, teacher, cache, out):
    return grown["script"].main(["train", "--config", "configs/decoder_multimask.yaml", "--no-progress",
                                 "--set", f"teacher={teacher}", "--set", f"cache={cache}", "--set", f"output_dir={out}",
                                 "--set", "batch_size=2", "--set", "max_steps=2", "--set", "warmup_steps=1",
                                 "--set", "shards_in_memory=1", "--set", "num_threads=1"])


def test_a_leg_runs_from_its_frames_cache_and_refuses_the_other(grown, capsys):
    (padded, padded_cache), (stretched, stretched_cache) = grown["padded"], grown["stretched"]
    assert _leg(grown, stretched, stretched_cache, grown["root"] / "leg") == 0
    assert SignedClickModel.from_pretrained(grown["root"] / "leg" / "final").config.saliency_frame == "stretched"
    for teacher, cache, built, wanted in ((padded, stretched_cache, "stretched", "padded"),
                                          (stretched, padded_cache, "padded", "stretched")):
        capsys.readouterr()
        assert _leg(grown, teacher, cache, grown["root"] / f"refused_{wanted}") == 2
        err = [line for line in capsys.readouterr().err.strip().splitlines()
               if not line.startswith("Loading weights")]
        assert len(err) == 1 and f"saliency_frame={built!r}" in err[0] and f"saliency_frame={wanted!r}" in err[0]


def test_training_stretches_the_original_crop_as_inference_stretches_the_photo(photo):
    """Without augmentation the cache's branch input is exactly the predictor's (the photo stretched from its own
    pixels, not from the resized model input); with augmentation asking for it changes nothing else."""
    import numpy as np

    from hf_iis.backbones.saliency_frame import stretched_photo
    from hf_iis.backbones.stretched_saliency import stretched_input
    from hf_iis.training.augment import InputFormat, augment
    from hf_iis.training.config import AugmentParams

    fmt = InputFormat.of_processor(SignedClickImageProcessor(size=64))
    masks = np.zeros((1, *photo.shape[:2]), bool)
    masks[0, 100:300, 200:400] = True
    plain = augment(photo, masks, None, AugmentParams.no_augmentation(), fmt, np.random.default_rng(0),
                    stretched_size=64)
    assert torch.equal(stretched_photo(plain.stretched, 64), torch.from_numpy(stretched_input(photo, 64))[0])
    params = AugmentParams(jitter_prob=1.0, blur_prob=1.0, crop_prob=1.0, view_prob=1.0)
    a = augment(photo, masks, None, params, fmt, np.random.default_rng(3))
    b = augment(photo, masks, None, params, fmt, np.random.default_rng(3), stretched_size=64)
    assert a.stretched is None and b.stretched.shape == (3, 64, 64)
    assert torch.equal(a.pixel_values, b.pixel_values) and a.geometry == b.geometry


def test_end_to_end_training_feeds_the_stretched_frame(grown, monkeypatch):
    """`scripts/train.py` on a stretched-frame model (the shipped default's frame): every batch carries the branch's
    own input and the photo's box, encoded as the embedding cache encodes the same view, and the run's validation and
    final export work with them."""
    from hf_iis.training.augment import InputFormat
    from hf_iis.training.collate import TrainTransform, collate_click_sets
    from hf_iis.training.config import AugmentParams
    from hf_iis.training.embedding_cache import CacheInfo, view_sample

    stretched, _ = grown["stretched"]
    seen = []
    original = SignedClickModel.encode_image

    def spy(self, pixel_values, *args, **kwargs):
        boxes = kwargs.get("saliency_boxes")
        seen.append((pixel_values.shape[0], None if boxes is None else tuple(boxes.shape)))
        return original(self, pixel_values, *args, **kwargs)

    monkeypatch.setattr(SignedClickModel, "encode_image", spy)
    run = grown["root"] / "e2e"
    args = ["--config", "configs/tiny.yaml", "--data", str(grown["root"] / "corpus"), "--output-dir", str(run),
            "--no-progress", "--set", f"model.init_from={stretched}", "--set", "optim.max_steps=2",
            "--set", "save_every=1", "--set", "eval_every=2", "--set", "val_images=1"]
    assert load_script("train").main(args) == 0
    assert seen and all(boxes == (count, 4) for count, boxes in seen)  # training batches and validation alike
    assert SignedClickModel.from_pretrained(run / "final").config.saliency_frame == "stretched"

    # the transform's frame inputs are the cache's for the same augmentation draw
    rows = _synthetic_rows(1)
    fmt = InputFormat.of_processor(SignedClickImageProcessor(size=64))
    transform = TrainTransform(AugmentParams.no_augmentation(), fmt, stretched_size=64)
    item = transform.sample(rows[0])
    batch = collate_click_sets([item])
    assert batch["saliency_pixel_values"].shape == (1, 3, 64, 64) and batch["saliency_boxes"].shape == (1, 4)
    info = CacheInfo(**{**json.loads((grown["stretched"][1] / "cache_info.json").read_text())})
    cached = view_sample(rows[0], 0, info, fmt)
    assert torch.equal(cached[3], batch["saliency_pixel_values"][0])
    assert torch.equal(cached[4], batch["saliency_boxes"][0])
