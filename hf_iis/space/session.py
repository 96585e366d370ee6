"""Everything that belongs to one visitor: the image, the clicks and one `Step` per click, in a `gr.State`.

Both classes are frozen: a handler never changes the session it was given, it returns a new one (`with_step`,
`with_choice`, `undone`, `cleared`), so two events of one visitor can never see a half-updated session.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from ..inference.prediction import has_positive_click
from .rendering import upsample

Click = tuple[int, int, int]  # (x, y, sign) in pixels of the model image


_STEP_KEYS = itertools.count()  # each prediction's own key: a pick names the step its list of answers belonged to


def _half(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float16)


def _listed(out: dict, key: str, single) -> list:
    """out[key] as a list, or [single] when the segmenter gave no such list (one answer)."""
    values = out.get(key)
    return [single] if values is None or len(values) == 0 else list(values)


@dataclass(frozen=True, eq=False)
class Step:
    """One prediction, for the clicks up to and including its own.

    probabilities / uncertainty are (h, w) float16 maps in the model image's frame (float16 halves what a session
    holds); `encoded_views` is how many image embeddings the call computed (0: cached), None when the segmenter
    does not say; `selects` is False for a click set without a positive click, whose mask is empty.

    A multi-map model answers each click with several maps: `answers` holds them all, best (highest predicted IoU)
    first, with their `predicted_ious` (None for a one-map model) and `answer_scores`; `chosen` is the one the
    visitor picked (`choose`), and `probabilities` / `score` are always that one's, so the shown mask, the
    full-size mask and the next click's `prev_mask` all follow the choice. `uncertainty` is the spread of answer
    1's estimates (the pipeline reports no other): `uncertainty_map()` gives it only while answer 1 is chosen.
    `key` is this prediction's own number (kept by `choose`), so that a pick can say which step it was made on.
    `map_indices` says which of the model's maps gave each answer (empty when the segmenter does not say).
    """

    probabilities: np.ndarray
    uncertainty: np.ndarray | None
    score: float
    seconds: float  # what the visitor waits for: the pipeline call, pre- and post-processing included
    model_seconds: float
    tta: int
    triangulation: int
    encoded_views: int | None = None
    selects: bool = True
    answers: tuple[np.ndarray, ...] = ()
    predicted_ious: tuple[float | None, ...] = ()
    answer_scores: tuple[float, ...] = ()
    chosen: int = 0
    key: int = field(default_factory=lambda: next(_STEP_KEYS))
    zoom_box: tuple[int, int, int, int] | None = None  # the crop a zoom-in call refined inside (model-image pixels)
    map_indices: tuple[int, ...] = ()

    @classmethod
    def from_output(cls, out: dict, clicks, tta: int, triangulation: int, seconds: float) -> Step:
        """A Step from a pipeline output (`probabilities`, `score`, optional `uncertainty`, `seconds`,
        `encoded_views`, and with `multimask_output=True` every answer: `mask_probabilities`, `iou_scores`,
        `scores`, best first)."""
        uncertainty = out.get("uncertainty")
        encoded = out.get("encoded_views")
        answers = tuple(_half(m) for m in _listed(out, "mask_probabilities", out["probabilities"]))
        ious = _listed(out, "iou_scores", out.get("iou_score"))[: len(answers)]
        ious += [None] * (len(answers) - len(ious))
        scores = _listed(out, "scores", out.get("score", 0.0))[: len(answers)]
        scores += [0.0] * (len(answers) - len(scores))
        maps = out.get("map_indices")
        if maps is None or len(maps) != len(answers):
            maps = [out["map_index"]] if "map_index" in out and len(answers) == 1 else []
        return cls(
            probabilities=answers[0],
            uncertainty=None if uncertainty is None else _half(uncertainty),
            score=float(out.get("score", scores[0])),
            seconds=seconds,
            model_seconds=float(out.get("seconds", seconds)),
            tta=int(tta),
            triangulation=int(triangulation),
            encoded_views=None if encoded is None else int(encoded),
            selects=has_positive_click(clicks),
            answers=answers,
            predicted_ious=tuple(None if v is None else float(v) for v in ious),
            answer_scores=tuple(float(v) for v in scores),
            zoom_box=None if out.get("zoom_box") is None else tuple(int(v) for v in out["zoom_box"]),
            map_indices=tuple(int(v) for v in maps),
        )

    def choose(self, index: int) -> Step:
        """This step with answer `index` (0 = the best) as the one shown and fed back; ValueError when there is no
        such answer."""
        count = max(len(self.answers), 1)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < count:
            raise ValueError(f"there is no answer {index!r} for this click: pick one of the {count} answers shown")
        if not self.answers:
            return self
        return replace(self, probabilities=self.answers[index], score=self.answer_scores[index], chosen=int(index))

    def uncertainty_map(self) -> np.ndarray | None:
        """The uncertainty of the shown answer: answer 1's spread, None for another answer or a single estimate."""
        return self.uncertainty if self.chosen == 0 else None

    def probability_map(self) -> np.ndarray:
        return self.probabilities.astype(np.float32)

    def mask(self, size: tuple[int, int] | None = None, threshold: float = 0.5) -> np.ndarray:
        """(h, w) bool, or (H, W) at `size` = (W, H) from the upsampled probabilities: probability ≥ threshold;
        empty without a positive click (as the pipeline's mask)."""
        shape = self.probabilities.shape if size is None else (size[1], size[0])
        if not self.selects:
            return np.zeros(shape, dtype=bool)
        probabilities = self.probability_map() if size is None else upsample(self.probability_map(), size)
        return probabilities >= threshold


