"""The tensor-level core of `SignedClickPredictor`: decoding click sets on the cached TTA views, triangulation on a
view, and the model-frame result of `SignedClickPredictor.predict_torch`.

Everything here works in the *model-input frame*: the canonical padded square of side `S = processor.size` (the
image resized into its top-left `reshaped_size`, zeros around it) and, per TTA view, that square transformed by the
view (`tta.View`). Mapping to and from original pixels, and checking user input, is `predictor.py`'s job; these
functions trust their tensors.

Why batched: a TTA view's direct estimate is one click set on one cached embedding, so V views of B click sets are
B·V decodes. Views of one input size are stacked into one embedding batch and decoded together, each (view, set) pair
reading its view's embedding through `decode(..., image_index=...)` (segment-anything's batched prompts over a batch
of images), at most `points_per_batch` pairs per decoder call. Results do not depend on `points_per_batch`, only the
peak memory and the number of decoder calls do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..models.signed_click.embeddings import SignedClickImageEmbeddings
from ..scaling.conditioned_triangulation import auxiliary_click_sets
from ..scaling.triangulation import RunningTriangulation, sample_auxiliary_pixels
from ..scaling.tta import View, combine_views
from .click_rules import negative_click_cannot_add

LOGIT_EPS = 1e-6
"""Probabilities are clamped to [ε, 1 − ε] before `logit`, so that logits are finite and σ(logit(p)) = p ± ε."""


@dataclass
class InputFramePrediction:
    """What `SignedClickPredictor.predict_torch` returns for B click sets, in the canonical model-input frame.

    Args:
        probabilities: (B, S, S) float in [0, 1], the combined estimate (views averaged, triangulation blended).
            The image occupies the top-left `reshaped_size`; the rest is padding, where the values mean nothing.
        uncertainty: (B, S, S) spread across views (or auxiliary pixels, with one view); None unless requested
            and there is more than one estimate.
        views: names of the TTA views used. encoded_views: views whose embedding this call computed.
    """

    probabilities: torch.Tensor
    uncertainty: torch.Tensor | None = None
    views: list[str] = field(default_factory=list)
    encoded_views: int = 0

    @property
    def logits(self) -> torch.Tensor:
        """(B, S, S) logit of `probabilities` (clamped by `LOGIT_EPS`): what `prev_logits` takes back. Computed on
        demand, so that a large batch of single clicks does not hold a second copy of its maps."""
        return torch.logit(self.probabilities, eps=LOGIT_EPS)


def decode_probabilities(
    model,
    embeddings: SignedClickImageEmbeddings,
    points: torch.Tensor,
    labels: torch.Tensor,
    prev_masks: torch.Tensor | None = None,
    points_per_batch: int = 64,
    image_index: torch.Tensor | None = None,
    map_index: int | None = None,
) -> torch.Tensor:
    """σ(decode) (N, H, W) for N click sets, at most `points_per_batch` sets per decoder call.

    `image_index` (N,) picks each set's embedding in a batch of embeddings (None: `decode`'s default); `map_index`
    picks one of a multi-map model's S maps (None: the model's default, its best-predicted map)."""
    out = []
    extra = {} if map_index is None else {"map_index": map_index}
    for start in range(0, points.shape[0], points_per_batch):
        part = slice(start, start + points_per_batch)
        prev = None if prev_masks is None else prev_masks[part]
        index = None if image_index is None else image_index[part]
        logits = model.decode(embeddings, points[part], labels[part], prev, image_index=index, **extra)
        out.append(torch.sigmoid(logits[:, 0].float()))  # float32 maps, also from a reduced-precision model
    return torch.cat(out)


def decode_views(
    model,
    embeddings: dict[str, SignedClickImageEmbeddings],
    views: list[View],
    points: torch.Tensor,
    labels: torch.Tensor,
    prev_masks: torch.Tensor | None,
    size: int,
    points_per_batch: int,
    map_index: int | None = None,
) -> list[torch.Tensor]:
    """Direct estimates σ f(T(I), T(x), T(prev)) of B click sets in every view T, each in its view's frame.

    Args:
        embeddings: the cached embedding of each view, by name (batch 1 each).
        points: (B, N, 2) canonical model-input (x, y). labels: (B, N) in {+1, −1, 0 = padding}.
        prev_masks: optional (B, 1, S, S) canonical previous probabilities.
    Returns:
        [(B, S_T, S_T)] in the order of `views`. The views of one input size go through the decoder together
        (view-major: all sets of the first view, then of the second, ...), `points_per_batch` pairs per call.
    """
    batch = points.shape[0]
    out: list[torch.Tensor | None] = [None] * len(views)
    for out_size in dict.fromkeys(view.output_size(size) for view in views):  # distinct, in view order
        members = [i for i, view in enumerate(views) if view.output_size(size) == out_size]
        group = [views[i] for i in members]
        view_points = torch.cat([view.apply_points(points, size) for view in group])
        view_labels = labels.repeat(len(group), 1)
        view_prev = None if prev_masks is None else torch.cat([view.apply_image(prev_masks) for view in group])
        if len(group) == 1:  # one embedding: decode broadcasts it, nothing to stack or index
            stacked, index = embeddings[group[0].name], None
        else:
            stacked = SignedClickImageEmbeddings.cat([embeddings[view.name] for view in group])
            index = torch.arange(len(group), device=points.device).repeat_interleave(batch)
        maps = decode_probabilities(model, stacked, view_points, view_labels, view_prev, points_per_batch, index,
                                    map_index)
        for j, i in enumerate(members):
            out[i] = maps[j * batch : (j + 1) * batch]
    return out


def triangulate_view(
    model,
    embeddings: SignedClickImageEmbeddings,
    direct: torch.Tensor,
    valid: torch.Tensor,
    num_samples: int,
    sampling: str,
    generator: torch.Generator,
    points_per_batch: int,
    progress=None,
    map_index: int | None = None,
    mode: str = "independent",
    click_points: torch.Tensor | None = None,
    click_labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangulated estimate and its spread, (S_T, S_T) each, of one click set in one view's frame.

    `progress(n)`, when given, is called with the number of decodes after each decoder call.

    `direct` (S_T, S_T) is the set's direct estimate there, `valid` (S_T, S_T) bool where auxiliary pixels may be
    drawn (the image, not the padding). The 2K decodes per auxiliary pixel pair run `points_per_batch` at a time and
    fold into running sums (`RunningTriangulation`), so that memory does not grow with K. `mode` (scaling/
    conditioned_triangulation.py): "independent" decodes the single clicks (y_i, ±1); "conditioned" decodes the
    set itself, `click_points` (N, 2) and `click_labels` (N,) in this view's frame, plus (y_i, ±1), with `direct`
    (zero on the padding) as their previous mask, as the interactive loop and training feed the last map to the
    next click; the negative click rule (`click_rules.py`) applies to the sets ending in (y_i, −1), as it would
    to that next click."""
    aux, weights = sample_auxiliary_pixels(direct.cpu(), valid.cpu(), num_samples, sampling, generator)
    aux, weights = aux.to(direct.device), weights.to(direct.device)
    running = RunningTriangulation(direct)
    chunk = max(1, points_per_batch // 2)
    for start in range(0, aux.shape[0], chunk):
        part = aux[start : start + chunk]
        k = part.shape[0]
        points, labels = auxiliary_click_sets(mode, click_points, click_labels, part)
        prev = None if mode == "independent" else (direct * valid)[None, None].expand(2 * k, -1, -1, -1)
        maps = decode_probabilities(model, embeddings, points, labels, prev, points_per_batch=points_per_batch,
                                    map_index=map_index)
        maps = negative_click_cannot_add(maps, prev, labels)  # no-op without a previous mask (the seed's form)
        running.add(part, weights[start : start + chunk], maps[:k], maps[k:])
        if progress is not None:
            progress(2 * k)
    return running.result()


def triangulate_sets(
    model,
    embeddings: SignedClickImageEmbeddings,
    view: View,
    directs: torch.Tensor,
    valid: torch.Tensor,
    num_samples: int,
    sampling: str,
    generators: list[torch.Generator],
    points_per_batch: int,
    progress=None,
    map_index: int | None = None,
    mode: str = "independent",
    points: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`triangulate_view` for each of B click sets in `view`: `directs` (B, S_T, S_T) in the view's frame, `valid`
    (1, 1, S, S) the canonical image region, one sampler per set. The "conditioned" mode needs the sets, canonical as
    `decode_views` takes them: `points` (B, N, 2), `labels` (B, N). Returns the estimates and spreads, (B, S_T, S_T)."""
    view_valid = view.apply_image(valid.float(), mode="nearest")[0, 0] > 0.5
    batch = directs.shape[0]
    sets = [(None, None)] * batch
    if mode != "independent":
        view_points = view.apply_points(points, valid.shape[-1])
        sets = [(view_points[b], labels[b]) for b in range(batch)]
    pairs = [triangulate_view(model, embeddings, direct, view_valid, num_samples, sampling, generator,
                              points_per_batch, progress, map_index, mode, *one_set)
             for direct, generator, one_set in zip(directs, generators, sets)]
    return torch.stack([pair[0] for pair in pairs]), torch.stack([pair[1] for pair in pairs])


def check_click_tensors(points, labels, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`predict_torch`'s click sets as float (B, N, 2) points and long (B, N) labels on `device`, after shape and
    label checks (the coordinates are trusted: `predict` checks clicks in original pixels)."""
    points = torch.as_tensor(points, dtype=torch.float32, device=device)
    labels = torch.as_tensor(labels, device=device).long()
    if points.ndim != 3 or points.shape[-1] != 2 or labels.shape != points.shape[:2] or points.shape[0] == 0:
        raise ValueError(f"points must be (B, N, 2) and labels (B, N) with B >= 1; got {tuple(points.shape)} and "
                         f"{tuple(labels.shape)}")
    if bool((labels.abs() > 1).any()):
        raise ValueError("labels must be +1 (object), -1 (not object) or 0 (padding)")
    if not bool((labels != 0).any(1).all()):
        raise ValueError("every click set needs at least one click (label +1 or -1); 0 only pads")
    return points, labels


def previous_probabilities(prev_logits, prev_masks, batch: int, valid: torch.Tensor) -> torch.Tensor | None:
    """(B, 1, S, S) previous probabilities in the model-input frame from logits (σ) or probabilities, zero on the
    padding (`valid` (1, 1, S, S) bool), as `map_to_input` pads a map from the original resolution; or None."""
    if prev_logits is not None and prev_masks is not None:
        raise ValueError("pass prev_logits or prev_masks (or prev_mask), not both")
    prev = prev_masks if prev_logits is None else prev_logits
    if prev is None:
        return None
    prev = torch.as_tensor(prev, dtype=torch.float32, device=valid.device)
    expected = (batch, 1, *valid.shape[-2:])
    if tuple(prev.shape) != expected:
        name = "prev_logits" if prev_logits is not None else "prev_masks"
        raise ValueError(f"{name} has shape {tuple(prev.shape)}; it must be {expected}, one map per click set")
    if prev_logits is not None:
        prev = torch.sigmoid(prev)
    return prev * valid


def combine_view_estimates(model, valid, points, labels, prev, views, embeddings, size, batch_size, num_aux,
                           sampling, blend, generators, combine, return_uncertainty, encoded_views, progress,
                           map_index=None, triangulation_mode="independent") -> InputFramePrediction:
    """`SignedClickPredictor.predict_torch`'s work on checked inputs: each view's direct estimate, triangulated when
    asked, mapped back and combined across views (`valid`: the image's pixels in the model-input frame)."""
    means, spreads = [], []
    sets_per_call = max(1, batch_size // len(views))  # one decoder call holds every view of these sets
    for start in range(0, points.shape[0], sets_per_call):
        part = slice(start, start + sets_per_call)
        directs = decode_views(model, embeddings, views, points[part], labels[part],
                               None if prev is None else prev[part], size, batch_size, map_index)
        per_view, tri_spreads = [], []
        for view, direct in zip(views, directs):
            estimate = direct
            if num_aux:
                triangulated, tri_spread = triangulate_sets(model, embeddings[view.name], view, direct,
                                                            valid, num_aux, sampling, generators[part],
                                                            batch_size, progress, map_index, triangulation_mode,
                                                            points[part], labels[part])
                estimate = blend * direct + (1.0 - blend) * triangulated
                tri_spreads.append(view.invert_map(tri_spread, size))
            per_view.append(view.invert_map(estimate, size))
        mean, spread = combine_views(torch.stack(per_view), combine)
        means.append(negative_click_cannot_add(mean.float().clamp(0, 1), None if prev is None else prev[part],
                                               labels[part]))  # click_rules.py: it removes, never adds
        if return_uncertainty:
            spreads.append(tri_spreads[0] if len(views) == 1 and tri_spreads else spread)
    uncertainty = None
    if return_uncertainty and (len(views) > 1 or num_aux):  # one estimate has no spread to report
        uncertainty = torch.cat(spreads).float().clamp_min(0)
    return InputFramePrediction(torch.cat(means), uncertainty, [v.name for v in views], encoded_views)
