"""What the evaluation protocols evaluate: the :class:`Segmenter` protocol and its implementations.

A segmenter sees one image at a time (``set_image``, which may encode and cache it) and answers click sets
with a foreground probability map at the image's resolution. Clicks are :class:`hf_iis.utils.clicker.Click`
``(x, y, sign)`` with ``x`` = column and ``y`` = row in original-image pixels.

Implementations here: the model adapters (:class:`ModelSegmenter`, :class:`AveragedClicksSegmenter`) and two
reference segmenters for tests (:class:`OracleSegmenter`, :class:`EmptySegmenter`). The classical peers live in
:mod:`hf_iis.evaluation.peers`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from hf_iis.utils.clicker import Click

__all__ = [
    "Segmenter",
    "TargetAware",
    "ModelSegmenter",
    "runs_conditioned_triangulation",
    "AveragedClicksSegmenter",
    "OracleSegmenter",
    "EmptySegmenter",
]


@runtime_checkable
class Segmenter(Protocol):
    """Anything the protocols can evaluate."""

    name: str

    def set_image(self, image: np.ndarray) -> None:
        """Take a new ``(H, W, 3)`` uint8 RGB image; encode it once (corrective clicks reuse the cache)."""
        ...

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        """``(H, W)`` float32 foreground probabilities in ``[0, 1]`` for all clicks so far.

        ``prev_mask`` is the previous call's probability map (``(H, W)`` float32) or ``None`` at the first click.
        """
        ...


@runtime_checkable
class TargetAware(Protocol):
    """A reference segmenter that is told the ground truth (oracles in tests); the loops call this if present."""

    def set_target(self, gt: np.ndarray) -> None:
        """Take the ``(H, W)`` bool ground truth of the instance about to be evaluated."""
        ...



def _accepts(function, name: str) -> bool:
    """Whether `function` takes a keyword `name` (False for anything that has no readable signature)."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def runs_conditioned_triangulation(predictor: Any) -> bool:
    """Whether `predictor` can run ``triangulation_mode="conditioned"``: its ``predict`` takes the keyword and it has
    a decoder for click sets (a distilled student takes the keyword but refuses the mode: its triangulation is the
    exact feature-space one, which has no click sets to condition on)."""
    from hf_iis.models.kinds import is_student

    return _accepts(getattr(predictor, "predict", None), "triangulation_mode") and not is_student(
        getattr(predictor, "model", None))


class ModelSegmenter:
    """Adapter of :class:`hf_iis.inference.predictor.SignedClickPredictor` to :class:`Segmenter`.

    Args:
        predictor: a ``SignedClickPredictor`` (anything with its ``set_image`` / ``predict`` /
            ``predict_single_clicks`` methods).
        tta: number of test-time-augmentation views (1 = none).
        triangulation: number of auxiliary pixels per prediction (0 = none).
        sampling: ``"uniform"``, ``"stratified"`` or ``"foreground"`` triangulation sampling.
        name: display name (default built from the settings).
        seed: seed of the triangulation sampler.
        upsample: ``"bilinear"`` or ``"guided"``, how maps reach the photo's size (`inference/upsampling.py`).
        zoom_in: False, True or ``"auto"``: refine clicks on a crop of the photo (`hf_iis.inference.zoom`).
        triangulation_mode: ``"independent"`` (the seed's form) or ``"conditioned"`` (the click set plus each
            auxiliary pixel, `hf_iis.scaling.conditioned_triangulation`); only matters when ``triangulation > 0``.
        map_choice: ``"first_click"`` (the predictor's default: corrective clicks keep the map the first click
            chose) or ``"click_set"`` (each click set's best-predicted map), `hf_iis.inference.multimask_prediction`;
            only matters for a multi-map model.
    """

    def __init__(
        self,
        predictor: Any,
        tta: int = 1,
        triangulation: int = 0,
        sampling: str = "uniform",
        name: str | None = None,
        seed: int = 0,
        upsample: str = "bilinear",
        zoom_in: bool | str = False,
        triangulation_mode: str = "independent",
        map_choice: str = "first_click",
    ) -> None:
        self.predictor = predictor
        self.map_choice = map_choice
        # as zoom_in: a predictor that knows the keyword always gets it, stand-ins only when it is not the default
        self._takes_map_choice = _accepts(getattr(predictor, "predict", None), "map_choice")
        self.triangulation_mode = triangulation_mode
        # predictors without the keyword (stand-ins, older peers' adapters) get it only when the mode is not the seed's
        self._takes_mode = _accepts(getattr(predictor, "predict", None), "triangulation_mode")
        self.zoom_in = zoom_in
        # a predictor that knows zoom_in always gets it: its default ("auto" for the teacher) must not turn a row
        # measured without zoom into one with it; stand-ins without the keyword get it only when zoom is asked for
        self._takes_zoom = _accepts(getattr(predictor, "predict", None), "zoom_in")
        self._takes_upsample = _accepts(getattr(predictor, "predict", None), "upsample")  # the same for upsample
        self.upsample = upsample
        self.tta = int(tta)
        self.triangulation = int(triangulation)
        self.sampling = sampling
        self.seed = seed
        self.name = name or f"model[{self.settings_label}]"

    @property
    def settings_label(self) -> str:
        """Short label of the inference-time scaling used, e.g. ``"tta=4, tri=16 stratified"``."""
        label = f"tta={self.tta}"
        if self.triangulation:
            label += f", tri={self.triangulation} {self.sampling}" + self.mode_label
        if self.zoom_in is not False:
            label += f", zoom={'on' if self.zoom_in is True else self.zoom_in}"
        label += "" if self.upsample == "bilinear" else f", upsample={self.upsample}"
        return label + ("" if self.map_choice == "first_click" else f", maps={self.map_choice}")

    @property
    def mode_label(self) -> str:
        """``" conditioned"`` when triangulation runs in a mode other than the seed's, else ``""``: the part of
        :attr:`settings_label` that tells such rows apart."""
        return "" if not self.triangulation or self.triangulation_mode == "independent" else \
            f" {self.triangulation_mode}"

    @property
    def batch_single_clicks(self) -> bool:
        """Whether :meth:`predict_single_clicks` gives the same maps as :meth:`predict` (no triangulation)."""
        # single clicks are upsampled bilinearly and never zoomed
        return self.triangulation == 0 and self.upsample == "bilinear" and self.zoom_in is False

    def set_image(self, image: np.ndarray) -> None:
        """Hand ``image`` to the predictor and encode this segmenter's TTA views now (so that the encoder's time
        is counted here, not in the first click). The predictor re-encodes only when the pixels change."""
        self.predictor.set_image(image)
        if hasattr(self.predictor, "view_embeddings"):
            from hf_iis.scaling.tta import resolve_views

            self.predictor.view_embeddings(resolve_views(self.tta))

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        """Probability map ``(H, W)`` float32 of the model's own multi-click mode."""
        res = self.predictor.predict(
            clicks=[(float(c.x), float(c.y), int(c.sign)) for c in clicks],
            prev_mask=prev_mask,
            tta=self.tta,
            triangulation=self.triangulation,
            triangulation_sampling=self.sampling,
            seed=self.seed,
            **({"triangulation_mode": self.triangulation_mode}
               if self.triangulation_mode != "independent" or self._takes_mode else {}),
            **({"upsample": self.upsample} if self.upsample != "bilinear" or self._takes_upsample else {}),
            **({"zoom_in": self.zoom_in} if self.zoom_in is not False or self._takes_zoom else {}),
            **({"map_choice": self.map_choice} if self.map_choice != "first_click" or self._takes_map_choice else {}),
        )
        return np.asarray(res.probabilities, dtype=np.float32)

    def predict_single_clicks(self, points: np.ndarray, sign: int = 1) -> np.ndarray:
        """``(K, H, W)`` float32 maps of ``K`` independent single clicks at ``points`` ``(K, 2)`` ``(x, y)``."""
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        return np.asarray(self.predictor.predict_single_clicks(pts, sign=sign, tta=self.tta), dtype=np.float32)


