"""One source of truth in training: the loss weights are the model config's, the pixel normalisation is the image
processor's, and rows are read by one decoder with one schema."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hf_iis.models.signed_click.configuration_signed_click import SignedClickConfig
from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from hf_iis.models.signed_click.losses import combined_loss, loss_weights_from_config, set_loss_weights
from hf_iis.training.augment import AugmentParams, InputFormat, augment
from hf_iis.training.config import load_config
from hf_iis.training.factory import _check_saved_processor, build_model, image_processor_for
from hf_iis.training.objective import SignedClickObjective
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "hf_iis" / "checkpoints"
TINY = REPO_ROOT / "configs" / "tiny.yaml"


def _is_training_config(path) -> bool:
    """scripts/train.py configs (a `model` or `data` section); distillation configs (`cache:`) are another format."""
    keys = set(yaml.safe_load(path.read_text()) or {})
    return bool(keys & {"model", "data"}) and "cache" not in keys


RUN_CONFIGS = [p for p in sorted((REPO_ROOT / "configs").glob("*.yaml"))
               + sorted((REPO_ROOT / "model_cards").rglob("config.yaml")) if _is_training_config(p)]


# ----------------------------------------------------------------------------------------------- loss weights
@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_config_gives_the_loss_it_gave_before(path):
    """Before, the objective summed combined_loss(..., run config's loss_weights); now it reads the model config, which
    build_model set from the run config: the same numbers, bit for bit (starting from any checkpoint's config)."""
    cfg = load_config(path)
    old_weights = cfg.model.loss_weights if cfg.model.loss_weights is not None else {"bce": 1.0, "soft_iou": 1.0}
    torch.manual_seed(0)
    logits, target = torch.randn(6, 1, 32, 32) * 3, (torch.rand(6, 1, 32, 32) > 0.6).float()
    valid = torch.rand(6, 1, 32, 32) > 0.1
    for start in (SignedClickConfig.from_preset("tiny"), SignedClickConfig.from_pretrained(SHIPPED / "lite0"),
                  SignedClickConfig(loss_dice_weight=0.7, loss_lovasz_weight=0.2)):  # a checkpoint trained otherwise
        if cfg.model.loss_weights is not None:
            set_loss_weights(start, cfg.model.loss_weights)
        elif start.loss_dice_weight or start.loss_lovasz_weight:
            continue  # null keeps the checkpoint's own weights: nothing was there before to compare with
        new = combined_loss(logits, target, valid, loss_weights_from_config(start))
        assert torch.equal(new, combined_loss(logits, target, valid, old_weights)), path


def test_run_config_loss_weights_go_into_the_model_config_once(tmp_path):
    model = build_model(load_config(TINY, ["model.loss_weights={bce: 1.0, lovasz: 0.5}"]))
    assert loss_weights_from_config(model.config) == {"bce": 1.0, "dice": 0.0, "soft_iou": 0.0, "lovasz": 0.5}
    objective = SignedClickObjective(model)
    assert objective.loss_weights == loss_weights_from_config(model.config)
    model.config.loss_dice_weight = 2.0  # the objective has no copy of its own
    assert objective.loss_weights["dice"] == 2.0
    with pytest.raises(ValueError, match="model config"):
        SignedClickObjective(model, {"bce": 1.0})
    assert SignedClickObjective(model, {"bce": 1.0, "dice": 2.0, "lovasz": 0.5}).model is model  # agreeing: fine
    model.save_pretrained(tmp_path / "m")
    kept = build_model(load_config(TINY, [f"model.init_from={tmp_path / 'm'}", "model.loss_weights=null"]))
    assert loss_weights_from_config(kept.config) == {"bce": 1.0, "dice": 2.0, "soft_iou": 0.0, "lovasz": 0.5}
    reset = build_model(load_config(TINY, [f"model.init_from={tmp_path / 'm'}"]))  # tiny.yaml: bce + soft_iou
    assert loss_weights_from_config(reset.config) == {"bce": 1.0, "dice": 0.0, "soft_iou": 1.0, "lovasz": 0.0}
    with pytest.raises(ValueError, match="unknown loss terms"):
        build_model(load_config(TINY, ["model.loss_weights={focal: 1.0}"]))


def test_objective_loss_is_the_model_config_loss():
    torch.manual_seed(0)
    model = build_model(load_config(TINY, ["model.loss_weights={bce: 0.5, dice: 1.0}"])).eval()
    pixels, points = torch.randn(1, 3, 64, 64), torch.tensor([[[20.0, 30.0]], [[40.0, 10.0]]])
    labels, index = torch.tensor([[1], [-1]]), torch.tensor([0, 0])
    target = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    target[:, :, 16:48, 16:48] = True
    valid = torch.ones_like(target)
    with torch.no_grad():
        out = SignedClickObjective(model)(pixels, points, labels, index, target, valid)
        logits = model.decode(model.encode_image(pixels), points, labels, None, index)
    expected = combined_loss(logits.float(), target.float(), valid, {"bce": 0.5, "dice": 1.0}).mean()
    assert torch.equal(out["loss"], expected)


# ----------------------------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("checkpoint", ["default", "lite0"])
def test_shipped_checkpoints_keep_the_normalisation_they_were_trained_with(checkpoint):
    """The shipped models were trained with `x * 2 - 1`: their processor's normalisation gives the same bits, on every
    uint8 level and on jittered (any [0, 1]) values, and it is the one their saved processor has."""
    config = SignedClickConfig.from_pretrained(SHIPPED / checkpoint)
    processor = image_processor_for(config)
    fmt = InputFormat.of_processor(processor)
    levels = (torch.arange(256).float() / 255.0).view(16, 16).expand(3, 16, 16)  # as augment reads uint8
    jittered = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    for x in (levels, jittered):
        assert torch.equal(fmt.normalize(x), x * 2.0 - 1.0)
    saved = json.loads((SHIPPED / checkpoint / "preprocessor_config.json").read_text())
    assert (saved["image_mean"], saved["image_std"], saved["size"]) == (processor.image_mean, processor.image_std,
                                                                       processor.size)
    _check_saved_processor(SHIPPED / checkpoint, config)  # no mismatch


@pytest.mark.parametrize("stats", ["shipped", "imagenet"])
def test_training_normalisation_equals_the_serving_processor(grabcut_image, stats):
    """No augmentation, an image already at the input size: the training sample is the processor's pixel_values."""
    config = SignedClickConfig.from_pretrained(SHIPPED / "default")
    if stats == "imagenet":
        config.pixel_mean, config.pixel_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    processor = image_processor_for(config)
    height = round(grabcut_image.shape[0] * config.image_size / grabcut_image.shape[1])
    image = np.asarray(Image.fromarray(grabcut_image).resize((config.image_size, height), Image.BILINEAR))
    served = processor.preprocess(image)["pixel_values"][0]
    masks = np.zeros((1, *image.shape[:2]), dtype=bool)
    masks[0, 50:100, 50:100] = True
    trained = augment(image, masks, None, AugmentParams.no_augmentation(), InputFormat.of_processor(processor),
                      np.random.default_rng(0)).pixel_values
    assert trained.shape == served.shape == (3, config.image_size, config.image_size)
    assert torch.equal(trained, served)


def test_input_format_defaults_are_the_processor_and_config_defaults():
    processor, config = SignedClickImageProcessor(size=64), SignedClickConfig()
    assert InputFormat(64) == InputFormat.of_processor(processor)
    assert list(InputFormat(64).mean) == processor.image_mean == config.pixel_mean
    assert list(InputFormat(64).std) == processor.image_std == config.pixel_std


def test_init_from_a_checkpoint_whose_processor_disagrees_is_refused(tmp_path):
    model = build_model(load_config(TINY))
    model.save_pretrained(tmp_path / "m")
    SignedClickImageProcessor(size=64, image_mean=[0.485, 0.456, 0.406]).save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="image_mean"):
        build_model(load_config(TINY, [f"model.init_from={tmp_path / 'm'}"]))


# ----------------------------------------------------------------------------------------------- rows
def test_one_row_decoder_and_one_schema(data_root):
    import hf_iis.data as data
    from hf_iis.data import hf_datasets, rows
    from hf_iis.training import collate, toy
    from hf_iis.training import data as training_data
    from hf_iis.training.toy import coco_mval_rows, make_dataset

    assert hf_datasets.row_to_sample is rows.row_to_sample is data.row_to_sample
    assert hf_datasets.features is rows.features and toy.corpus_features() == rows.features()
    assert collate.decode_row is rows.decode_row and collate.BadRow is rows.BadRow
    assert training_data.undecoded is rows.undecoded
    dataset = make_dataset(coco_mval_rows(data_root, n=2, max_side=96))
    for decoded, raw in zip(dataset, rows.undecoded(dataset)):
        assert isinstance(raw["image"], dict)  # bytes, not a PIL image
        a, b = rows.row_to_sample(decoded), rows.row_to_sample(raw)
        assert np.array_equal(a.image, b.image) and len(a.masks) == len(b.masks) == 1
        assert np.array_equal(a.masks[0], b.masks[0])


def test_old_style_run_configs_in_the_repository_are_flat():
    """The fixtures the compatibility tests rely on: run configs saved before data.augment existed."""
    old = [p for p in RUN_CONFIGS if "view_prob" in (yaml.safe_load(p.read_text()).get("data") or {})]
    assert len([p for p in old if "model_cards" in p.parts]) >= 2
