"""`SignedClickPredictor`: encode an image once per TTA view, then decode many click sets cheaply.

    predictor = SignedClickPredictor.from_pretrained(path)       # or SignedClickPredictor(model, image_processor)
    predictor.set_image(image)                                   # cheap when the image is unchanged
    result = predictor.predict([(x, y, +1)], tta=8, triangulation=16)
    result.probabilities                                         # (H, W) float32 at the original resolution

This is where the estimates combine: for every view (tta.py) the direct estimate is decoded, optionally refined by
probabilistic triangulation (triangulation.py) on the same cached embedding, mapped back to the canonical frame,
and the views are averaged.

A click set with no positive click selects nothing: its mask is empty and its score 0.0 at every setting (as in any
click tool before the first "this is the object" click), while `probabilities` still holds the model's f−(I, x), "some
region that avoids these pixels", which is what `prev_mask` should carry into the next click.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .image_io import DEFAULT_MAX_PIXELS, is_whole_number, load_image, validate_clicks, validate_prev_mask
from .image_processing_signed_click import SignedClickImageProcessor
from .modeling_signed_click import SignedClickImageEmbeddings, SignedClickModel
from .triangulation import MAX_AUXILIARY_PIXELS, RunningTriangulation, sample_auxiliary_pixels
from .tta import View, combine_views, resolve_views


def has_positive_click(clicks) -> bool:
    """True when one of the clicks [(x, y, sign), ...] says "in the object": without one, nothing is selected."""
    return any(int(click[2]) > 0 for click in clicks)


def mask_score(probabilities: np.ndarray, mask: np.ndarray) -> float:
    """Mean probability inside `mask`; 0.0 for an empty mask."""
    return float(probabilities[mask].mean()) if mask.any() else 0.0


@dataclass
class Prediction:
    """
    Args:
        probabilities: (H, W) float32 in [0, 1], P(pixel ∈ object | clicks), at the original resolution.
        uncertainty: (H, W) float32, the spread across TTA views (or across auxiliary pixels with one view); None
            unless requested, and None with a single estimate (tta=1, triangulation=0), which has no spread.
        score: mean probability inside the predicted mask, `mask()`; 0 for an empty mask.
        views: names of the TTA views used. seconds: wall time of the call (encoding included).
        has_positive_click: False when no click said "in the object": `mask()` is then empty and `score` 0.0,
            while `probabilities` keeps the model's map (see the module docstring).
        encoded_views: how many views' image embeddings this call computed (0: all came from the cache).
    """

    probabilities: np.ndarray
    uncertainty: np.ndarray | None = None
    score: float = 0.0
    views: list[str] = field(default_factory=list)
    seconds: float = 0.0
    has_positive_click: bool = True
    encoded_views: int = 0

    def mask(self, threshold: float = 0.5) -> np.ndarray:
        """(H, W) bool: probability ≥ `threshold`; all False for a click set without a positive click."""
        if not self.has_positive_click:
            return np.zeros(self.probabilities.shape, dtype=bool)
        return self.probabilities >= threshold


class SignedClickPredictor:
    """Caches image embeddings per (image, view); decodes click sets, triangulation pixels and views in batches."""

    def __init__(
        self,
        model: SignedClickModel,
        image_processor: SignedClickImageProcessor | None = None,
        points_per_batch: int = 64,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        dtype = next(model.parameters()).dtype
        if dtype != torch.float32:
            # the click encoding, the affinity sampling and the view maps are float32 throughout; a half-precision
            # model would fail deep inside a convolution, so say so here
            raise ValueError(f"hf_iis models run in float32, this one is in {dtype}: load it without a reduced "
                             f"dtype (e.g. pipeline(..., dtype=torch.float32)); on a GPU, device=0 is the speed-up")
        self.model = model.eval()
        self.processor = image_processor or SignedClickImageProcessor(size=model.config.image_size)
        self.points_per_batch = points_per_batch
        self.max_pixels = max_pixels
        self._image_key: str | None = None
        self._pixel_values: torch.Tensor | None = None
        self._embeddings: dict[str, SignedClickImageEmbeddings] = {}
        self.encode_count = 0  # number of encoder batches run; lets callers and tests verify the cache

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **kwargs) -> SignedClickPredictor:
        """Load a checkpoint folder (safetensors + config + preprocessor config); None = the embedded default."""
        from .checkpoint_paths import load_checkpoint

        model, processor = load_checkpoint(path)
        return cls(model, processor, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ image
    def set_image(self, image) -> None:
        """Validate and preprocess `image` (path, PIL image or (H, W, 3) uint8 array); embeddings are computed
        lazily per view. Passing the same pixels again keeps the cached embeddings."""
        array = load_image(image, self.max_pixels)
        key = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest() + str(array.shape)
        if key == self._image_key:
            return
        processed = self.processor.preprocess(array, return_tensors="pt")
        self._pixel_values = processed["pixel_values"].to(self.device)
        self.original_size = tuple(int(v) for v in processed["original_sizes"][0])
        self.reshaped_size = tuple(int(v) for v in processed["reshaped_input_sizes"][0])
        self._valid = self.processor.valid_region(self.reshaped_size).to(self.device)
        self._embeddings = {}
        self._image_key = key

    def _require_image(self) -> None:
        if self._pixel_values is None:
            raise ValueError("no image set: call set_image(image) before predict")

    @torch.inference_mode()
    def view_embeddings(self, views: list[View]) -> dict[str, SignedClickImageEmbeddings]:
        """Embeddings of the given views, encoding only the missing ones, one encoder batch per input size."""
        self._require_image()
        missing = [v for v in views if v.name not in self._embeddings]
        size = self.processor.size
        for out_size in sorted({v.output_size(size) for v in missing}):
            group = [v for v in missing if v.output_size(size) == out_size]
            batch = torch.cat([v.apply_image(self._pixel_values) for v in group])
            embeddings = self.model.encode_image(batch)
            self.encode_count += 1
            for i, view in enumerate(group):
                self._embeddings[view.name] = embeddings.index(slice(i, i + 1))
        return {v.name: self._embeddings[v.name] for v in views}

    # ---------------------------------------------------------------- decoding
    def _decode_batched(
        self,
        embeddings: SignedClickImageEmbeddings,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """σ(decode) for N click sets on one embedding, at most `points_per_batch` sets per decoder call."""
        out = []
        for start in range(0, points.shape[0], self.points_per_batch):
            stop = start + self.points_per_batch
            prev = None if prev_masks is None else prev_masks[start:stop]
            logits = self.model.decode(embeddings, points[start:stop], labels[start:stop], prev)
            out.append(torch.sigmoid(logits[:, 0]))
        return torch.cat(out)

    @torch.inference_mode()
    def predict(
        self,
        clicks,
        prev_mask=None,
        tta: int | str | list[str] | None = 1,
        triangulation: int = 0,
        triangulation_sampling: str = "stratified",
        triangulation_blend: float | None = None,
        combine: str = "probability",
        seed: int = 0,
        return_uncertainty: bool = False,
    ) -> Prediction:
        """Probability map for one set of signed clicks [(x, y, sign), ...] in original pixels.

        Args:
            prev_mask: optional (H, W) previous probabilities, fed back for multi-click refinement.
            tta: number of views (first n of `tta.VIEW_ORDER`) or view names.
            triangulation: K auxiliary pixels per view (0 = off); 2K extra single-click decodes per view.
            triangulation_sampling: "uniform", "stratified" or "foreground" (see `triangulation`).
            triangulation_blend: weight α of the direct estimate (None = the checkpoint's
                `config.triangulation_blend`).
            combine: "probability" (mean of probabilities) or "logit" (mean of logits) across views.
        """
        start = time.perf_counter()
        self._require_image()
        height, width = self.original_size
        clicks = validate_clicks(clicks, width, height)
        prev = validate_prev_mask(prev_mask, width, height)
        if triangulation_blend is None:
            triangulation_blend = float(getattr(self.model.config, "triangulation_blend", 0.0))
        if not 0.0 <= float(triangulation_blend) <= 1.0:
            raise ValueError(f"triangulation_blend must be in [0, 1], got {triangulation_blend}")
        if not is_whole_number(triangulation) or not 0 <= int(triangulation) <= MAX_AUXILIARY_PIXELS:
            raise ValueError(f"triangulation must be a whole number of auxiliary pixels in "
                             f"[0, {MAX_AUXILIARY_PIXELS}], got {triangulation!r}")
        views = resolve_views(tta)
        size = self.processor.size
        points = self.processor.points_to_input(
            torch.tensor([[c[0], c[1]] for c in clicks], device=self.device), self.original_size, self.reshaped_size
        )
        labels = torch.tensor([c[2] for c in clicks], device=self.device)
        prev_input = None
        if prev is not None:
            prev_input = self.processor.map_to_input(torch.from_numpy(prev)[None, None].to(self.device),
                                                     self.reshaped_size)
        generator = torch.Generator().manual_seed(int(seed))
        encoded_views = sum(view.name not in self._embeddings for view in views)
        embeddings = self.view_embeddings(views)
        per_view, spreads = [], []
        for view in views:
            emb = embeddings[view.name]
            view_points = view.apply_points(points, size)[None]
            view_prev = None if prev_input is None else view.apply_image(prev_input)
            direct = self._decode_batched(emb, view_points, labels[None], view_prev)[0]
            estimate, spread = direct, None
            if triangulation:
                estimate, spread = self._triangulate(emb, view, direct, int(triangulation),
                                                     triangulation_sampling, generator)
                estimate = triangulation_blend * direct + (1.0 - triangulation_blend) * estimate
            per_view.append(view.invert_map(estimate, size))
            if spread is not None:
                spreads.append(view.invert_map(spread, size))
        mean, spread = combine_views(torch.stack(per_view), combine)
        if len(views) == 1 and spreads:
            spread = spreads[0]
        to_original = self.processor.map_to_original
        probabilities = to_original(mean[None, None], self.original_size, self.reshaped_size)[0, 0].clamp(0, 1)
        probabilities = probabilities.cpu().numpy().astype(np.float32)
        uncertainty = None
        if return_uncertainty and (len(views) > 1 or triangulation):  # one estimate has no spread to report
            uncertainty = to_original(spread[None, None], self.original_size, self.reshaped_size)[0, 0]
            uncertainty = uncertainty.clamp_min(0).cpu().numpy().astype(np.float32)
        prediction = Prediction(probabilities, uncertainty, views=[v.name for v in views],
                                has_positive_click=has_positive_click(clicks), encoded_views=encoded_views)
        prediction.score = mask_score(probabilities, prediction.mask())
        prediction.seconds = time.perf_counter() - start
        return prediction

    def _triangulate(
        self,
        emb: SignedClickImageEmbeddings,
        view: View,
        direct: torch.Tensor,
        num_samples: int,
        sampling: str,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Triangulated estimate in the view's frame: 2K single-click decodes f+(y_i), f−(y_i), `points_per_batch` at a
        time, folded into running sums so that memory does not grow with K."""
        valid = view.apply_image(self._valid.float(), mode="nearest")[0, 0] > 0.5
        aux, weights = sample_auxiliary_pixels(direct.cpu(), valid.cpu(), num_samples, sampling, generator)
        aux, weights = aux.to(self.device), weights.to(self.device)
        running = RunningTriangulation(direct)
        chunk = max(1, self.points_per_batch // 2)
        for start in range(0, aux.shape[0], chunk):
            part = aux[start : start + chunk]
            k = part.shape[0]
            labels = torch.cat([torch.ones(k), -torch.ones(k)]).long().to(self.device)[:, None]
            maps = self._decode_batched(emb, torch.cat([part, part])[:, None, :], labels)
            running.add(part, weights[start : start + chunk], maps[:k], maps[k:])
        return running.result()

    @torch.inference_mode()
    def predict_single_clicks(self, points, sign: int = 1, tta: int | str | list[str] | None = 1) -> np.ndarray:
        """K independent single-click predictions, (K, H, W) float32: f+(x_i) for sign +1, f−(x_i) for −1.

        `points` is (K, 2) as (x, y) in original pixels; the K decodes run as batches on each cached view.
        """
        self._require_image()
        height, width = self.original_size
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        validate_clicks([(float(x), float(y), sign) for x, y in points], width, height)
        views = resolve_views(tta)
        size = self.processor.size
        input_points = self.processor.points_to_input(torch.from_numpy(points).to(self.device), self.original_size,
                                                      self.reshaped_size)
        labels = torch.full((points.shape[0], 1), int(sign), dtype=torch.long, device=self.device)
        embeddings = self.view_embeddings(views)
        total = None
        for view in views:
            maps = self._decode_batched(embeddings[view.name], view.apply_points(input_points, size)[:, None], labels)
            maps = view.invert_map(maps, size)
            total = maps if total is None else total + maps
        mean = (total / len(views))[:, None]
        out = self.processor.map_to_original(mean, self.original_size, self.reshaped_size)[:, 0]
        return out.clamp(0, 1).cpu().numpy().astype(np.float32)
