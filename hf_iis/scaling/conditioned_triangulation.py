"""Triangulation with the condition kept: the auxiliary pixel y is added to the click set instead of replacing it.

For a click set C (one click x ∈ m, or x ∉ m, or several clicks with a previous mask) and an auxiliary pixel y, the
law of total probability over the event y ∈ m holds exactly:

    P(z | C) = P(z | C, y ∈ m) · P(y ∈ m | C) + P(z | C, y ∉ m) · (1 − P(y ∈ m | C))              (1)

and averaging over auxiliary pixels y_i with weights w_i (Σ_i w_i = 1, drawn as in `triangulation.py`):

    P̂(z | C) = Σ_i w_i [ σ f(C ∪ {(y_i, +1)})(z) · p_i + σ f(C ∪ {(y_i, −1)})(z) · (1 − p_i) ],   p_i = σ f(C)(y_i)

The seed's estimator ("independent" mode) is (1) after the assumption P(z | C, y ∈ m) = P(z | y ∈ m) and
P(z | C, y ∉ m) = P(z | y ∉ m), i.e. z's membership is independent of C given y's: it decodes the single clicks
(y, +1) and (y, −1). The "conditioned" mode keeps C and decodes the sets C ∪ {(y, ±1)}, which the multi-click model
answers directly. Their previous mask is the direct estimate σ f(C): the model saw every set of two or more clicks
in training with the last map fed back (`training/objective.py`), and that map is a function of (I, C), so it adds
no information beyond C. The negative click rule (`inference/click_rules.py`) caps the sets ending in (y, −1) by it,
as it caps any next negative click. The cost is the same count, 2K decodes per click set and view, of sets one
click longer.

A negative first click (C = {(x, −1)}) needs nothing new: p_i = σ f−(x)(y_i) = P(y_i ∈ m | x ∉ m) and the two sets
are {(x, −1), (y_i, +1)} and {(x, −1), (y_i, −1)}; (1) is the same identity with the condition x ∉ m. Both modes
therefore run for any click set, as the seed's form always has.

Only the decoded maps differ between the modes; the mixture itself is `RunningTriangulation`'s.
"""

from __future__ import annotations

import torch

from .triangulation import RunningTriangulation

TRIANGULATION_MODES = ("independent", "conditioned")
"""`triangulation_mode`: "independent" = the seed's form (single clicks at y), "conditioned" = the click set plus y.
Not named "seed", which would read as the sampler's random `seed` argument beside it."""


def check_triangulation_mode(value) -> str:
    """`triangulation_mode` as one of `TRIANGULATION_MODES`: the one check the pipeline, the predictors and the CLI
    make."""
    if not isinstance(value, str) or value not in TRIANGULATION_MODES:
        raise ValueError(f"unknown triangulation_mode {value!r}; use one of {TRIANGULATION_MODES}")
    return value


def auxiliary_click_sets(
    mode: str, points: torch.Tensor, labels: torch.Tensor, auxiliary: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2k click sets whose maps are P(z | ·, y_i ∈ m) (first k) and P(z | ·, y_i ∉ m) (last k).

    Args:
        mode: one of `TRIANGULATION_MODES`.
        points: (N, 2) the click set C as (x, y) pixels; labels: (N,) +1 / −1 / 0 (padding). Unused when
            mode is "independent".
        auxiliary: (k, 2) the auxiliary pixels y_i as (x, y).
    Returns:
        points (2k, P, 2) and labels (2k, P): P = 1 ("independent": {(y_i, ±1)}) or N + 1 ("conditioned":
        C ∪ {(y_i, ±1)}, y_i last).
    """
    check_triangulation_mode(mode)
    k = auxiliary.shape[0]
    signs = torch.cat([torch.ones(k), -torch.ones(k)]).to(device=auxiliary.device, dtype=torch.long)[:, None]
    aux_points = torch.cat([auxiliary, auxiliary])[:, None, :]
    if mode == "independent":
        return aux_points, signs
    set_points = points.to(auxiliary).expand(2 * k, *points.shape)
    set_labels = labels.to(device=auxiliary.device, dtype=torch.long).expand(2 * k, *labels.shape)
    return torch.cat([set_points, aux_points], 1), torch.cat([set_labels, signs], 1)


def conditioned_triangulate(
    direct: torch.Tensor,
    auxiliary: torch.Tensor,
    weights: torch.Tensor,
    maps_y_in: torch.Tensor,
    maps_y_out: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """P̂(z | C) = Σ_i w_i [ P(z | C, y_i ∈ m) · p_i + P(z | C, y_i ∉ m) · (1 − p_i) ], p_i = direct(y_i): formula (1)
    of the module docstring averaged over the y_i.

    Args:
        direct: (H, W) P(y | C). auxiliary: (K, 2) integer-valued (x, y). weights: (K,) summing to 1.
        maps_y_in, maps_y_out: (K, H, W) σ f(C ∪ {(y_i, +1)}) and σ f(C ∪ {(y_i, −1)}).
    Returns:
        the estimate (H, W) and the weighted standard deviation of the K terms (H, W).
    """
    return RunningTriangulation(direct).add(auxiliary, weights, maps_y_in, maps_y_out).result()
