"""The transformers integration of the model: save/load, Auto classes, batched decoding, pretrained backbone."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModel

import hf_iis
from hf_iis import SignedClickConfig, SignedClickModel


def _clicks(n: int, p: int, size: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(n, p, 2, generator=gen) * (size - 1)
    labels = torch.where(torch.rand(n, p, generator=gen) > 0.5, 1, -1)
    return points, labels


def test_save_load_round_trip_gives_identical_outputs(tiny_checkpoint, tmp_path):
    model = SignedClickModel.from_pretrained(tiny_checkpoint).eval()
    pixel_values = torch.randn(1, 3, 64, 64)
    points, labels = _clicks(3, 2, 64)
    with torch.no_grad():
        before = model(pixel_values=pixel_values, points=points, labels=labels).logits
    model.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "model.safetensors").is_file()
    reloaded = SignedClickModel.from_pretrained(tmp_path / "again").eval()
    with torch.no_grad():
        after = reloaded(pixel_values=pixel_values, points=points, labels=labels).logits
    assert torch.equal(before, after)


def test_auto_classes_resolve(tiny_checkpoint):
    assert isinstance(AutoConfig.from_pretrained(tiny_checkpoint), SignedClickConfig)
    assert isinstance(AutoModel.from_pretrained(tiny_checkpoint), SignedClickModel)
    processor = AutoImageProcessor.from_pretrained(tiny_checkpoint)
    assert isinstance(processor, hf_iis.SignedClickImageProcessor) and processor.size == 64


def test_decode_in_one_batch_equals_separate_decodes(tiny_checkpoint):
    model = SignedClickModel.from_pretrained(tiny_checkpoint).eval()
    points, labels = _clicks(5, 3, 64, seed=1)
    labels[2, 2] = 0  # padding entry
    prev = torch.rand(5, 1, 64, 64)
    with torch.no_grad():
        embeddings = model.encode_image(torch.randn(1, 3, 64, 64))
        batched = model.decode(embeddings, points, labels, prev)
        separate = torch.cat([model.decode(embeddings, points[i : i + 1], labels[i : i + 1], prev[i : i + 1])
                              for i in range(5)])
    assert batched.shape == (5, 1, 64, 64)
    assert torch.allclose(batched, separate, rtol=1e-4, atol=1e-3)


def test_decode_across_several_embeddings_with_image_index(tiny_checkpoint):
    model = SignedClickModel.from_pretrained(tiny_checkpoint).eval()
    points, labels = _clicks(4, 1, 64, seed=2)
    with torch.no_grad():
        pixel_values = torch.randn(2, 3, 64, 64)
        both = model.encode_image(pixel_values)
        index = torch.tensor([0, 1, 1, 0])
        batched = model.decode(both, points, labels, image_index=index)
        first = model.decode(model.encode_image(pixel_values[:1]), points[[0, 3]], labels[[0, 3]])
    assert torch.allclose(batched[[0, 3]], first, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="image_index"):
        model.decode(both, points[:3], labels[:3])


def test_forward_returns_loss_with_targets(tiny_checkpoint):
    model = SignedClickModel.from_pretrained(tiny_checkpoint)
    points, labels = _clicks(2, 1, 64)
    target = torch.zeros(2, 1, 64, 64)
    target[..., 10:30, 10:30] = 1
    out = model(pixel_values=torch.randn(2, 3, 64, 64), points=points, labels=labels, target_masks=target)
    assert out.loss is not None and out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.decoder.head[-1].weight.grad is not None


def test_pretrained_backbone_survives_post_init():
    config = SignedClickConfig.from_preset("tiny", image_size=64)
    model = SignedClickModel(config)
    model.load_pretrained_backbone()
    stem = model.backbone.conv_stem.weight.detach().clone()
    model.post_init()
    model.init_weights()
    assert torch.equal(stem, model.backbone.conv_stem.weight)
    # and it is the ImageNet stem, not timm's random init
    fresh = SignedClickModel(config)
    assert not torch.allclose(stem, fresh.backbone.conv_stem.weight)


def test_encode_rejects_bad_shapes(tiny_checkpoint):
    model = SignedClickModel.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match="multiples of 32"):
        model.encode_image(torch.randn(1, 3, 60, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.encode_image(torch.randn(3, 64, 64))


def test_unknown_preset():
    with pytest.raises(KeyError, match="unknown preset"):
        SignedClickConfig.from_preset("huge")
