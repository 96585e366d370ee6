"""The `"interactive-segmentation"` pipeline: an image and signed clicks in, a mask and probabilities out.

    seg = pipeline("interactive-segmentation", model=folder_or_repo)
    out = seg(image, clicks=[(x, y, 1)], tta=8, triangulation=16)
    out["mask"]           # PIL.Image mode "L", 0/255, same size as the input image
    out["probabilities"]  # np.ndarray float32 (H, W) in [0, 1]
    out["uncertainty"]    # np.ndarray float32 (H, W), when return_uncertainty=True and tta > 1 or triangulation > 0
    out["score"]          # float: mean probability inside the mask (probability >= threshold)
    out["encoded_views"]  # int: views whose image embedding this call computed (0: all from the cache)
    seg(image, clicks=[(x1, y1, 1), (x2, y2, -1)], prev_mask=out["probabilities"])

(x, y) = (column, row) in original-image pixels, sign +1 ("in the object") or -1 ("not in the object"). Every
keyword works in `pipeline(...)` and per call (per call wins). Repeated calls on the same image reuse its cached
embeddings, so interactive refinement only pays for the decoder.

A click set with no positive click selects nothing: `mask` is empty and `score` is 0.0 at every setting (any `tta`,
`triangulation` or `threshold`), as in any click tool before the first "this is the object" click. `probabilities`
still holds the model's map for the negative clicks alone, f−(I, x): "some region that avoids x", low everywhere it
is sure; pass it as `prev_mask` with the next clicks as usual.
"""

from __future__ import annotations

import numbers

import numpy as np
from PIL import Image
from transformers import AutoModel, Pipeline

from ..checkpoint_paths import quiet_default_loading
from ..scaling.triangulation import SAMPLINGS, check_num_auxiliary
from ..scaling.tta import resolve_views
from ..utils.image_io import DEFAULT_MAX_PIXELS, check_points_per_batch, check_threshold, load_image
from .predictors import predictor_for

_FORWARD_KEYS = (
    "tta",
    "triangulation",
    "triangulation_sampling",
    "triangulation_blend",
    "combine",
    "seed",
    "return_uncertainty",
)


def check_scaling_options(options: dict) -> None:
    """The checks `SignedClickPredictor.predict` makes on the scaling options, made where they are given (in
    `pipeline(...)` or per call), so that `pipeline(..., tta=0)` is refused at construction, not at the first call."""
    if "tta" in options:
        resolve_views(options["tta"])
    if "triangulation" in options:
        check_num_auxiliary(options["triangulation"])
    if "triangulation_sampling" in options and options["triangulation_sampling"] not in SAMPLINGS:
        raise ValueError(f"unknown triangulation sampling {options['triangulation_sampling']!r}; use one of "
                         f"{SAMPLINGS}")
    if "triangulation_blend" in options:
        value = options["triangulation_blend"]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(f"triangulation_blend must be in [0, 1], got {value!r}")
    if "combine" in options and options["combine"] not in ("probability", "logit"):
        raise ValueError(f"unknown TTA combine mode {options['combine']!r}; use 'probability' or 'logit'")


class CheckedAutoModel(AutoModel):
    """`AutoModel` for `pipeline("interactive-segmentation", model=<folder or repo>)`: a checkpoint whose weights
    cannot be read (a truncated `model.safetensors`) is a ValueError naming it, not a raw `SafetensorError`.

    transformers' pipeline() reports it as "Could not load model <checkpoint> ...", the cause below. Registered as
    the task's model class (hf_iis/__init__.py); saved pipelines still name `AutoModel`.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        from safetensors import SafetensorError

        try:
            with quiet_default_loading(pretrained_model_name_or_path):  # no weight-loading bar for the default
                return AutoModel.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except (SafetensorError, KeyError, EOFError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"cannot load checkpoint {pretrained_model_name_or_path}: {first_line}") from error


class InteractiveSegmentationPipeline(Pipeline):
    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, max_pixels: int | None = DEFAULT_MAX_PIXELS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_pixels = max_pixels
        self.predictor = predictor_for(self.model, self.image_processor, max_pixels=max_pixels)  # teacher or student

    def _sanitize_parameters(
        self,
        clicks=None,
        prev_mask=None,
        threshold: float | None = None,
        points_per_batch: int | None = None,
        **kwargs,
    ):
        unknown = set(kwargs) - set(_FORWARD_KEYS)
        if unknown:
            raise ValueError(f"unknown argument(s) {sorted(unknown)}; accepted: clicks, prev_mask, threshold, "
                             f"points_per_batch, {', '.join(_FORWARD_KEYS)}")
        preprocess = {}
        if clicks is not None:
            preprocess["clicks"] = clicks
        if prev_mask is not None:
            preprocess["prev_mask"] = prev_mask
        forward = {key: value for key, value in kwargs.items() if value is not None}
        check_scaling_options(forward)
        if points_per_batch is not None:
            forward["points_per_batch"] = check_points_per_batch(points_per_batch)  # an argument of this call only
        if threshold is not None:  # the predictor computes the mask's score once, at this threshold
            forward["threshold"] = check_threshold(threshold)
        return preprocess, forward, {}

    def __call__(self, image, clicks=None, **kwargs):
        """Segment `image` (path, PIL image or (H, W, 3) uint8 array) from `clicks` [(x, y, sign), ...]."""
        if isinstance(image, (list, tuple)) and image and not isinstance(image[0], (int, float)):
            raise ValueError("pass one image per call: interactive segmentation works on one image at a time")
        if clicks is not None:
            kwargs["clicks"] = clicks
        return super().__call__(image, **kwargs)

    def preprocess(self, image, clicks=None, prev_mask=None):
        """Load the image (its checks and the pixel budget included); the clicks and the previous mask go on as
        given: the predictor checks them against the image, once per call."""
        return {"image": load_image(image, self.max_pixels), "clicks": clicks, "prev_mask": prev_mask}

    def _forward(self, model_inputs, **forward_params):
        self.predictor.set_loaded_image(model_inputs["image"])  # already loaded and checked by preprocess
        prediction = self.predictor.predict(model_inputs["clicks"], model_inputs["prev_mask"], **forward_params)
        return {"prediction": prediction}

    def postprocess(self, model_outputs):
        prediction = model_outputs["prediction"]
        inside = prediction.mask()  # at the call's threshold; empty without a positive click
        mask = Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), mode="L")
        out = {"mask": mask, "probabilities": prediction.probabilities, "score": prediction.score}
        if prediction.uncertainty is not None:
            out["uncertainty"] = prediction.uncertainty
        out["views"] = prediction.views
        out["seconds"] = prediction.seconds
        out["encoded_views"] = prediction.encoded_views
        return out
