"""U²-Net(-p) written here against the published ONNX export, its loader's refusals, and the saliency branch."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from hf_iis import SignedClickConfig, SignedClickModel
from hf_iis.backbones.u2net import RSU, U2Net, load_u2net_onnx, u2net_from_onnx
from hf_iis.backbones.u2net_weights import find_u2net_onnx


def _onnx_or_skip(variant: str):
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnx / onnxruntime not installed (the training extra)")
    try:
        return find_u2net_onnx(variant)
    except FileNotFoundError as error:
        pytest.skip(str(error))


def test_rsu_keeps_size_and_adds_the_input_branch():
    block = RSU(7, 3, 4, 8)
    x = torch.randn(1, 3, 37, 45)  # odd sizes: ceil-mode pooling and upsampling back to each skip's size
    assert block(x).shape == (1, 8, 37, 45)
    dilated = RSU(4, 3, 4, 8, dilated=True)
    assert [c[0].dilation[0] for c in dilated.encoder] + [dilated.bottom[0].dilation[0]] == [1, 2, 4, 8]


def test_u2netp_sizes_and_parameter_count():
    net = U2Net("u2netp")
    assert sum(p.numel() for p in net.parameters()) == 1_125_485  # the paper's 1.13 M
    assert len(net.convs_in_run_order()) == 119
    out = net(torch.randn(1, 3, 64, 96))
    assert out.saliency.shape == (1, 7, 64, 96) and 0 <= out.saliency.min() and out.saliency.max() <= 1
    assert [f.shape[-1] for f in out.decoder_features] == [96, 48, 24, 12, 6]
    with pytest.raises(ValueError, match="unknown U²-Net variant"):
        U2Net("u3net")


@pytest.mark.slow
def test_u2netp_matches_onnxruntime():
    path = _onnx_or_skip("u2netp")
    import onnxruntime

    torch.manual_seed(0)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        ours = u2net_from_onnx(path, "u2netp")(x).saliency.numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = np.concatenate(session.run(None, {session.get_inputs()[0].name: x.numpy()}), axis=1)
    assert np.abs(ours - theirs).max() <= 1e-4


def test_loader_refuses_missing_damaged_and_wrong_topology(tmp_path):
    with pytest.raises(FileNotFoundError, match="u2netp.onnx"):
        load_u2net_onnx(tmp_path / "nothing.onnx", "u2netp")
    path = _onnx_or_skip("u2netp")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        load_u2net_onnx(broken, "u2netp")
    with pytest.raises(ValueError, match="expected"):  # U²-Net-p weights read as the full U²-Net
        load_u2net_onnx(path, "u2net")
    import onnx
    from onnx import helper

    tiny = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    other = tmp_path / "other.onnx"
    onnx.save(tiny, str(other))
    with pytest.raises(ValueError, match="0 Conv nodes, expected 119"):
        load_u2net_onnx(other, "u2netp")


def _tiny_pair():
    torch.manual_seed(0)
    base = SignedClickModel(SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False)).eval()
    from hf_iis.training.loop import add_saliency_branch

    return base, add_saliency_branch


def test_adding_the_saliency_branch_keeps_the_predictions(monkeypatch):
    base, add_saliency_branch = _tiny_pair()
    monkeypatch.setattr(SignedClickModel, "load_pretrained_saliency", lambda self, path=None: None)
    grown = add_saliency_branch(base, "u2netp", ["maps", "decoder"], 64).eval()
    x = torch.randn(2, 3, 64, 64)
    points, labels = torch.tensor([[[10.0, 20.0]], [[40.0, 30.0]]]), torch.tensor([[1], [-1]])
    with torch.no_grad():
        before = base(pixel_values=x, points=points, labels=labels).logits
        emb = grown.encode_image(x)
        after = grown.decode(emb, points, labels, image_index=torch.tensor([0, 1]))
    assert emb.fine is not None and emb.fine.shape == (2, 8, 32, 32)
    assert torch.equal(before, after)
    # the new layers are trainable, U²-Net is not
    trainable = {n for n, p in grown.named_parameters() if p.requires_grad}
    assert any(n.startswith("saliency.to_s8") for n in trainable)
    assert not any(n.startswith("saliency.u2net") for n in trainable)


def test_saliency_checkpoint_round_trip_and_mismatch_refused(tmp_path, monkeypatch):
    base, add_saliency_branch = _tiny_pair()
    monkeypatch.setattr(SignedClickModel, "load_pretrained_saliency", lambda self, path=None: None)
    grown = add_saliency_branch(base, "u2netp", ["maps"], 64).eval()
    with torch.no_grad():  # the fusion starts at zero, which would hide a saliency branch that loads wrong
        for proj in (grown.saliency.to_s8, grown.saliency.to_s4, grown.saliency.to_s2, grown.decoder.refine):
            proj[2].weight.normal_(0, 0.5)
    grown.save_pretrained(tmp_path / "grown")
    loaded = SignedClickModel.from_pretrained(tmp_path / "grown").eval()
    x = torch.randn(1, 3, 64, 64)
    points, labels = torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        torch.testing.assert_close(grown(pixel_values=x, points=points, labels=labels).logits,
                                   loaded(pixel_values=x, points=points, labels=labels).logits, atol=1e-4, rtol=1e-4)
    base.save_pretrained(tmp_path / "plain")
    config = (tmp_path / "plain" / "config.json")
    config.write_text(config.read_text().replace('"saliency_encoder": null', '"saliency_encoder": "u2netp"'))
    with pytest.raises(ValueError, match="do not fit its config"):
        SignedClickModel.from_pretrained(tmp_path / "plain")


def test_config_refuses_unknown_saliency_settings():
    with pytest.raises(ValueError, match="saliency_encoder"):
        SignedClickConfig(saliency_encoder="isnet")
    with pytest.raises(ValueError, match="saliency_features"):
        SignedClickModel(SignedClickConfig.from_preset("tiny", image_size=64, saliency_encoder="u2netp",
                                                       saliency_features=["edges"], use_pretrained_backbone=False))


def test_forward_rejects_unknown_keywords():
    base, _ = _tiny_pair()
    with pytest.raises(TypeError, match="prev_mask"):
        base(pixel_values=torch.zeros(1, 3, 64, 64), points=torch.zeros(1, 1, 2), labels=torch.ones(1, 1),
             prev_mask=None)


def test_click_components_by_hand():
    from hf_iis.models.signed_click.saliency_click_prior import click_components

    salient = np.zeros((5, 7), bool)
    salient[0:2, 0:2] = True  # component A (top left)
    salient[3:5, 4:7] = True  # component B (bottom right)
    pos_a = np.array([[1, 1]]), np.array([1])
    assert (click_components(salient, *pos_a) == np.pad(np.ones((2, 2), bool), ((0, 3), (0, 5)))).all()
    both = click_components(salient, np.array([[0, 0], [5, 4]]), np.array([1, 1]))
    assert (both == salient).all()
    # a negative click on B removes it; a positive click that misses every component takes the whole mask minus B
    missed = click_components(salient, np.array([[3, 2], [6, 4]]), np.array([1, -1]))
    assert missed[0:2, 0:2].all() and not missed[3:5, 4:7].any()
    # padding (label 0) is ignored; only negative clicks: nothing
    assert not click_components(salient, np.array([[1, 1]]), np.array([-1])).any()
    assert not click_components(salient, np.array([[1, 1]]), np.array([0])).any()


def test_adding_the_click_prior_keeps_the_predictions_then_uses_it(monkeypatch):
    base, add_saliency_branch = _tiny_pair()
    from hf_iis.training.loop import grow_model

    monkeypatch.setattr(SignedClickModel, "load_pretrained_saliency", lambda self, path=None: None)
    with_branch = add_saliency_branch(base, "u2netp", ["maps"], 64).eval()
    with_prior = grow_model(with_branch, saliency_click_prior=True).eval()
    x = torch.randn(1, 3, 64, 64)
    points, labels = torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]])
    with torch.no_grad():
        before = with_branch(pixel_values=x, points=points, labels=labels).logits
        after = with_prior(pixel_values=x, points=points, labels=labels).logits
        assert torch.equal(before, after)
        with_prior.decoder.prior["s8"].weight.fill_(1.0)
        # a positive click always gets a non-empty prior (its component, or the whole salient mask it missed)
        assert not torch.equal(before, with_prior(pixel_values=x, points=points, labels=labels).logits)
