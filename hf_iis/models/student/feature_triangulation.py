"""Probabilistic triangulation in the student's feature space: the seed's estimator summed exactly over all pixels.

The identity of `hf_iis.scaling.triangulation` holds for every auxiliary pixel y,

    P(z | x) = P(z | y ∉ m) · (1 − P(y | x)) + P(z | y ∈ m) · P(y | x),

and the teacher averages it over K sampled y (2K decoder passes). In the student every pair is one dot product
(`SignedClickStudentModel.pairwise_logits`), so the weighted mean runs over *all* auxiliary pixels y of a grid Y
with exact weights:

    P̂(z | x) = Σ_{y ∈ Y} w(y) [ f−(y)(z) · (1 − p(y)) + f+(y)(z) · p(y) ] / Σ_y w(y),     p(y) = P(y | x)

    = (w ∘ p)ᵀ F+ + (w ∘ (1 − p))ᵀ F−,    F±[y, z] = σ f±(y)(z)    (two vector-matrix products per click set)

with Y = the valid (non-padding) pixels of the grid at `config.triangulation_stride` (a subsampling of the
stride-s embedding grid; 40 x 40 = 1,600 pixels at 320 px and stride 8) and z every pixel of the stride-s grid.
p is the click set's direct estimate at y (its multi-click map), as in the teacher. The weightings mirror the
teacher's samplers, evaluated exactly:
  - uniform:    w(y) = 1 on Y (the mean over Ω);
  - stratified: the teacher's stratified sampler is an unbiased estimate of that same uniform mean, so its exact
                value is the uniform one (kept as a name so the same option strings work);
  - foreground: w(y) = 1 where p(y) ≥ 0.5, uniform over Y when no y is (as the teacher's foreground sampler);
  - soft:       w(y) = p(y), a soft foreground (uniform when p is 0 everywhere); the student's own option.
The spread is the weighted standard deviation of the terms T(y)(z) across y, from Σ w T² = (w p²)ᵀ F+² +
(2 w p (1 − p))ᵀ (F+ ∘ F−) + (w (1 − p)²)ᵀ F−², as `RunningTriangulation` reports it for samples.
F± are computed once per image and view and cached when they fit `max_cache_bytes`, else recomputed per call in row
blocks of at most `block_bytes` (memory stays bounded either way).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

FEATURE_SAMPLINGS = ("uniform", "stratified", "foreground", "soft")


def triangulation_weights(p: torch.Tensor, valid: torch.Tensor, sampling: str = "uniform") -> torch.Tensor:
    """(B, Ny) weights w(y), each row summing to 1, for estimates p (B, Ny) at auxiliary pixels valid (Ny,) bool."""
    if sampling not in FEATURE_SAMPLINGS:
        raise ValueError(f"unknown triangulation sampling {sampling!r}; use one of {FEATURE_SAMPLINGS}")
    if not bool(valid.any()):
        raise ValueError("no valid auxiliary pixel to triangulate through")
    uniform = valid.to(p.dtype).expand_as(p)
    if sampling in ("uniform", "stratified"):
        weights = uniform
    elif sampling == "foreground":
        weights = uniform * (p >= 0.5).to(p.dtype)
    else:
        weights = uniform * p.clamp(0, 1)
    empty = weights.sum(1, keepdim=True) <= 0
    weights = torch.where(empty, uniform, weights)
    return weights / weights.sum(1, keepdim=True)


def triangulate_exact(p: torch.Tensor, weights: torch.Tensor, blocks, return_spread: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Σ_y w(y) T(y)(z) over all y, from row blocks of F±.

    Args:
        p, weights: (B, Ny) the direct estimate at the auxiliary pixels and the weights (rows summing to 1).
        blocks: iterable of (rows, F+ block, F− block) with `rows` a slice of the Ny auxiliary pixels and blocks of
            shape (len(rows), Nz) holding σ f±(y)(z).
    Returns:
        (B, Nz) estimate and, with `return_spread`, the (B, Nz) weighted standard deviation of T(y)(z) across y.
    """
    wp, wq = weights * p, weights * (1.0 - p)
    first = second = None
    for rows, pos, neg in blocks:
        part = wp[:, rows] @ pos + wq[:, rows] @ neg
        first = part if first is None else first + part
        if return_spread:
            pq = p[:, rows] * (1.0 - p[:, rows])
            sq = (wp[:, rows] * p[:, rows]) @ (pos * pos) + (2.0 * weights[:, rows] * pq) @ (pos * neg) \
                + (wq[:, rows] * (1.0 - p[:, rows])) @ (neg * neg)
            second = sq if second is None else second + sq
    if first is None:
        raise ValueError("no auxiliary pixels")
    spread = None if not return_spread else (second - first * first).clamp_min(0).sqrt()
    return first, spread


