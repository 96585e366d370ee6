"""What a newest negative click may change in the mask: it removes, it never adds.

A negative click at x says "x is not in the object". It is no evidence that any pixel is in the object, so the
mask after it must not gain foreground. With the previous mask fed back the decoder does add some: on
scikit-image's coffee photo, one positive click on the cup covers 29 % of the image, and a negative click in the
wood far from it grew the mask to 31 % (38 % at tta=4; on the saucer), while the same two clicks without the
previous mask give 27 %. Corrective negative clicks in training fall inside the previous mask's false positives, so a
far one is outside what the decoder learned from, and it answers by confirming and extending the previous mask.

The rule, in the model-input frame after the views are combined, for each click set whose newest click (its last
non-padding one) is negative and that comes with a previous estimate P_prev:

    P(y) = min(P_new(y), P_prev(y))         for every pixel y

Every other set (newest click positive, or no previous estimate) keeps P_new. The mask after a negative click is
then a subset of the mask before it, which is what the click says; the removal itself is the decoder's.
"""

from __future__ import annotations

import torch

from ..models.student.click_rule import bounded_naive_bayes


def newest_click_is_negative(labels: torch.Tensor) -> torch.Tensor:
    """(B,) bool: for each click set of `labels` (B, N) in {+1, −1, 0 = padding}, whether its last non-padding
    click is negative."""
    present = labels != 0
    last = (present.cumsum(1) == present.sum(1, keepdim=True)) & present  # the last non-padding position
    return ((labels * last).sum(1) < 0)


def negative_click_cannot_add(probabilities: torch.Tensor, prev: torch.Tensor | None,
                              labels: torch.Tensor) -> torch.Tensor:
    """`probabilities` (B, S, S) of B click sets after the newest click; `prev` (B, 1, S, S) the previous estimates
    fed back (None: none); `labels` (B, N). Returns (B, S, S) with the rule of the module docstring applied."""
    if prev is None:
        return probabilities
    negative = newest_click_is_negative(labels).to(probabilities.device)
    capped = torch.minimum(probabilities, prev[:, 0].to(probabilities.dtype))
    return torch.where(negative[:, None, None], capped, probabilities)


def student_click_logits(model, image_embeddings, points: torch.Tensor, labels: torch.Tensor,
                         prev_logits: torch.Tensor | None = None) -> torch.Tensor:
    """The distilled student's combined logits (N, 1, h, w) for N click sets, with the same rule for its naive-Bayes
    combination (it has no previous mask): with u the prior logit and ℓ_i click i's logit map,

        logit = u + Σ_{positive i} (ℓ_i − u) + Σ_{negative j} min(0, ℓ_j − u)

    for a set with a positive click: a negative click's term only lowers, where the model's own
    `combine_clicks` (u + Σ_i (ℓ_i − u)) lets f−(x) raise every pixel it finds likelier than the prior (on the coffee
    photo, +7 % of the image on the saucer for a click in the wood). Sets without a positive click keep the model's
    combination: their probabilities are f−, "some region avoiding these pixels", and their mask is empty.
    A student with `click_rule="learned"` adds its learned residual to this sum (`models/student/click_rule.py`),
    reading `prev_logits` (the previous map on the grid) when given; naive Bayes never reads it."""
    per_click = model.click_logits(image_embeddings, points, labels)
    prior = image_embeddings.prior_logits  # (1, 1, h, w) broadcasts over the sets of one image, else (N, 1, h, w)
    if getattr(model.config, "click_rule", "naive_bayes") == "learned":
        return model.combine(per_click, labels, prior, points, prev_logits)  # the previous map: its (N, 1, h, w) logits
    return bounded_naive_bayes(per_click, labels, prior)
