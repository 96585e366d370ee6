"""What a run config builds: the model (fresh, or grown from a checkpoint), its image processor, the optimizer and
schedule, and the row -> sample transform.

The model config is the one source of the loss weights (`build_model` writes the run config's `model.loss_weights`
into it, once) and of the input format (size, pixel normalisation: `image_processor_for` makes the serving processor
from it, and the augmentation normalises with that processor's numbers, `input_format_for`).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from ..models.signed_click.configuration_signed_click import SignedClickConfig
from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from ..models.signed_click.losses import set_loss_weights
from ..models.signed_click.modeling_signed_click import SignedClickModel
from .augment import InputFormat
from .collate import TrainTransform
from .config import TrainingConfig

logger = logging.getLogger(__name__)


def build_model(cfg: TrainingConfig) -> SignedClickModel:
    """A fresh model from the preset (with the offline pretrained backbone unless disabled), or `init_from`.

    `cfg.model.loss_weights`, when set, is written into the model config here (and nowhere else).
    """
    m = cfg.model
    if m.init_from:
        model = SignedClickModel.from_pretrained(m.init_from)
        _check_saved_processor(Path(m.init_from), model.config)
        if m.saliency_encoder is not None and model.config.saliency_encoder is None:
            model = add_saliency_branch(model, m.saliency_encoder, m.saliency_features, m.saliency_input_size,
                                        m.saliency_onnx)
        if m.saliency_click_prior and not model.config.saliency_click_prior:
            model = grow_model(model, saliency_click_prior=True)
        if m.image_size != model.config.image_size:
            # A fully convolutional model can continue at another resolution; the config must follow, since the
            # click encoding's far-field width is a fraction of config.image_size and the processor resizes to it.
            logger.info("init_from %s: image_size %d -> %d", m.init_from, model.config.image_size, m.image_size)
            model.config.image_size = m.image_size
    else:
        config = SignedClickConfig.from_preset(
            m.preset, image_size=m.image_size, backbone=m.backbone, use_pretrained_backbone=m.pretrained_backbone,
            saliency_encoder=m.saliency_encoder, saliency_features=m.saliency_features,
            saliency_input_size=m.saliency_input_size, saliency_click_prior=m.saliency_click_prior,
        )
        model = SignedClickModel(config)
        if m.pretrained_backbone:
            model.load_pretrained_backbone()
        if model.saliency is not None:
            model.load_pretrained_saliency(m.saliency_onnx)
    if m.loss_weights is not None:
        set_loss_weights(model.config, m.loss_weights)
    if m.freeze_backbone_blocks is not None:
        model.freeze_backbone_stem(m.freeze_backbone_blocks)
    if m.freeze_batchnorm_stats:
        model.freeze_batchnorm_statistics()
    return model


def _check_saved_processor(folder: Path, config: SignedClickConfig) -> None:
    """A checkpoint's saved image processor must normalise as its config says (the saliency branch relies on it)."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    for key, config_key in (("image_mean", "pixel_mean"), ("image_std", "pixel_std")):
        if key in saved and [float(v) for v in saved[key]] != [float(v) for v in getattr(config, config_key)]:
            raise ValueError(f"{path}: {key}={saved[key]} but config.json has {config_key}="
                             f"{getattr(config, config_key)}; training normalises by the model config")


def image_processor_for(config: SignedClickConfig) -> SignedClickImageProcessor:
    """The serving image processor of a model config: its input size and its pixel normalisation."""
    return SignedClickImageProcessor.for_model_config(config)


def input_format_for(config: SignedClickConfig) -> InputFormat:
    """The training input format of a model config: the one of its image processor."""
    return InputFormat.of_processor(image_processor_for(config))


def saliency_stretched_size(config: SignedClickConfig) -> int | None:
    """The square the saliency branch's own input is stretched to, for a model with `saliency_frame="stretched"`
    (its batches then carry that input and the photo's box); None for the padded frame."""
    return config.saliency_input_size if getattr(config, "saliency_frame", None) == "stretched" else None


def build_transform(cfg: TrainingConfig, input_format: InputFormat,
                    model_config: SignedClickConfig | None = None) -> TrainTransform:
    """The row -> training sample transform of a run config (augmentation, mask and click sampling) into the model's
    `input_format` (`input_format_for(model.config)`); a `model_config` with the stretched saliency frame also gets
    the branch's own input and the photo's box per sample."""
    d = cfg.data
    stretched = None if model_config is None else saliency_stretched_size(model_config)
    return TrainTransform(d.augment, input_format, d.masks_per_image, d.pairs_per_mask, cfg.seed,
                          d.max_masks_decoded, d.mask_sampling, d.min_mask_pixels, stretched_size=stretched)


_GROWN_PARTS = ("saliency.", "decoder.refine.", "decoder.prior.")
"""Parameters a grown model may have that its source lacks: all start at zero or are pretrained (U²-Net)."""


def grow_model(model: SignedClickModel, **config_changes) -> SignedClickModel:
    """A model with `config_changes` applied that keeps every trained weight of `model`; the parts it adds (saliency
    fusion, refinement, click prior) start at zero, so it predicts exactly what `model` did."""
    grown = SignedClickModel(SignedClickConfig(**{**model.config.to_dict(), **config_changes}))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith(_GROWN_PARTS) for k in missing):
        raise ValueError(f"cannot grow the model by {config_changes}: unexpected {unexpected[:3]}, missing "
                         f"{[k for k in missing if not k.startswith(_GROWN_PARTS)][:3]}")
    return grown


def add_saliency_branch(model: SignedClickModel, encoder: str, features: list[str], input_size: int,
                        onnx_path: str | None = None) -> SignedClickModel:
    """`model` with a U²-Net saliency branch added (`grow_model`), its U²-Net weights from the published ONNX file."""
    grown = grow_model(model, saliency_encoder=encoder, saliency_features=list(features),
                       saliency_input_size=input_size)
    grown.load_pretrained_saliency(onnx_path)
    return grown


def build_optimizer(model: SignedClickModel, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW with a lower learning rate for the backbone and no weight decay on norms and biases."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name.startswith("backbone."), param.ndim <= 1)
        groups.setdefault(key, []).append(param)
    o = cfg.optim
    param_groups = [
        {"params": params, "lr": o.backbone_lr if is_backbone else o.lr, "weight_decay": 0.0 if no_decay
         else o.weight_decay}
        for (is_backbone, no_decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=o.lr, betas=tuple(o.betas))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
