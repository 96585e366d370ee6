"""`CachedImageViews`: the image side every predictor shares (SAM's `set_image`): validate and preprocess an image
once, then compute its embeddings lazily, once per TTA view, one encoder batch per input size.

The teacher (`predictor.SignedClickPredictor`) and the student (`student_predictor.SignedClickStudentPredictor`)
subclass it and differ only in what they do with the cached embeddings; `_reset_image_state` lets a subclass drop
its own per-image caches when a new image arrives.

Threads: the current image and its embeddings are state of the predictor object, so `set_image` in one thread and
`predict` in another would mix two images. `lock` (a re-entrant lock) is what callers that share one predictor hold
around each `set_image` + `predict` pair; the pipeline does (one call at a time per pipeline object). Its cost: calls
on one predictor run one after the other, and two threads alternating two images re-encode at every switch (the
cache holds one image). For parallel work on a GPU, give each thread its own pipeline (they may share the model).
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import torch

from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from ..scaling.tta import View
from ..utils.image_io import DEFAULT_MAX_PIXELS, check_points_per_batch, load_image
from .devices import check_model_dtype, precision


class CachedImageViews:
    """Holds the current image (preprocessed, on the model's device) and its embeddings per view name."""

    def __init__(self, model, image_processor: SignedClickImageProcessor | None = None, points_per_batch: int = 64,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        check_model_dtype(model)  # float32, bfloat16 or float16: reduced ones run under autocast (devices.py)
        self.model = model.eval()
        self.lock = threading.RLock()  # held around set_image + predict by whoever shares this predictor
        self.processor = image_processor or SignedClickImageProcessor.for_model_config(model.config)
        self.points_per_batch = check_points_per_batch(points_per_batch)  # the default of every call
        self.max_pixels = max_pixels
        self._image_key: str | None = None
        self._pixel_values: torch.Tensor | None = None
        self._embeddings: dict = {}
        self._stretched_prior: torch.Tensor | None = None
        self._stretched_photo: torch.Tensor | None = None
        self.encode_count = 0  # number of encoder batches run; lets callers and tests verify the cache

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def precision(self):
        """The context the model's passes run under: autocast at the model's dtype when reduced, else nothing."""
        return precision(self.model)

    def set_image(self, image) -> None:
        """Validate and preprocess `image` (path, PIL image or (H, W, 3) uint8 array); embeddings are computed
        lazily per view. Passing the same pixels again keeps the cached embeddings."""
        self.set_loaded_image(load_image(image, self.max_pixels))

    def set_loaded_image(self, array: np.ndarray) -> None:
        """`set_image` for an array `image_io.load_image` has already returned and checked (the pipeline loads the
        image in its `preprocess`), so that the image is checked once per call."""
        if not (isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3):
            raise ValueError("set_loaded_image takes the (H, W, 3) uint8 array that image_io.load_image returns; "
                             "pass anything else to set_image")
        key = hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest() + str(array.shape)
        if key == self._image_key:
            return
        processed = self.processor.preprocess(array, return_tensors="pt")
        self._pixel_values = processed["pixel_values"].to(self.device)
        self._image_array = array  # the photo itself, which zoom crops (zoom.py)
        self.original_size = tuple(int(v) for v in processed["original_sizes"][0])
        self.reshaped_size = tuple(int(v) for v in processed["reshaped_input_sizes"][0])
        self._valid = self.processor.valid_region(self.reshaped_size).to(self.device)
        self._embeddings = {}
        self._stretched_prior = None
        self._stretched_photo = None
        self._reset_image_state()
        self._image_key = key

    def _prior_saliency(self) -> torch.Tensor | None:
        """(1, 1, S, S): with `config.prior_source="stretched"`, the saliency map of the photo itself (one more
        U²-Net(-p) pass, `hf_iis.backbones.stretched_saliency`) in the canonical model-input frame, computed at the
        first encode of an image and kept until the next image; None for every other model."""
        if getattr(self.model.config, "prior_source", "branch") != "stretched":
            return None
        if self._stretched_prior is None:
            from ..backbones.stretched_saliency import stretched_input

            x = torch.from_numpy(stretched_input(self._image_array)).to(self.device)
            self._stretched_prior = self.processor.map_to_input(self.model.encode_prior_saliency(x),
                                                                self.reshaped_size)
        return self._stretched_prior

    def _stretched_frame_inputs(self, views: list[View]) -> dict:
        """With `config.saliency_frame="stretched"`: each view's photo alone, stretched to the saliency branch's
        input (from the photo itself, once per image: resizing the padded input again would blur it), and where the
        photo lies in the view's frame; {} for every other model."""
        config = self.model.config
        if getattr(config, "saliency_frame", "padded") != "stretched":
            return {}
        if self._stretched_photo is None:
            from ..backbones.saliency_frame import stretched_photo

            self._stretched_photo = stretched_photo(self._image_array, config.saliency_input_size).to(self.device)
        from ..scaling.view_boxes import view_box, view_stretched

        size = self.processor.size
        return {"saliency_pixel_values": torch.stack([view_stretched(v, self._stretched_photo) for v in views]),
                "saliency_boxes": torch.tensor([view_box(v, self.reshaped_size, size) for v in views])}

    def _reset_image_state(self) -> None:
        """Drop a subclass's own per-image caches (called when a new image is set)."""

    def _require_image(self) -> None:
        if self._pixel_values is None:
            raise ValueError("no image set: call set_image(image) before predict")

    @torch.inference_mode()
    def view_embeddings(self, views: list[View]) -> dict:
        """Embeddings of the given views, encoding only the missing ones, one encoder batch per input size."""
        self._require_image()
        missing = [v for v in views if v.name not in self._embeddings]
        size = self.processor.size
        for out_size in sorted({v.output_size(size) for v in missing}):
            group = [v for v in missing if v.output_size(size) == out_size]
            with self.precision():
                pixels = torch.cat([v.apply_image(self._pixel_values) for v in group])
                prior = self._prior_saliency()
                frame_inputs = self._stretched_frame_inputs(group)
                if prior is None and not frame_inputs:  # every other model (the student's encode_image too)
                    embeddings = self.model.encode_image(pixels)
                else:  # the output prior's own map, computed once per image, follows each view
                    if prior is not None:
                        prior = torch.cat([v.apply_image(prior) for v in group])
                    embeddings = self.model.encode_image(pixels, prior, **frame_inputs)
            self.encode_count += 1
            for i, view in enumerate(group):
                self._embeddings[view.name] = embeddings.index(slice(i, i + 1))
        return {v.name: self._embeddings[v.name] for v in views}
