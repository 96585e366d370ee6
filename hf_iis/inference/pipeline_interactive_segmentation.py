"""The `"interactive-segmentation"` pipeline: an image and signed clicks in, a mask and probabilities out.

    seg = pipeline("interactive-segmentation", model=folder_or_repo)
    out = seg(image, clicks=[(x, y, 1)], tta=8, triangulation=16)  # triangulation_mode="conditioned": y joins them
    out["mask"]           # PIL.Image mode "L", 0/255, same size as the input image
    out["probabilities"]  # np.ndarray float32 (H, W) in [0, 1]
    out["uncertainty"]    # np.ndarray float32 (H, W), when return_uncertainty=True and tta > 1 or triangulation > 0
    out["score"]          # float: mean probability inside the mask (probability >= threshold)
    out["encoded_views"]  # int: views whose image embedding this call computed (0: all from the cache)
    out["iou_score"]      # float: a multi-map model's predicted IoU of the answer (absent for one-map models)
    out["map_index"]      # int: which of the model's maps answered (0 for one-map models)
    seg(image, clicks=..., multimask_output=True)   # a multi-map model's S answers, best first, besides the best:
    out["masks"], out["mask_probabilities"], out["iou_scores"], out["scores"], out["map_indices"]   # lists
    seg(image, clicks=..., map_choice="click_set")  # or "first_click" (default): which map answers corrective
    seg(image, clicks=..., map_index=2)             # clicks (multimask_prediction.py); map_index forces one
    seg(image, clicks=[(x1, y1, 1), (x2, y2, -1)], prev_mask=out["probabilities"])
    seg(image, clicks=..., zoom_in="auto")   # False | True | "auto": refine on a crop of the photo (zoom.py);
    out["zoom_box"]                          # (x0, y0, x1, y1) of that crop, when the call zoomed

(x, y) = (column, row) in original-image pixels, sign +1 ("in the object") or -1 ("not in the object"). Every
keyword works in `pipeline(...)` and per call (per call wins). Repeated calls on the same image reuse its cached
embeddings, so interactive refinement only pays for the decoder.

Clicks, two spellings of the same thing (SAM's beside ours; `hf_iis.utils.click_prompts`):

    seg(image, clicks=[(x1, y1, 1), (x2, y2, -1)])                        # sign +1 in the object, -1 not
    seg(image, input_points=[[x1, y1], [x2, y2]], input_labels=[1, 0])    # SAM: label 1 positive, 0 negative

Several images, the transformers way (`pipeline_inputs.py`); each result equals the single call's:

    seg([image_1, image_2], clicks=[clicks_1, clicks_2])                  # one click list per image
    seg([image_1, image_2], clicks=[(x, y, 1)])                           # one click list for every image
    seg([{"image": image_1, "clicks": clicks_1}, ...], batch_size=8)     # dict rows
    seg(KeyDataset(ds, "image"), clicks=clicks_per_row)                   # a `datasets` column: an iterator
    seg(ds)                                                               # rows with "image" and "clicks" columns

`batch_size` groups items for the DataLoader as in every transformers pipeline; each image is still encoded and
decoded on its own (images differ in size and clicks), so the results do not depend on it.

Devices and precision: `pipeline(..., device="cuda", dtype=torch.bfloat16)` (or `torch_dtype=`, or
`hf_iis.load_pipeline(path, device=..., dtype=...)`); a device the machine lacks is one ValueError naming those it
has. Reduced precision runs under autocast (`devices.py`), maps come back float32.

Threads: one pipeline object may be called from several threads; calls take turns on its predictor (a lock around
each image's set_image + predict, `view_cache.py`), so each result is the serial one. For parallel throughput, give
each thread its own pipeline.

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
from ..scaling.conditioned_triangulation import check_triangulation_mode
from ..scaling.triangulation import check_num_auxiliary, check_sampling
from ..scaling.tta import resolve_views
from ..utils.click_prompts import clicks_from_prompts
from ..utils.image_io import (
    DEFAULT_MAX_PIXELS,
    check_flag,
    check_points_per_batch,
    check_seed,
    check_threshold,
    load_image,
    validate_clicks,
    validate_prev_mask,
)
from .devices import check_device, check_dtype
from .multimask_prediction import check_map_choice, check_map_index, num_mask_outputs
from .pipeline_inputs import is_batch, split_batch, with_entries
from .predictors import predictor_for
from .upsampling import check_upsample
from .zoom import check_zoom_options

_FORWARD_KEYS = (
    "tta",
    "triangulation",
    "triangulation_sampling",
    "triangulation_blend",
    "triangulation_mode",
    "combine",
    "seed",
    "return_uncertainty",
    "multimask_output",
    "upsample",
    "zoom_in",
    "zoom_margin",
    "zoom_min_size",
    "map_choice",
    "map_index",
)


def check_scaling_options(options: dict) -> None:
    """The checks `SignedClickPredictor.predict` makes on the scaling options, made where they are given (in
    `pipeline(...)` or per call), so that `pipeline(..., tta=0)` is refused at construction, not at the first call."""
    if "tta" in options:
        resolve_views(options["tta"])
    if "triangulation" in options:
        check_num_auxiliary(options["triangulation"])
    if "triangulation_sampling" in options:
        check_sampling(options["triangulation_sampling"])
    if "triangulation_mode" in options:
        check_triangulation_mode(options["triangulation_mode"])
    if "seed" in options:
        check_seed(options["seed"])
    if "upsample" in options:
        check_upsample(options["upsample"])
    check_zoom_options(**{key: options[key] for key in ("zoom_in", "zoom_margin", "zoom_min_size") if key in options})
    if "map_choice" in options:
        check_map_choice(options["map_choice"])
    for flag in ("return_uncertainty", "multimask_output"):
        if flag in options:
            check_flag(options[flag], flag)
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
        if kwargs.get("device") is not None:  # one line naming the devices there are, not torch's CUDA assertion
            kwargs["device"] = check_device(kwargs["device"])
        dtype = check_dtype(kwargs.get("dtype", kwargs.get("torch_dtype")))
        super().__init__(*args, **kwargs)
        if dtype is not None and self.model.dtype != dtype:  # a model instance: transformers only casts what it loads
            self.model.to(dtype)
        self.max_pixels = max_pixels
        self.predictor = predictor_for(self.model, self.image_processor, max_pixels=max_pixels)  # teacher or student

    def _sanitize_parameters(
        self,
        clicks=None,
        prev_mask=None,
        threshold: float | None = None,
        points_per_batch: int | None = None,
        input_points=None,
        input_labels=None,
        **kwargs,
    ):
        unknown = set(kwargs) - set(_FORWARD_KEYS)
        if unknown:
            raise ValueError(f"unknown argument(s) {sorted(unknown)}; accepted: clicks, input_points, input_labels, "
                             f"prev_mask, threshold, points_per_batch, {', '.join(_FORWARD_KEYS)}")
        given = {"clicks": clicks, "prev_mask": prev_mask, "input_points": input_points, "input_labels": input_labels}
        preprocess = {key: value for key, value in given.items() if value is not None}
        forward = {key: value for key, value in kwargs.items() if value is not None}
        check_scaling_options(forward)
        if "map_index" in forward:  # against this model's maps (0 only for one-map models and the student)
            check_map_index(forward["map_index"], num_mask_outputs(self.model))
        if points_per_batch is not None:
            forward["points_per_batch"] = check_points_per_batch(points_per_batch)  # an argument of this call only
        if threshold is not None:  # the predictor computes the mask's score once, at this threshold
            forward["threshold"] = check_threshold(threshold)
        return preprocess, forward, {}

    def __call__(self, image, clicks=None, **kwargs):
        """Segment `image` (path, PIL image or (H, W, 3) uint8 array, or a dict row {"image": ..., "clicks": ...})
        from `clicks` [(x, y, sign), ...] (or SAM's `input_points` / `input_labels`). A list of images or rows gives
        a list of results; a dataset or generator gives an iterator of them (module docstring)."""
        if clicks is not None:
            kwargs["clicks"] = clicks
        if is_batch(image):
            if isinstance(image, (list, tuple)) and len(image) == 0:
                return []
            image = split_batch(image, kwargs)
        return super().__call__(image, **kwargs)

    def preprocess(self, image, clicks=None, prev_mask=None, input_points=None, input_labels=None):
        """Load the image (its checks and the pixel budget included) and check the clicks and the previous mask
        against it; `image` may be a dict row holding them."""
        given = {"clicks": clicks, "prev_mask": prev_mask, "input_points": input_points, "input_labels": input_labels}
        row = with_entries(image, {key: value for key, value in given.items() if value is not None})
        array = load_image(row["image"], self.max_pixels)
        height, width = array.shape[:2]
        clicks = clicks_from_prompts(*(row.get(key) for key in ("clicks", "input_points", "input_labels")))
        # checked here, before any model work, and as plain lists and arrays that a DataLoader batch can hold
        return {"image": array, "clicks": validate_clicks(clicks, width, height),
                "prev_mask": validate_prev_mask(row.get("prev_mask"), width, height)}

    def _forward(self, model_inputs, **forward_params):
        if isinstance(model_inputs["image"], list):  # batch_size > 1: the DataLoader's items, key by key
            keys = list(model_inputs)
            items = [dict(zip(keys, values)) for values in zip(*(model_inputs[key] for key in keys))]
            return {"prediction": [self._predict(item, forward_params) for item in items]}
        return {"prediction": self._predict(model_inputs, forward_params)}

    def _predict(self, item: dict, forward_params: dict):
        with self.predictor.lock:  # the predictor holds one current image: one call at a time (view_cache.py)
            self.predictor.set_loaded_image(item["image"])  # already loaded and checked by preprocess
            return self.predictor.predict(item["clicks"], item["prev_mask"], **forward_params)

    def postprocess(self, model_outputs):
        prediction = model_outputs["prediction"]
        inside = prediction.mask()  # at the call's threshold; empty without a positive click
        mask = Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), mode="L")
        out = {"mask": mask, "probabilities": prediction.probabilities, "score": prediction.score}
        if prediction.uncertainty is not None:
            out["uncertainty"] = prediction.uncertainty
        if prediction.predicted_iou is not None:
            out["iou_score"] = prediction.predicted_iou
        if prediction.alternatives:  # multimask_output=True: every map, best first (SAM's multimask_output)
            out["masks"] = [Image.fromarray(np.where(a.mask(), 255, 0).astype(np.uint8), mode="L")
                            for a in prediction.alternatives]
            out["mask_probabilities"] = [a.probabilities for a in prediction.alternatives]
            out["iou_scores"] = [a.predicted_iou for a in prediction.alternatives]
            out["scores"] = [a.score for a in prediction.alternatives]
            out["map_indices"] = [a.map_index for a in prediction.alternatives]
        out["map_index"] = prediction.map_index  # the map that answered: map_index= keeps the next clicks on it
        out["views"] = prediction.views
        out["seconds"] = prediction.seconds
        out["encoded_views"] = prediction.encoded_views
        if prediction.zoom_box is not None:  # zoom_in: the crop (x0, y0, x1, y1) refined inside (zoom.py)
            out["zoom_box"] = prediction.zoom_box
        return out
