"""`SignedClickPredictor`: encode an image once per TTA view, then decode many click sets cheaply.

    predictor = SignedClickPredictor.from_pretrained(path)       # or SignedClickPredictor(model, image_processor)
    predictor.set_image(image)                                   # cheap when the image is unchanged
    result = predictor.predict([(x, y, +1)], tta=8, triangulation=16)
    result.probabilities                                         # (H, W) float32 at the original resolution
    predictor.predict(more_clicks, prev_logits=result.input_logits)   # refine without leaving the model frame

Two levels, as segment-anything's `SamPredictor`: `predict` checks one click set in original pixels (the one place
user input is checked, once per call), maps it into the model-input frame, calls `predict_torch` and maps the result
back (probabilities, uncertainty, score); `predict_torch` decodes B click sets, tensors in the model-input frame
(label 0 pads), together on the cached views. The estimates combine in `predictor_views.combine_view_estimates`:
every view's direct estimate (one batched decode), optionally refined by probabilistic triangulation
(triangulation.py) on the same cached embedding, mapped back to the canonical frame, and the views averaged.

SAM's point prompts work too: `predict(input_points=[[x, y], ...], input_labels=[1, 0, ...])` is
`predict([(x, y, 1), (x2, y2, -1), ...])` (label 1 in the object, 0 not; `hf_iis.utils.click_prompts`).

Threads: `set_image` + `predict` form one use of the predictor's current image; threads sharing a predictor hold
`predictor.lock` around the pair (`view_cache.py`), as the pipeline does. Long triangulations (thousands of
single-click decodes: `triangulation=4096` is 8192 decodes per view, about 7 minutes per view at 320 px on one CPU
thread, ~55 ms each) show a progress bar (transformers' `logging.tqdm`, off with
`transformers.utils.logging.disable_progress_bar()`) from `PROGRESS_MIN_DECODES` decodes on.

A click set with no positive click selects nothing: its mask is empty and its score 0.0 at every setting (as in any
click tool before the first "this is the object" click), while `probabilities` still holds the model's f−(I, x), "some
region that avoids these pixels", which is what `prev_mask` should carry into the next click.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..scaling.conditioned_triangulation import check_triangulation_mode
from ..scaling.triangulation import check_num_auxiliary, check_sampling
from ..scaling.tta import resolve_views
from ..utils.click_prompts import clicks_from_prompts
from ..utils.image_io import (
    check_flag,
    check_points_per_batch,
    check_seed,
    check_threshold,
    validate_clicks,
    validate_prev_logits,
    validate_prev_mask,
)
from .multimask_prediction import (
    DEFAULT_MAP_CHOICE,
    IDENTITY,
    check_map_choice,
    check_map_index,
    first_click_cache,
    map_order,
    num_mask_outputs,
    ranking_ious,
    run_by_chosen_map,
)
from .prediction import Prediction, has_positive_click, mask_score
from .predictor_views import (
    InputFramePrediction,
    check_click_tensors,
    combine_view_estimates,
    previous_probabilities,
)
from .upsampling import check_upsample, upsample_to_original
from .view_cache import CachedImageViews
from .zoom import DEFAULT_MARGIN, check_zoom_options, predict_zoomed

__all__ = ["Prediction", "SignedClickPredictor", "has_positive_click", "mask_score"]

PROGRESS_MIN_DECODES = 1024
"""A call whose triangulation needs this many single-click decodes or more (views x sets x 2K) shows a progress bar:
about a minute on a CPU at 320 px, where a call without feedback looks hung."""


def _progress_bar(total: int):
    """A transformers progress bar over `total` decodes (None below `PROGRESS_MIN_DECODES`)."""
    if total < PROGRESS_MIN_DECODES:
        return None
    from transformers.utils import logging as hf_logging

    return hf_logging.tqdm(total=total, desc="triangulation", unit="decode", leave=False)


class SignedClickPredictor(CachedImageViews):
    """Caches image embeddings per (image, view) (`CachedImageViews`); decodes click sets, triangulation pixels and
    views in batches.

    Args: model, image_processor (default: the model config's), points_per_batch (click sets per decoder call),
    max_pixels (the image budget).
    """

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, device=None, dtype=None,
                        **kwargs) -> SignedClickPredictor:
        """Load a checkpoint folder (safetensors + config + preprocessor config); None = the embedded default.
        `device` ('cpu', 'cuda', 0, ...) and `dtype` (torch.bfloat16, 'float16', ...) place the model
        (`devices.py`); the other keywords go to the constructor (points_per_batch, max_pixels)."""
        from ..checkpoint_paths import load_checkpoint
        from ..models.kinds import is_student

        model, processor = load_checkpoint(path, device=device, dtype=dtype)
        if is_student(model):
            raise ValueError(f"{path} holds a distilled student ({type(model).__name__}), which this decoder-based "
                             "predictor cannot run: use hf_iis.inference.predictors.load_predictor (either kind) or "
                             "SignedClickStudentPredictor")
        return cls(model, processor, **kwargs)

    def _reset_image_state(self) -> None:
        first_click_cache(self).clear()  # the first clicks' predicted IoUs belong to the previous image

    # ---------------------------------------------------------------- tensors in the model-input frame
    @torch.inference_mode()
    def predict_torch(
        self,
        points: torch.Tensor,
        labels: torch.Tensor,
        prev_logits: torch.Tensor | None = None,
        *,
        prev_masks: torch.Tensor | None = None,
        tta: int | str | list[str] | None = 1,
        triangulation: int = 0,
        triangulation_sampling: str = "stratified",
        triangulation_blend: float | None = None,
        combine: str = "probability",
        seed: int = 0,
        return_uncertainty: bool = False,
        points_per_batch: int | None = None,
        map_index: int | None = None,
        triangulation_mode: str = "independent",
        map_choice: str = DEFAULT_MAP_CHOICE,
    ) -> InputFramePrediction:
        """Estimates for B click sets on the current image, all in the canonical model-input frame (S x S).

        Args:
            points: (B, N, 2) (x, y) model-input pixels (`processor.points_to_input`). labels: (B, N) +1 / −1, and
                0 for padding, so that sets of different lengths share one tensor; every set needs one click.
            prev_logits: optional (B, 1, S, S) logits of previous estimates (`.logits`, `Prediction.input_logits`);
                or `prev_masks`, (B, 1, S, S) probabilities. The padding is zeroed, as `map_to_input` pads.
            tta, triangulation, ...: as in `predict`. Each set's triangulation sampler starts from `seed`, so a
                set's result does not depend on the other sets in the batch.
            points_per_batch: click sets per decoder call (default: the predictor's); results do not depend on it.
            map_index: which of a multi-map model's maps to run (None: each set's map by `map_choice`,
                "first_click" or "click_set", as in `predict`; `multimask_prediction.py`).
        """
        self._require_image()
        map_choice, map_index = check_map_choice(map_choice), check_map_index(map_index, num_mask_outputs(self.model))
        batch_size = check_points_per_batch(self.points_per_batch if points_per_batch is None else points_per_batch)
        seed, return_uncertainty = check_seed(seed), check_flag(return_uncertainty, "return_uncertainty")
        triangulation_sampling = check_sampling(triangulation_sampling)
        triangulation_mode = check_triangulation_mode(triangulation_mode)
        if triangulation_blend is None:
            triangulation_blend = float(getattr(self.model.config, "triangulation_blend", 0.0))
        if not 0.0 <= float(triangulation_blend) <= 1.0:
            raise ValueError(f"triangulation_blend must be in [0, 1], got {triangulation_blend}")
        num_aux, views, size = check_num_auxiliary(triangulation), resolve_views(tta), self.processor.size
        points, labels = check_click_tensors(points, labels, self.device)
        prev = previous_probabilities(prev_logits, prev_masks, points.shape[0], self._valid)
        encoded_views = sum(view.name not in self._embeddings for view in views)
        embeddings = self.view_embeddings(views)
        generators = [torch.Generator().manual_seed(seed) for _ in range(points.shape[0])]
        bar = _progress_bar(points.shape[0] * len(views) * 2 * num_aux)
        def run(indices, k):
            subset = (points, labels) if indices is None else (points[indices], labels[indices])
            sub_prev = prev if prev is None or indices is None else prev[indices]
            sub_generators = generators if indices is None else [generators[i] for i in indices.tolist()]
            return combine_view_estimates(self.model, self._valid, *subset, sub_prev, views, embeddings, size,
                                          batch_size, num_aux, triangulation_sampling, triangulation_blend,
                                          sub_generators, combine, return_uncertainty, encoded_views,
                                          None if bar is None else bar.update, k, triangulation_mode)

        try:
            with self.precision():
                if map_index is None and num_mask_outputs(self.model) > 1:
                    return run_by_chosen_map(ranking_ious(self, points, labels, prev, map_choice).argmax(1), run)
                return run(None, map_index)
        finally:
            if bar is not None:
                bar.close()

    # ---------------------------------------------------------------- original pixels
    @torch.inference_mode()
    def predict(
        self,
        clicks=None,
        prev_mask=None,
        tta: int | str | list[str] | None = 1,
        triangulation: int = 0,
        triangulation_sampling: str = "stratified",
        triangulation_blend: float | None = None,
        combine: str = "probability",
        seed: int = 0,
        return_uncertainty: bool = False,
        *,
        prev_logits=None,
        threshold: float = 0.5,
        points_per_batch: int | None = None,
        input_points=None,
        input_labels=None,
        multimask_output: bool = False,
        triangulation_mode: str = "independent",
        upsample: str = "guided",
        zoom_in: bool | str = "auto",
        zoom_margin: float = DEFAULT_MARGIN,
        zoom_min_size: int | None = None,
        map_choice: str = DEFAULT_MAP_CHOICE,
        map_index: int | None = None,
    ) -> Prediction:
        """Probability map for one set of signed clicks [(x, y, sign), ...] in original pixels.

        Args:
            input_points, input_labels: SAM's form of the clicks, instead of `clicks`: [[x, y], ...] and [1, 0, ...]
                (1 in the object, 0 not; without labels every point is positive).
            prev_mask: optional (H, W) previous probabilities, fed back for multi-click refinement; or
                `prev_logits`, a previous `Prediction.input_logits` (model-input frame, no resize on the way).
            tta: number of views (first n of `tta.VIEW_ORDER`) or view names.
            triangulation: K auxiliary pixels per view (0 = off); 2K extra single-click decodes per view.
            triangulation_sampling: "uniform", "stratified" or "foreground" (see `triangulation`).
            triangulation_blend: weight α of the direct estimate (None = the checkpoint's
                `config.triangulation_blend`).
            triangulation_mode: "independent" (the seed's form: single clicks at the auxiliary pixels y) or
                "conditioned" (the click set plus y; `scaling/conditioned_triangulation.py`); 2K decodes either way.
            combine: "probability" (mean of probabilities) or "logit" (mean of logits) across views.
            threshold: of the mask and the score. points_per_batch: click sets per decoder call (memory only).
            map_choice: which map of a multi-map model answers: "first_click" (default, as SAM: the map the IoU
                head ranks best for the set's first click alone, so corrective clicks stay on it) or "click_set"
                (the best-predicted map for the whole current set, chosen anew at each click);
                `multimask_prediction.py`. `map_index`: force map k (0-based; None: by `map_choice`).
            multimask_output: with a multi-map model, run every map through the same scaling and return them all in
                `alternatives`, in the order of `map_choice`'s ranking (a forced `map_index` first), each with its
                `predicted_iou` for the whole set; False: the chosen map only. A one-map model has one answer.
            upsample: "guided" (default: snapped to the photo's edges, chosen on the validation split,
                docs/results_zoom.md) or "bilinear": how the map reaches the photo's size (`upsampling.py`).
            zoom_in: "auto" (default: from the second click on, and a small object's first click; chosen on the
                validation split, docs/results_zoom.md), True or False: refine inside a crop of the photo around the
                estimate, expanded by `zoom_margin` per side and at least `zoom_min_size` px (None: the input size).
        """
        arguments = dict(locals())  # the call as given, for the zoomed path to repeat without zoom
        zoom = check_zoom_options(zoom_in, zoom_margin, zoom_min_size)
        if zoom.mode is not False:
            return predict_zoomed(self, zoom, arguments)
        start = time.perf_counter()
        self._require_image()
        height, width = self.original_size
        clicks = validate_clicks(clicks_from_prompts(clicks, input_points, input_labels), width, height)
        prev = validate_prev_mask(prev_mask, width, height)
        logits = validate_prev_logits(prev_logits, self.processor.size)
        if prev is not None and logits is not None:
            raise ValueError("pass prev_mask or prev_logits, not both")
        threshold = check_threshold(threshold)
        multimask_output, upsample = check_flag(multimask_output, "multimask_output"), check_upsample(upsample)
        triangulation_mode = check_triangulation_mode(triangulation_mode)  # before a multi-map model's IoU read
        map_choice, map_index = check_map_choice(map_choice), check_map_index(map_index, num_mask_outputs(self.model))
        points = self.processor.points_to_input(
            torch.tensor([[c[0], c[1]] for c in clicks], device=self.device), self.original_size, self.reshaped_size
        )
        labels = torch.tensor([c[2] for c in clicks], device=self.device)
        if prev is not None:
            prev = self.processor.map_to_input(torch.from_numpy(prev)[None, None].to(self.device), self.reshaped_size)
        logits = None if logits is None else torch.from_numpy(logits)[None, None]
        settings = dict(tta=tta, triangulation=triangulation, triangulation_sampling=triangulation_sampling,
                        triangulation_blend=triangulation_blend, combine=combine, seed=seed,
                        return_uncertainty=return_uncertainty, points_per_batch=points_per_batch,
                        triangulation_mode=triangulation_mode)
        if num_mask_outputs(self.model) == 1:
            out = self.predict_torch(points[None], labels[None], logits, prev_masks=prev, **settings)
            prediction = self._prediction(out, clicks, threshold, start, upsample=upsample)
            prediction.alternatives = [prediction] if multimask_output else []  # its one answer
            return prediction
        # a multi-map model: the IoU head on the plain view chooses (multimask_prediction.py)
        encodes_plain_view = IDENTITY.name not in self._embeddings
        with self.precision():
            order, ious = map_order(self, points[None], labels[None].long(),
                                    previous_probabilities(logits, prev, 1, self._valid), map_choice, map_index,
                                    multimask_output)
        answers = []
        for k in order:
            out = self.predict_torch(points[None], labels[None], logits, prev_masks=prev, map_index=k, **settings)
            answers.append(self._prediction(out, clicks, threshold, start, float(ious[k]), upsample, k))
        answers[0].encoded_views += int(encodes_plain_view)  # the IoU head's read encoded it before predict_torch
        answers[0].alternatives = answers if multimask_output else []
        return answers[0]

    def _prediction(self, out: InputFramePrediction, clicks, threshold: float, start: float,
                    predicted_iou: float | None = None, upsample: str = "bilinear", map_index: int = 0) -> Prediction:
        """`predict`'s result at the original resolution from one click set's model-frame estimate."""
        probabilities = self._to_original(out.probabilities, upsample).clamp(0, 1)[0].cpu().numpy()
        uncertainty = None
        if out.uncertainty is not None:
            uncertainty = self._to_original(out.uncertainty).clamp_min(0)[0].cpu().numpy()
        prediction = Prediction(probabilities, uncertainty, views=out.views, has_positive_click=has_positive_click(
            clicks), encoded_views=out.encoded_views, input_logits=out.logits[0].cpu().numpy(), threshold=threshold,
            predicted_iou=predicted_iou, map_index=map_index)
        prediction.score = mask_score(probabilities, prediction.mask())
        prediction.seconds = time.perf_counter() - start
        return prediction

    def _to_original(self, maps: torch.Tensor, upsample: str = "bilinear") -> torch.Tensor:
        """(B, S, S) model-input maps as (B, H, W) float32 maps at the original resolution."""
        return upsample_to_original(self.processor, maps[:, None], self.original_size, self.reshaped_size, upsample,
                                    self._image_array)[:, 0]

    @torch.inference_mode()
    def predict_single_clicks(self, points, sign: int = 1, tta: int | str | list[str] | None = 1,
                              points_per_batch: int | None = None) -> np.ndarray:
        """K independent single-click predictions, (K, H, W) float32: f+(x_i) for sign +1, f−(x_i) for −1.

        `points` is (K, 2) as (x, y) in original pixels; the K decodes run as batches on each cached view.
        """
        self._require_image()
        height, width = self.original_size
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        validate_clicks([(float(x), float(y), sign) for x, y in points], width, height)
        input_points = self.processor.points_to_input(torch.from_numpy(points).to(self.device), self.original_size,
                                                      self.reshaped_size)
        labels = torch.full((points.shape[0], 1), int(sign), dtype=torch.long, device=self.device)
        out = self.predict_torch(input_points[:, None], labels, tta=tta, points_per_batch=points_per_batch)
        return self._to_original(out.probabilities).clamp(0, 1).cpu().numpy().astype(np.float32)
