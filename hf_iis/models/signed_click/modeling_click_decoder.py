"""The click decoder side of the signed-click model: the feature pyramid neck (run once per image, in
`encode_image`) and the `ClickDecoder` (run once per click set, in `decode`).

This is where a click enters the network: `ClickDecoder.forward` turns (points, labels) into dense signed click maps
(`hf_iis.models.signed_click.click_encoding`), adds them and their feature affinities to the cached stride-8
embedding, runs dilated
residual blocks, sharpens at stride 4 with the cached low-level embedding and, when the image embedding has a
stride-2 `fine` part (the saliency branch), refines once more at stride 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .click_encoding import NUM_CLICK_CHANNELS, encode_clicks
from .configuration_signed_click import SignedClickConfig
from .embeddings import SignedClickImageEmbeddings
from .multimask import MaskIoUHead
from .output_prior import OutputPrior
from .saliency_click_prior import click_prior


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
        self.num_masks = num_masks = getattr(config, "num_mask_outputs", 1)
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
            nn.Conv2d(head_dim, num_masks, 3, padding=1),  # the S logit maps l_1..l_S
        )
        # Stride-2 refinement on the saliency branch's fine embedding: a residual on the upsampled logits whose last
        # conv starts at zero, so adding it to a trained decoder changes nothing until it is trained.
        self.refine = None
        if config.saliency_encoder is not None:
            from ...backbones.saliency import FINE_DIM

            last = nn.Conv2d(16, 1, 3, padding=1)
            last._zero_init = True
            self.refine = nn.Sequential(nn.Conv2d(1 + FINE_DIM, 16, 3, padding=1), nn.ReLU(inplace=True), last)
        # The click prior (salient components under the clicks) enters at strides 8, 4 and 2 through zero-started
        # projections, so a decoder trained without it is unchanged when it is added.
        self.prior = None
        if getattr(config, "saliency_click_prior", False):
            self.prior = nn.ModuleDict({"s8": nn.Conv2d(1, dim, 1), "s4": nn.Conv2d(1, head_dim, 1),
                                        "s2": nn.Conv2d(1, 16, 3, padding=1)})
            for conv in self.prior.values():
                conv._zero_init = True
        # The prior in the output path (output_prior.py): each map can fall back on the click component.
        self.output_prior = OutputPrior(num_masks) if getattr(config, "prior_in_output", False) else None
        self.prior_source = getattr(config, "prior_source", "branch")
        self.iou_head = (MaskIoUHead(dim, num_masks, inputs=getattr(config, "iou_head_inputs", "pooled"))
                         if num_masks > 1 else None)

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

    @staticmethod
    def _stretched_prior(embeddings: SignedClickImageEmbeddings, points: torch.Tensor, labels: torch.Tensor,
                         width: int) -> torch.Tensor:
        """The output path's click component cut from `embeddings.prior_saliency` at the input's full resolution
        (`config.prior_source="stretched"`)."""
        if embeddings.prior_saliency is None:
            raise ValueError("prior_source='stretched' needs embeddings with prior_saliency: pass "
                             "encode_image(pixel_values, prior_saliency=...) (the predictors compute it once per "
                             "image); embedding caches do not hold it")
        return click_prior(embeddings.prior_saliency, points, labels, width)

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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (N, S, H, W) of the S maps, and the IoU head's logits (N, S) when S > 1 (else None)."""
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
        prior = None
        if (self.prior is not None or self.output_prior is not None) and embeddings.saliency is not None:
            prior = click_prior(embeddings.saliency, points, labels, width)
        if self.prior is not None and prior is not None:
            x = x + self.prior["s8"](F.adaptive_avg_pool2d(prior, x.shape[-2:]))
        hidden8 = self.blocks(x)
        x = self.reduce(hidden8)
        x = F.interpolate(x, size=embeddings.low_level.shape[-2:], mode="bilinear", align_corners=False)
        x = x + embeddings.low_level + self.click_proj(clicks)
        if self.prior is not None and prior is not None:
            x = x + self.prior["s4"](F.adaptive_avg_pool2d(prior, x.shape[-2:]))
        logits = self.head(F.relu(self.head_norm(x)))
        out = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        if self.refine is not None and embeddings.fine is not None:
            # the stride-2 refinement runs on each of the S maps (folded into the batch)
            n, s = logits.shape[:2]
            fine = embeddings.fine.repeat_interleave(s, dim=0)
            coarse = F.interpolate(logits.reshape(n * s, 1, *logits.shape[-2:]), size=fine.shape[-2:],
                                   mode="bilinear", align_corners=False)
            hidden = self.refine[0](torch.cat([coarse, fine], dim=1))
            if self.prior is not None and prior is not None:
                prior2 = F.adaptive_avg_pool2d(prior, hidden.shape[-2:])
                hidden = hidden + self.prior["s2"](prior2).repeat_interleave(s, dim=0)
            residual = self.refine[2](self.refine[1](hidden))
            residual = F.interpolate(residual, size=(height, width), mode="bilinear", align_corners=False)
            out = out + residual.reshape(n, s, height, width)
        if self.output_prior is not None and prior is not None:
            first_click = (labels != 0).sum(1) == 1
            if self.prior_source == "stretched" and bool(first_click.any()):
                prior = self._stretched_prior(embeddings, points, labels, width)
            out = self.output_prior(out, prior, first_click=first_click)
        iou_logits = self.iou_head(hidden8, out) if self.iou_head is not None else None
        return out, iou_logits