class FeatureTriangulator:
    """F± between the auxiliary grid Y and the full stride-s grid of one image view, cached or in row blocks.

    Args:
        model: a `SignedClickStudentModel`. embeddings: its `StudentImageEmbeddings` of one view (batch 1).
        valid: (h, w) bool, the grid pixels inside the image (not padding).
        step: Y = every `step`-th grid pixel in each direction, starting at step // 2.
        max_cache_bytes: cache F± (8·|Y|·h·w bytes) when they fit, else compute blocks per call.
    """

    def __init__(self, model, embeddings, valid: torch.Tensor, step: int = 1, max_cache_bytes: int = 256 * 2**20,
                 block_bytes: int = 32 * 2**20) -> None:
        h, w = embeddings.grid_size
        if valid.shape != (h, w):
            raise ValueError(f"valid must be the grid's shape {(h, w)}, got {tuple(valid.shape)}")
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self.model, self.embeddings, self.grid = model, embeddings, (h, w)
        device = embeddings.embeddings.device
        rows = torch.arange(step // 2, h, step, device=device)
        cols = torch.arange(step // 2, w, step, device=device)
        self.aux_index = (rows[:, None] * w + cols[None, :]).reshape(-1)  # flat indices of Y in the grid
        self.aux_valid = valid.reshape(-1).to(device)[self.aux_index]
        self.all_index = torch.arange(h * w, device=device)
        self.matrix_bytes = 8 * self.aux_index.numel() * h * w
        self.block_rows = max(1, block_bytes // (8 * h * w))
        self._cache = None
        self.cached = self.matrix_bytes <= max_cache_bytes
        if self.cached:
            self._cache = [(slice(0, self.aux_index.numel()), *self._matrices(self.aux_index))]

    def _matrices(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = self.model.pairwise_logits(self.embeddings, idx, self.all_index, 1).sigmoid_()
        neg = self.model.pairwise_logits(self.embeddings, idx, self.all_index, -1).sigmoid_()
        return pos, neg

    def blocks(self) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
        """(rows, F+ rows, F− rows) over all of Y: the cached matrices, or fresh blocks of `block_rows` rows."""
        if self._cache is not None:
            yield from self._cache
            return
        n = self.aux_index.numel()
        for start in range(0, n, self.block_rows):
            rows = slice(start, min(n, start + self.block_rows))
            yield (rows, *self._matrices(self.aux_index[rows]))

    def __call__(self, direct: torch.Tensor, sampling: str = "uniform", return_spread: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Triangulated estimate (B, h, w) of direct estimates `direct` (B, h, w) in [0, 1], and its spread."""
        b = direct.shape[0]
        p = direct.reshape(b, -1)[:, self.aux_index].float()
        weights = triangulation_weights(p, self.aux_valid, sampling)
        estimate, spread = triangulate_exact(p, weights, self.blocks(), return_spread)
        shape = (b, *self.grid)
        return estimate.reshape(shape), None if spread is None else spread.reshape(shape)
