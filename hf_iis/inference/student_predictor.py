"""`SignedClickStudentPredictor`: the teacher predictor's API on the feature-space student.

    predictor = SignedClickStudentPredictor.from_pretrained(folder)
    predictor.set_image(image)                          # φ and u computed lazily, once per TTA view
    predictor.predict([(x, y, 1), (x2, y2, -1)], tta=4, triangulation=1).probabilities

Per view, a click set costs sampling φ at the clicks and one (P x D) @ (D x h·w) product; the click maps combine by
naive Bayes (`SignedClickStudentModel.combine_clicks`), are upsampled in logit space from the stride-s grid to the
input, mapped back from the view and averaged over views (`hf_iis.scaling.tta`). `triangulation=K` with any K ≥ 1
switches
on the exact feature-space estimator (`hf_iis.models.student.feature_triangulation`): every pixel of the auxiliary
grid is used,
so K itself (and `seed`) do not matter; it is the K → ∞ limit of the teacher's sampled estimator. `seed` is still
checked as the teacher checks it, so that one call works on either predictor. On an image whose short side resizes
to a few grid cells, the auxiliary grid is made finer until it holds a pixel of the image. Its matrices
(8·|Y|·h·w bytes per view: 82 MB at 320 px, stride 4, auxiliary stride 8) are cached per view within
`triangulation_cache_mb` (default 384: the four views of tta=4); views beyond it are recomputed at every call.

`prev_mask` (or `prev_logits`) is validated and, with naive Bayes, not used: that multi-click map is a function of
the clicks alone, so the previous map carries no information it lacks. A student with the learned click rule
(`config.click_rule="learned"`) reads it, averaged over the grid's cells of each view, as it was trained to.
SAM's `input_points` / `input_labels`
work as in the teacher's predictor; so do `device=` / `dtype=` in `from_pretrained` and the lock (`view_cache.py`).
As in the teacher, a click set without
a positive click selects nothing (empty mask, score 0) while `probabilities` keeps the model's f− map.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from ..models.student.feature_triangulation import FeatureTriangulator
from ..models.student.modeling_signed_click_student import SignedClickStudentModel, StudentImageEmbeddings
from ..scaling.conditioned_triangulation import check_triangulation_mode
from ..scaling.triangulation import check_num_auxiliary, check_sampling
from ..scaling.tta import View, combine_views, resolve_views
from ..utils.click_prompts import clicks_from_prompts
from ..utils.image_io import (
    DEFAULT_MAX_PIXELS,
    check_flag,
    check_points_per_batch,
    check_seed,
    check_threshold,
    validate_clicks,
    validate_prev_logits,
    validate_prev_mask,
)
from .click_rules import student_click_logits
from .multimask_prediction import DEFAULT_MAP_CHOICE, check_map_choice, check_map_index
from .prediction import Prediction, has_positive_click, mask_score
from .upsampling import check_upsample, upsample_to_original
from .view_cache import CachedImageViews
from .zoom import DEFAULT_MARGIN, check_zoom_options, predict_zoomed


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.logit(p.clamp(1e-6, 1 - 1e-6))


def _combine(per_view: torch.Tensor, combine: str, with_spread: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`tta.combine_views`, skipping the spread when it is not asked for (torch's std over views costs ~10 ms at
    320 x 320, ten times a cached click)."""
    if with_spread or combine not in ("probability", "logit"):
        return combine_views(per_view, combine)
    return (per_view.mean(0) if combine == "probability" else torch.sigmoid(_logit(per_view).mean(0))), None


