"""How the student combines several clicks: bounded naive Bayes, or naive Bayes plus a small learned residual.

With ℓ_i click i's logit map f_{s_i}(x_i) and u the prior logit, the base rule is naive Bayes with a negative click
that may only lower the map once a positive click is present (`bounded_naive_bayes`; the rule the student
predictor applied before there was a learned one, `hf_iis.inference.click_rules`):

    base = u + Σ_{positive i} (ℓ_i − u) + Σ_{negative j} min(0, ℓ_j − u)      (sets with a positive click)
    base = u + Σ_i (ℓ_i − u)                                                 (sets without one: plain naive Bayes)

Naive Bayes treats the clicks as independent given y; they are not (a second positive click on the same object
repeats the first, a corrective click exists because the map was wrong there), and it needs 2.3x the teacher's
clicks to reach 90 % IoU. `LearnedClickRule` adds a residual r computed by a few 3x3 convolutions over per-pixel
summaries of the whole click set, on the stride-s grid, with no image pass per click:

    logit = base + 1{n ≥ 2} · (r + tanh(g) · base),      (r, g) = net(features)

g lets the rule shrink (or grow) the base where naive Bayes is overconfident: the sum grows with every click (a
logit of +80 after 20 clicks is common), which an additive term computed from clamped features could not undo.

features (`FEATURES`, each clamped to ±`CLAMP` and scaled by 1/`SCALE` so no channel dominates): the base, u, the max
of the positive clicks' ℓ, the max and min of the negative clicks' ℓ (u where a set has none), the newest click's ℓ
and its sign, Gaussian bumps (σ = `SIGMA` cells) around the positive, the negative and the newest click, the previous
map's logit and whether one was given, and log n. The last convolution starts at zero, so an untrained rule is the
base exactly, and a one-click set keeps its own map (and with it the exact feature-space triangulation).
"""

from __future__ import annotations

import torch
from torch import nn

CLICK_RULES = ("naive_bayes", "learned")
FEATURES = ("base", "prior", "max_positive", "max_negative", "min_negative", "newest", "newest_sign",
            "near_positive", "near_negative", "near_newest", "previous", "has_previous", "log_clicks")
CLAMP, SCALE, SIGMA = 16.0, 4.0, 3.0


def check_click_rule(name) -> str:
    if name not in CLICK_RULES:
        raise ValueError(f"click_rule must be one of {list(CLICK_RULES)}, got {name!r}")
    return name


