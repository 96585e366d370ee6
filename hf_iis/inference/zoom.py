"""`zoom_in`: refine a prediction on a crop of the original photo around it (the geometry: `scaling/zoom_geometry.py`).

    predictor.predict(clicks, prev_mask, zoom_in="auto")     # False (default) | True | "auto"

Steps of one call with zoom on either predictor (teacher or student; they share `predict`'s signature):
1. the full-image estimate, exactly the call without zoom (its TTA views, triangulation, map choice);
2. the crop box: the estimate (≥ threshold) ∪ the positive clicks, expanded by `zoom_margin` on each side and kept at
   least `zoom_min_size` (None: the model's input size), inside the photo;
3. when zoom applies (`zoom_applies`), the crop of the *original* photo goes through a second predictor of the same
   class on the same model, which caches its encodings as the predictor caches the photo's; the clicks (and the
   previous mask) are mapped into the crop and the same settings (TTA views, triangulation) run there, so zoom
   composes with flips and triangulation; a multi-map model's crop runs the map the full-image estimate chose (its
   `map_index`, passed explicitly: the crop does not choose again in its own frame), and with `multimask_output`
   the crop's answers follow the full image's order;
4. the crop's probabilities replace the full-image estimate inside the box (`paste`), the full-image estimate stays
   outside.

"auto" zooms from the second click on (corrective clicks, RITM's ZoomIn rule), and on the first click only when the
object is small: its crop would show it at least `AUTO_FIRST_CLICK_GAIN` times larger than the whole photo does.
Zoom never applies without a positive click (nothing is selected) or when the crop is nearly the photo (`MIN_GAIN`).

Caching: the crop's encoding is reused while the box stays (`BOX_REUSE_IOU`: a new box with IoU ≥ 0.9 to the
previous one that still holds the estimate keeps the previous box); `predictor.zoom_state.crop_predictor.encode_count`
counts the crop encodings. The returned `Prediction` names the crop's views "zoom:<view>", counts its encodings in
`encoded_views`, and gives the box as `zoom_box` (x0, y0, x1, y1); `input_logits` is the pasted map in the model
frame, so feeding it back as `prev_logits` works as without zoom.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..scaling.zoom_geometry import (
    DEFAULT_MARGIN,
    MIN_GAIN,
    CropBox,
    check_margin,
    check_min_size,
    check_zoom_in,
    crop_box,
    crop_clicks,
    keep_previous_box,
    paste,
    tight_box,
)
from ..utils.click_prompts import clicks_from_prompts
from ..utils.image_io import validate_clicks, validate_prev_mask
from .prediction import Prediction, mask_score

__all__ = ["AUTO_FIRST_CLICK_GAIN", "DEFAULT_MARGIN", "ZoomOptions", "ZoomState", "check_zoom_options",
           "predict_zoomed", "zoom_applies"]

AUTO_FIRST_CLICK_GAIN = 2.0
"""`zoom_in="auto"` zooms on the first click only when the crop shows the object at least twice as large as the
photo does (a small object; on a 640 x 480 photo with the default minimum side of 320 px, a tight box of at most
~178 px). Not measured separately: the first click of "auto" is otherwise the unzoomed one."""

_OWN_KEYS = ("self", "zoom_in", "zoom_margin", "zoom_min_size")  # `predict`'s locals that are not its arguments


@dataclass(frozen=True)
class ZoomOptions:
    mode: bool | str = False
    margin: float = DEFAULT_MARGIN
    min_size: int | None = None


def check_zoom_options(zoom_in=False, zoom_margin=DEFAULT_MARGIN, zoom_min_size=None) -> ZoomOptions:
    """The three zoom keywords checked (ValueError naming the accepted values)."""
    return ZoomOptions(check_zoom_in(zoom_in), check_margin(zoom_margin), check_min_size(zoom_min_size))


class ZoomState:
    """A predictor's zoom cache: the crop's predictor (same class, same model) and the box it holds."""

    def __init__(self) -> None:
        self.crop_predictor = None
        self.box: CropBox | None = None
        self.image_key: str | None = None


def zoom_applies(mode, clicks, box: CropBox, width: int, height: int) -> bool:
    """Whether a call with `mode` zooms into `box` (module docstring)."""
    if mode is False or not any(c[2] > 0 for c in clicks):
        return False
    gain = box.gain(width, height)
    if gain < MIN_GAIN:
        return False
    return mode is True or len(clicks) >= 2 or gain >= AUTO_FIRST_CLICK_GAIN


def _state(predictor) -> ZoomState:
    state = getattr(predictor, "zoom_state", None)
    if state is None:
        state = predictor.zoom_state = ZoomState()
    if state.image_key != predictor._image_key:  # a new photo: the previous crop belongs to the old one
        state.box, state.image_key = None, predictor._image_key
    return state


def _crop_predictor(predictor, state: ZoomState):
    if state.crop_predictor is None:
        state.crop_predictor = type(predictor)(predictor.model, predictor.processor,
                                               points_per_batch=predictor.points_per_batch, max_pixels=None)
    return state.crop_predictor


def _previous(predictor, prev_mask, prev_logits, width: int, height: int) -> np.ndarray | None:
    """The previous estimate at the original resolution, from `prev_mask` or (model-frame) `prev_logits`."""
    if prev_mask is not None:
        return validate_prev_mask(prev_mask, width, height)
    if prev_logits is None:
        return None
    logits = torch.as_tensor(np.asarray(prev_logits, dtype=np.float32), device=predictor.device)[None, None]
    maps = predictor.processor.map_to_original(torch.sigmoid(logits), predictor.original_size, predictor.reshaped_size)
    return maps[0, 0].cpu().numpy()


def _pasted(predictor, full: Prediction, part: Prediction, box: CropBox, start: float) -> Prediction:
    """`full` with `part` (the crop's estimate) pasted into `box`."""
    probabilities = paste(full.probabilities, part.probabilities, box)
    uncertainty = None
    if full.uncertainty is not None and part.uncertainty is not None:
        uncertainty = paste(full.uncertainty, part.uncertainty, box)
    input_logits = None
    if full.input_logits is not None:  # the teacher's feed-back map, now of the pasted estimate
        maps = predictor.processor.map_to_input(torch.from_numpy(probabilities)[None, None], predictor.reshaped_size)
        input_logits = torch.logit(maps[0, 0], eps=1e-6).cpu().numpy()
    out = Prediction(probabilities, uncertainty, views=full.views + [f"zoom:{v}" for v in part.views],
                     has_positive_click=full.has_positive_click,
                     encoded_views=full.encoded_views + part.encoded_views, input_logits=input_logits,
                     threshold=full.threshold, predicted_iou=part.predicted_iou, map_index=part.map_index,
                     zoom_box=(box.x0, box.y0, box.x1, box.y1))
    out.score = mask_score(probabilities, out.mask())
    out.seconds = time.perf_counter() - start
    return out


def predict_zoomed(predictor, options: ZoomOptions, arguments: dict) -> Prediction:
    """`predictor.predict(**arguments)` with zoom (module docstring). `arguments` are the call's own keywords (its
    zoom keywords are dropped here)."""
    start = time.perf_counter()
    arguments = {key: value for key, value in arguments.items() if key not in _OWN_KEYS}
    # checks every argument; the full-image estimate (zoom_in=False: the default may be "auto")
    full = predictor.predict(**arguments, zoom_in=False)
    height, width = predictor.original_size
    clicks = validate_clicks(clicks_from_prompts(arguments.get("clicks"), arguments.get("input_points"),
                                                 arguments.get("input_labels")), width, height)
    tight = tight_box(full.probabilities, clicks, full.threshold)
    if tight is None:
        return full
    state = _state(predictor)
    min_size = options.min_size if options.min_size is not None else predictor.processor.size
    box = crop_box(tight, options.margin, min_size, width, height)
    if keep_previous_box(state.box, box, tight):
        box = state.box  # within the tolerance: the cached crop encoding serves
    if not zoom_applies(options.mode, clicks, box, width, height):
        return full
    crop = _crop_predictor(predictor, state)
    crop.set_loaded_image(box.crop(predictor._image_array))  # re-encodes only for new crop pixels
    state.box = box
    prev = _previous(predictor, arguments.get("prev_mask"), arguments.get("prev_logits"), width, height)
    inner = {key: value for key, value in arguments.items()
             if key not in ("clicks", "prev_mask", "prev_logits", "input_points", "input_labels")}
    inner["map_index"] = full.map_index  # the full image's map, not one chosen again in the crop's frame
    part = crop.predict(crop_clicks(clicks, box, width, height), None if prev is None else box.crop(prev), **inner,
                        zoom_in=False)
    result = _pasted(predictor, full, part, box, start)
    if part.alternatives:  # multimask_output=True: each of the crop's answers, pasted the same way, in full's order
        by_map = {a.map_index: a for a in part.alternatives}
        rest = [by_map.pop(a.map_index) for a in full.alternatives[1:] if a.map_index in by_map]
        rest += [a for a in part.alternatives[1:] if a.map_index in by_map]  # any the full estimate lacked
        result.alternatives = [result] + [_pasted(predictor, full, a, box, start) for a in rest]
    return result