class AveragedClicksSegmenter:
    """The seed's multi-click baseline: the average of the single-click maps of all clicks so far.

    Each click is decoded on its own (no previous mask); a positive click contributes the model's single
    positive-click map ``f+`` and a negative click the model's single negative-click map ``f−`` (the model's
    own output for that lone negative click). Maps are cached per click, so each call decodes only new clicks.
    """

    def __init__(self, predictor: Any, tta: int = 1, name: str | None = None) -> None:
        self.model = ModelSegmenter(predictor, tta=tta)
        self.tta = int(tta)
        self.triangulation = 0
        self.sampling = "uniform"
        self.name = name or f"model-avg[tta={self.tta}]"
        self._maps: dict[Click, np.ndarray] = {}

    @property
    def settings_label(self) -> str:
        return f"tta={self.tta}, average of single clicks"

    def set_image(self, image: np.ndarray) -> None:
        self.model.set_image(image)
        self._maps.clear()

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        """Mean of the cached / newly decoded single-click maps, ``(H, W)`` float32."""
        if not clicks:
            raise ValueError("AveragedClicksSegmenter needs at least one click")
        for sign in (1, -1):
            new = [c for c in clicks if c.sign == sign and c not in self._maps]
            if new:
                maps = self.model.predict_single_clicks(np.array([(c.x, c.y) for c in new]), sign=sign)
                self._maps.update(zip(new, maps, strict=True))
        return np.mean([self._maps[c] for c in clicks], axis=0).astype(np.float32)


class OracleSegmenter:
    """Returns the ground truth (optionally eroded by ``erode_px`` pixels) whatever the clicks; for tests."""

    def __init__(self, erode_px: int = 0, name: str | None = None) -> None:
        self.erode_px = int(erode_px)
        self.name = name or ("oracle" if not erode_px else f"oracle-eroded{erode_px}")
        self._gt: np.ndarray | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._gt = None

    def set_target(self, gt: np.ndarray) -> None:
        """Take the ``(H, W)`` bool ground truth (erosion uses a ``(2r+1)²`` square, border as background)."""
        import cv2

        gt = np.asarray(gt, dtype=bool)
        if self.erode_px:
            r = self.erode_px
            padded = np.pad(gt.astype(np.uint8), r)
            gt = cv2.erode(padded, np.ones((2 * r + 1, 2 * r + 1), np.uint8))[r:-r, r:-r].astype(bool)
        self._gt = gt

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        if self._gt is None:
            raise RuntimeError("OracleSegmenter.set_target was not called for this instance")
        return self._gt.astype(np.float32)


class EmptySegmenter:
    """Predicts background everywhere; for tests (NoC = max clicks)."""

    def __init__(self, name: str = "empty") -> None:
        self.name = name
        self._shape: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._shape = image.shape[:2]

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        assert self._shape is not None, "set_image first"
        return np.zeros(self._shape, dtype=np.float32)