class SignedClickStudentPredictor(CachedImageViews):
    """Caches the student's embeddings (and triangulation matrices) per (image, view); clicks are dot products."""

    def __init__(self, model: SignedClickStudentModel, image_processor: SignedClickImageProcessor | None = None,
                 points_per_batch: int = 64, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 triangulation_cache_mb: float = 384.0) -> None:
        super().__init__(model, image_processor, points_per_batch, max_pixels)
        self.triangulation_cache_bytes = int(triangulation_cache_mb * 2**20)
        self._triangulators: dict[str, tuple[StudentImageEmbeddings, FeatureTriangulator]] = {}

    @classmethod
    def from_pretrained(cls, path, *, device=None, dtype=None, **kwargs) -> SignedClickStudentPredictor:
        """Load a student checkpoint folder (or hub id); `device` / `dtype` place the model (`devices.py`)."""
        from ..checkpoint_paths import load_checkpoint

        model, processor = load_checkpoint(path, device=device, dtype=dtype)
        if not isinstance(model, SignedClickStudentModel):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a student: use hf_iis.inference.predictors."
                             f"load_predictor, which picks the predictor for either")
        return cls(model, processor, **kwargs)

    @property
    def stride(self) -> int:
        return int(self.model.config.stride)

    def _reset_image_state(self) -> None:
        self._triangulators = {}  # the pairwise matrices belong to the previous image

    # ------------------------------------------------------------------ maps
    def _to_input(self, grid_logits: torch.Tensor) -> torch.Tensor:
        """(N, h, w) grid logits -> (N, h·s, w·s) probabilities, upsampled in logit space."""
        h, w = grid_logits.shape[-2:]
        up = F.interpolate(grid_logits[:, None].float(), size=(h * self.stride, w * self.stride), mode="bilinear",
                           align_corners=False)
        return torch.sigmoid(up[:, 0])

    def _decode_batched(self, emb: StudentImageEmbeddings, points: torch.Tensor, labels: torch.Tensor,
                        prev_masks=None) -> torch.Tensor:
        """σ of N click sets' combined maps at input resolution (N, S, S), `points_per_batch` sets at a time."""
        out = []
        for start in range(0, points.shape[0], self.points_per_batch):
            stop = start + self.points_per_batch
            out.append(self._to_input(self.model.decode(emb, points[start:stop], labels[start:stop])[:, 0]))
        return torch.cat(out)

    def _triangulator(self, view: View, emb: StudentImageEmbeddings) -> FeatureTriangulator:
        cached = self._triangulators.get(view.name)
        if cached is not None and cached[0] is emb:
            return cached[1]
        valid = view.apply_image(self._valid.float(), mode="nearest")
        valid = F.avg_pool2d(valid, self.stride)[0, 0] > 0.5
        used = sum(t.matrix_bytes for _, t in self._triangulators.values() if t.cached)
        step = max(1, self.model.config.triangulation_stride // self.stride)
        while step > 1 and not bool(valid[step // 2 :: step, step // 2 :: step].any()):
            step //= 2  # a thin image: its few grid rows (or columns) fall between the auxiliary ones
        triangulator = FeatureTriangulator(self.model, emb, valid, step,
                                           max_cache_bytes=max(0, self.triangulation_cache_bytes - used))
        self._triangulators[view.name] = (emb, triangulator)
        return triangulator

    @torch.inference_mode()
    def predict(self, clicks=None, prev_mask=None, tta: int | str | list[str] | None = 1, triangulation: int = 0,
                triangulation_sampling: str = "uniform", triangulation_blend: float | None = None,
                combine: str = "probability", seed: int = 0, return_uncertainty: bool = False, *,
                prev_logits=None, threshold: float = 0.5, points_per_batch: int | None = None,
                input_points=None, input_labels=None, multimask_output: bool = False,
                triangulation_mode: str = "independent", upsample: str = "bilinear", zoom_in: bool | str = False,
                zoom_margin: float = DEFAULT_MARGIN, zoom_min_size: int | None = None,
                map_choice: str = DEFAULT_MAP_CHOICE, map_index: int | None = None) -> Prediction:
        """Probability map for one set of signed clicks [(x, y, sign), ...] in original pixels (see the module
        docstring; the arguments are the teacher predictor's: `prev_mask` / `prev_logits` are checked and read by a
        learned click rule only,
        `points_per_batch` has nothing to split for one click set, `seed` is checked and not needed,
        `multimask_output` is checked and gives the one answer the student has; `triangulation_mode` is checked and
        only "independent" runs, the form the exact feature-space estimator computes; `map_choice` is checked and
        `map_index` may be 0 or None: the student has one map)."""
        arguments = dict(locals())  # zoom_in (zoom.py): the full-image call repeated, then a crop of the photo
        zoom = check_zoom_options(zoom_in, zoom_margin, zoom_min_size)
        if zoom.mode is not False:
            return predict_zoomed(self, zoom, arguments)
        start = time.perf_counter()
        if check_triangulation_mode(triangulation_mode) != "independent" and triangulation:
            raise ValueError(f"triangulation_mode={triangulation_mode!r} decodes click sets, which a distilled "
                             "student has no decoder for; use triangulation_mode='independent' (its exact "
                             "feature-space triangulation) or the teacher")
        self._require_image()
        height, width = self.original_size
        clicks = validate_clicks(clicks_from_prompts(clicks, input_points, input_labels), width, height)
        check_seed(seed)  # the exact estimator draws nothing (module docstring)
        multimask_output = check_flag(multimask_output, "multimask_output")  # one map: its one answer
        check_map_choice(map_choice)  # one signature with the teacher's predict: the student has one map
        check_map_index(map_index, 1)
        upsample = check_upsample(upsample)  # upsampling.py, as the teacher's
        return_uncertainty = check_flag(return_uncertainty, "return_uncertainty")
        triangulation_sampling = check_sampling(triangulation_sampling)
        threshold = check_threshold(threshold)
        if points_per_batch is not None:
            check_points_per_batch(points_per_batch)
        if prev_mask is not None and prev_logits is not None:
            raise ValueError("pass prev_mask or prev_logits, not both")
        prev = validate_prev_mask(prev_mask, width, height)
        logits = None if prev_logits is None else validate_prev_logits(prev_logits, self.processor.size)
        previous = self._previous_input(prev, logits)  # None unless the learned click rule reads it
        if triangulation_blend is None:
            triangulation_blend = float(getattr(self.model.config, "triangulation_blend", 0.0))
        if not 0.0 <= float(triangulation_blend) <= 1.0:
            raise ValueError(f"triangulation_blend must be in [0, 1], got {triangulation_blend}")
        triangulation = check_num_auxiliary(triangulation)
        views = resolve_views(tta)
        points = self.processor.points_to_input(torch.tensor([[c[0], c[1]] for c in clicks], device=self.device),
                                                self.original_size, self.reshaped_size)
        labels = torch.tensor([[c[2] for c in clicks]], device=self.device)
        encoded_views = sum(view.name not in self._embeddings for view in views)
        embeddings = self.view_embeddings(views)
        with self.precision():
            mean, spread = self._combine_views(views, embeddings, points, labels, triangulation,
                                               triangulation_sampling, triangulation_blend, combine,
                                               return_uncertainty, previous)
        to_original = self.processor.map_to_original
        probabilities = upsample_to_original(self.processor, mean[None, None], self.original_size, self.reshaped_size,
                                             upsample, self._image_array)[0, 0].clamp(0, 1)
        probabilities = probabilities.cpu().numpy().astype(np.float32)
        uncertainty = None
        if return_uncertainty and (len(views) > 1 or triangulation):
            uncertainty = to_original(spread[None, None], self.original_size, self.reshaped_size)[0, 0]
            uncertainty = uncertainty.clamp_min(0).cpu().numpy().astype(np.float32)
        prediction = Prediction(probabilities, uncertainty, views=[v.name for v in views],
                                has_positive_click=has_positive_click(clicks), encoded_views=encoded_views,
                                threshold=threshold)
        prediction.score = mask_score(probabilities, prediction.mask())
        prediction.seconds = time.perf_counter() - start
        prediction.alternatives = [prediction] if multimask_output else []
        return prediction

    def _previous_input(self, prev: np.ndarray | None, logits: np.ndarray | None) -> torch.Tensor | None:
        """The previous estimate as (1, 1, S, S) probabilities in the model-input frame, for a student whose learned
        click rule reads it (`click_rule.py`); None for naive Bayes, which has no use for it (module docstring)."""
        if getattr(self.model.config, "click_rule", "naive_bayes") != "learned":
            return None
        if prev is not None:
            return self.processor.map_to_input(torch.from_numpy(prev)[None, None].float().to(self.device),
                                               self.reshaped_size)
        if logits is not None:
            return torch.sigmoid(torch.from_numpy(logits)[None, None].float().to(self.device))
        return None

    def _combine_views(self, views, embeddings, points, labels, triangulation, sampling, blend, combine,
                       return_uncertainty, previous=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`predict`'s work on checked inputs: each view's map (triangulated when asked), mapped back from the view
        and combined; (S, S) float32 mean and spread (None unless asked), in the canonical model-input frame."""
        size = self.processor.size
        per_view, spreads = [], []
        for view in views:
            emb = embeddings[view.name]
            # (1, h, w); click_rules.py: a negative click lowers, never raises
            prev_grid = None
            if previous is not None:  # the view's previous map, averaged over the grid's cells, as logits
                prev_grid = torch.logit(F.avg_pool2d(view.apply_image(previous), self.stride), eps=1e-4)
            grid = student_click_logits(self.model, emb, view.apply_points(points, size)[None], labels,
                                        prev_grid)[:, 0].float()
            if triangulation:
                direct = torch.sigmoid(grid)
                estimate, spread = self._triangulator(view, emb)(direct, sampling, return_uncertainty)
                estimate = blend * direct + (1.0 - blend) * estimate
                grid = _logit(estimate)
                if spread is not None:
                    up = F.interpolate(spread[:, None].float(), scale_factor=self.stride, mode="bilinear",
                                       align_corners=False)
                    spreads.append(view.invert_map(up[0, 0], size))
            per_view.append(view.invert_map(self._to_input(grid)[0], size))
        mean, spread = _combine(torch.stack(per_view), combine, return_uncertainty)
        if len(views) == 1 and spreads:
            spread = spreads[0]
        return mean, spread

    @torch.inference_mode()
    def predict_single_clicks(self, points, sign: int = 1, tta: int | str | list[str] | None = 1) -> np.ndarray:
        """K independent single clicks, (K, H, W) float32: f+(x_i) for sign +1, f−(x_i) for −1."""
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
            with self.precision():
                maps = self._decode_batched(embeddings[view.name], view.apply_points(input_points, size)[:, None],
                                            labels)
            maps = view.invert_map(maps, size)
            total = maps if total is None else total + maps
        mean = (total / len(views))[:, None]
        out = self.processor.map_to_original(mean, self.original_size, self.reshaped_size)[:, 0]
        return out.clamp(0, 1).cpu().numpy().astype(np.float32)
