"""Probabilistic triangulation: estimate P(z ∈ m | x ∈ m) through auxiliary pixels y.

By total probability over the event y ∈ m (the seed's "transitivity consistency"),

    P(z | x) = P(z | y ∉ m) · (1 − P(y | x)) + P(z | y ∈ m) · P(y | x)

for every y, with P(z | y ∈ m) = σ f+(I, y)(z) and P(z | y ∉ m) = σ f−(I, y)(z). Averaging over all y ∈ Ω,

    P̂(z | x) = (1/|Ω|) Σ_y [ σ f−(y)(z) · (1 − P(y | x)) + σ f+(y)(z) · P(y | x) ],

estimated from K sampled pixels as Σ_i w_i T(y_i) with Σ_i w_i = 1:
  - uniform:    y_i uniform over the valid image area, w_i = 1/K;
  - stratified: strata F = {P(y | x) ≥ 0.5} and B = the rest, K_F = ⌈K/2⌉ and K_B = K − K_F samples drawn
                uniformly within each (all K in one stratum when the other is empty), w_i = |S_i| / (|Ω| · K_S):
                the estimate stays unbiased for the uniform mean while the object, usually the smaller stratum,
                gets half of the samples;
  - foreground: y_i uniform over F only (all of Ω when F is empty), w_i = 1/K. The identity above holds for every
                y, so under the seed's assumption (z's membership depends on x only through y's) the mean over F is
                as valid as the mean over Ω; in practice it leans on f+(y), which is trained on an unambiguous
                target, instead of f−(y) at background pixels, whose target is "some mask that avoids y" and whose
                maps are diffuse. It is not an unbiased estimate of the uniform mean.
The final map may blend with the direct estimate: P = α · P(z | x) + (1 − α) · P̂(z | x).
"""

from __future__ import annotations

import torch

from ..utils.image_io import is_whole_number

SAMPLINGS = ("uniform", "stratified", "foreground")


def sample_auxiliary_pixels(
    direct: torch.Tensor,
    valid: torch.Tensor,
    num_samples: int,
    sampling: str = "stratified",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw K auxiliary pixels for one map.

    Args:
        direct: (H, W) the current estimate P(y | x). valid: (H, W) bool, where y may be drawn.
    Returns:
        points (K, 2) float as (x, y) pixel coordinates, weights (K,) summing to 1.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown triangulation sampling {sampling!r}; use one of {SAMPLINGS}")
    if num_samples < 1:
        raise ValueError(f"triangulation needs at least 1 auxiliary pixel, got {num_samples}")
    flat_valid = valid.reshape(-1)
    width = direct.shape[-1]
    fg = (direct.reshape(-1) >= 0.5) & flat_valid
    if sampling == "uniform" or (sampling == "foreground" and not bool(fg.any())):
        strata = [flat_valid.nonzero().squeeze(1)]
        counts = [num_samples]
    elif sampling == "foreground":
        strata = [fg.nonzero().squeeze(1)]
        counts = [num_samples]
    else:
        strata = [fg.nonzero().squeeze(1), (flat_valid & ~fg).nonzero().squeeze(1)]
        k_fg = (num_samples + 1) // 2
        counts = [k_fg, num_samples - k_fg]
        if strata[0].numel() == 0:
            counts = [0, num_samples]
        elif strata[1].numel() == 0:
            counts = [num_samples, 0]
    total = int(flat_valid.sum())
    if total == 0:
        raise ValueError("no valid pixel to draw auxiliary pixels from")
    indices, weights = [], []
    for stratum, count in zip(strata, counts):
        if count == 0:
            continue
        picks = torch.randint(stratum.numel(), (count,), generator=generator)
        indices.append(stratum[picks])
        share = 1.0 / count if sampling == "foreground" else stratum.numel() / (total * count)
        weights.append(torch.full((count,), share))
    index = torch.cat(indices)
    points = torch.stack([(index % width).float(), (index // width).float()], dim=1)
    return points, torch.cat(weights)


MAX_AUXILIARY_PIXELS = 4096
"""Upper bound on K per view: 2K decoder passes per view (memory stays constant, see RunningTriangulation). Time
grows linearly: the default teacher decodes one click in ~55 ms on one CPU thread at 320 px, so K = 4096 is about
7.5 minutes per view there (seconds on a GPU); the predictor shows a progress bar from 1024 decodes on
(`inference/predictor.py`). Not capped lower: what K still pays depends on the image and the device."""


def check_num_auxiliary(value) -> int:
    """`triangulation=K` as an int in [0, MAX_AUXILIARY_PIXELS] (0 = off); the predictor's and the pipeline's check."""
    if not is_whole_number(value) or not 0 <= int(value) <= MAX_AUXILIARY_PIXELS:
        raise ValueError(f"triangulation must be a whole number of auxiliary pixels in [0, {MAX_AUXILIARY_PIXELS}], "
                         f"got {value!r}")
    return int(value)


def check_sampling(value) -> str:
    """`triangulation_sampling` as one of `SAMPLINGS`: the one check the pipeline and both predictors make."""
    if not isinstance(value, str) or value not in SAMPLINGS:
        raise ValueError(f"unknown triangulation sampling {value!r}; use one of {SAMPLINGS}")
    return value


class RunningTriangulation:
    """Σ_i w_i T_i(z) and Σ_i w_i T_i(z)² accumulated over chunks of auxiliary pixels, so that memory does not grow
    with K: T_i(z) = P(z | y_i ∈ m) · P(y_i | x) + P(z | y_i ∉ m) · (1 − P(y_i | x)).

    With Σ_i w_i = 1 the estimate is Σ_i w_i T_i and the spread is the weighted standard deviation
    sqrt(Σ_i w_i T_i² − (Σ_i w_i T_i)²).
    """

    def __init__(self, direct: torch.Tensor) -> None:
        self.direct = direct
        self.first = torch.zeros_like(direct)
        self.second = torch.zeros_like(direct)

    def add(self, points: torch.Tensor, weights: torch.Tensor, positive_maps: torch.Tensor,
            negative_maps: torch.Tensor) -> RunningTriangulation:
        """Add the chunk (points (k, 2) integer-valued (x, y), weights (k,), maps (k, H, W)); returns self."""
        p_y = self.direct[points[:, 1].long(), points[:, 0].long()]  # (k,)
        terms = positive_maps * p_y[:, None, None] + negative_maps * (1.0 - p_y)[:, None, None]
        w = weights[:, None, None].to(terms)
        self.first += (w * terms).sum(0)
        self.second += (w * terms * terms).sum(0)
        return self

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(estimate, spread), each (H, W)."""
        return self.first, (self.second - self.first * self.first).clamp_min(0).sqrt()


def triangulate(
    direct: torch.Tensor,
    points: torch.Tensor,
    weights: torch.Tensor,
    positive_maps: torch.Tensor,
    negative_maps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_i w_i T_i(z), T_i(z) = P(z | y_i ∈ m) · P(y_i | x) + P(z | y_i ∉ m) · (1 − P(y_i | x)).

    Args:
        direct: (H, W) P(y | x). points: (K, 2) integer-valued (x, y). weights: (K,) summing to 1.
        positive_maps, negative_maps: (K, H, W) σ f+(I, y_i) and σ f−(I, y_i).

    Returns:
        the estimate P̂(z | x), (H, W), and the weighted standard deviation of T_i(z) across the y_i, (H, W).
    """
    return RunningTriangulation(direct).add(points, weights, positive_maps, negative_maps).result()