def bounded_naive_bayes(click_logits: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The base rule of the module docstring: (N, P, h, w), (N, P) in {+1, −1, 0}, (N or 1, 1, h, w) -> (N, 1, h, w).
    Why bounded: f−(x) raises every pixel it finds likelier than the prior, so a negative click in the background
    grew the mask (on the coffee photo, +7 % of the image on the saucer for a click in the wood)."""
    terms = click_logits - prior
    capped = torch.where((labels < 0)[..., None, None], terms.clamp_max(0), terms)
    selects = (labels > 0).any(1)[:, None, None, None]
    terms = torch.where(selects, capped, terms) * (labels != 0)[..., None, None].to(terms.dtype)
    return prior + terms.sum(1, keepdim=True)


def _masked_extreme(values: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor, largest: bool) -> torch.Tensor:
    """max (or min) over the clicks of `values` (N, P, h, w) where `mask` (N, P); `fill` (N, 1, h, w) where none."""
    big = torch.finfo(values.dtype).max
    masked = torch.where(mask[..., None, None], values, torch.full_like(values, -big if largest else big))
    out = masked.amax(1, keepdim=True) if largest else masked.amin(1, keepdim=True)
    return torch.where(mask.any(1)[:, None, None, None], out, fill)


def _bumps(points: torch.Tensor, mask: torch.Tensor, stride: int, h: int, w: int) -> torch.Tensor:
    """max over the masked clicks of exp(−d² / 2σ²), d the distance in grid cells: (N, P, 2), (N, P) -> (N, 1, h, w).
    A grid cell j is centred on input pixel (j + 0.5)·s − 0.5."""
    gx = (points[..., 0] + 0.5) / stride - 0.5
    gy = (points[..., 1] + 0.5) / stride - 0.5
    xs = torch.arange(w, device=points.device, dtype=points.dtype)
    ys = torch.arange(h, device=points.device, dtype=points.dtype)
    dx2 = (xs[None, None, None, :] - gx[..., None, None]) ** 2
    dy2 = (ys[None, None, :, None] - gy[..., None, None]) ** 2
    bump = torch.exp(-(dx2 + dy2) / (2 * SIGMA**2)) * mask[..., None, None].to(points.dtype)
    return bump.amax(1, keepdim=True) if bump.shape[1] else bump.sum(1, keepdim=True)


def newest_click(labels: torch.Tensor) -> torch.Tensor:
    """(N, P) one-hot of each set's last non-padding click (all False for an empty set)."""
    present = labels != 0
    return (present.cumsum(1) == present.sum(1, keepdim=True)) & present


def rule_features(click_logits: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor, points: torch.Tensor,
                  stride: int, prev_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(base (N, 1, h, w), features (N, len(FEATURES), h, w)); see the module docstring."""
    n, _, h, w = click_logits.shape
    prior = prior.expand(n, -1, -1, -1).to(click_logits.dtype)
    base = bounded_naive_bayes(click_logits, labels, prior)
    positive, negative, newest = labels > 0, labels < 0, newest_click(labels)
    newest_map = (click_logits * newest[..., None, None]).sum(1, keepdim=True)
    newest_sign = (labels * newest).sum(1).to(click_logits.dtype)[:, None, None, None].expand(-1, 1, h, w)
    if prev_logits is None:
        previous, has_previous = torch.zeros_like(base), torch.zeros_like(base)
    else:
        previous, has_previous = prev_logits.to(base.dtype).expand_as(base), torch.ones_like(base)
    count = (labels != 0).sum(1).clamp_min(1).to(base.dtype)
    logit_like = [base, prior, _masked_extreme(click_logits, positive, prior, True),
                  _masked_extreme(click_logits, negative, prior, True),
                  _masked_extreme(click_logits, negative, prior, False), newest_map]
    other = [newest_sign, _bumps(points, positive, stride, h, w), _bumps(points, negative, stride, h, w),
             _bumps(points, newest, stride, h, w), previous.clamp(-CLAMP, CLAMP) / SCALE, has_previous,
             torch.log(count)[:, None, None, None].expand(-1, 1, h, w)]
    features = [t.clamp(-CLAMP, CLAMP) / SCALE for t in logit_like] + other
    return base, torch.cat(features, 1)


class LearnedClickRule(nn.Module):
    """base + 1{n ≥ 2} · (r + tanh(g) · base): three 3x3 convolutions (dilations 1, 2, 4: a 15-cell field) and a
    zero-started 1x1 giving (r, g)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = int(channels)
        self.body = nn.Sequential(nn.Conv2d(len(FEATURES), c, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=2, dilation=2), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=4, dilation=4), nn.ReLU())
        self.out = nn.Conv2d(c, 2, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.out.weight)  # an untrained rule is the base rule exactly
        nn.init.zeros_(self.out.bias)

    def forward(self, click_logits: torch.Tensor, labels: torch.Tensor, prior: torch.Tensor, points: torch.Tensor,
                stride: int, prev_logits: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 1, h, w) logits of N click sets: click_logits (N, P, h, w), labels (N, P), prior (N or 1, 1, h, w),
        points (N, P, 2) in input pixels, prev_logits (N, 1, h, w) the previous map's logits or None."""
        base, features = rule_features(click_logits, labels, prior, points, stride, prev_logits)
        several = ((labels != 0).sum(1) >= 2).to(base.dtype)[:, None, None, None]
        residual, gate = self.out(self.body(features)).unbind(1)
        return base + several * (residual + torch.tanh(gate) * base[:, 0])[:, None]