@dataclass(frozen=True, eq=False)
class Session:
    """One visitor's image (as the model sees it), its uploaded size and name, the clicks and their steps.

    `upload` is the file of the last upload, read or refused (Gradio's repeat of it is not read again); `encoder_runs`
    counts the image embeddings computed for this visitor's clicks, None when the segmenter does not report them.
    `map_index` is the model map of the answer the visitor picked (`with_choice`), which the next clicks of this image
    keep (`map_index=` to the segmenter); None until a visitor picks an answer other than the first, and after a reset.
    """

    image: np.ndarray | None = None
    size: tuple[int, int] | None = None  # (W, H) as uploaded
    name: str | None = None
    clicks: tuple[Click, ...] = ()
    steps: tuple[Step, ...] = ()
    upload: str | None = None
    encoder_runs: int | None = None
    map_index: int | None = None

    @property
    def last(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def with_step(self, clicks, step: Step, steps: tuple[Step, ...] | None = None) -> Session:
        """The session after `step` (for `clicks`), appended to `steps` (default: the current ones)."""
        runs = self.encoder_runs
        if step.encoded_views is not None:
            runs = (runs or 0) + step.encoded_views
        steps = self.steps if steps is None else steps
        return replace(self, clicks=tuple(tuple(c) for c in clicks), steps=(*steps, step), encoder_runs=runs)

    def with_choice(self, index: int) -> Session:
        """The session with answer `index` chosen for the last click (`Step.choose`)."""
        if self.last is None:
            raise ValueError("click on the object first: there is no answer to pick yet")
        step = self.last.choose(index)
        map_index = self.map_index
        # answer 1 is what the map rule gives anyway: a map is kept once a visitor has picked another answer
        if step.map_indices and (step.chosen != 0 or map_index is not None):
            map_index = step.map_indices[step.chosen]
        return replace(self, steps=(*self.steps[:-1], step), map_index=map_index)

    def undone(self) -> Session:
        clicks = self.clicks[:-1]
        return replace(self, clicks=clicks, steps=self.steps[:-1], map_index=self.map_index if clicks else None)

    def cleared(self) -> Session:
        return replace(self, clicks=(), steps=(), map_index=None)
