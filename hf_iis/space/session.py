"""Everything that belongs to one visitor: the image, the clicks and one `Step` per click, in a `gr.State`.

Both classes are frozen: a handler never changes the session it was given, it returns a new one (`with_step`,
`undone`, `cleared`), so two events of one visitor can never see a half-updated session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..inference.prediction import has_positive_click
from .rendering import upsample

Click = tuple[int, int, int]  # (x, y, sign) in pixels of the model image


@dataclass(frozen=True, eq=False)
class Step:
    """One prediction, for the clicks up to and including its own.

    probabilities / uncertainty are (h, w) float16 maps in the model image's frame (float16 halves what a session
    holds); `encoded_views` is how many image embeddings the call computed (0: cached), None when the segmenter
    does not say; `selects` is False for a click set without a positive click, whose mask is empty.
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

    @classmethod
    def from_output(cls, out: dict, clicks, tta: int, triangulation: int, seconds: float) -> Step:
        """A Step from a pipeline output (`probabilities`, `score`, optional `uncertainty`, `seconds`,
        `encoded_views`)."""
        uncertainty = out.get("uncertainty")
        encoded = out.get("encoded_views")
        return cls(
            probabilities=np.asarray(out["probabilities"], dtype=np.float32).astype(np.float16),
            uncertainty=None if uncertainty is None else np.asarray(uncertainty, dtype=np.float32).astype(np.float16),
            score=float(out.get("score", 0.0)),
            seconds=seconds,
            model_seconds=float(out.get("seconds", seconds)),
            tta=int(tta),
            triangulation=int(triangulation),
            encoded_views=None if encoded is None else int(encoded),
            selects=has_positive_click(clicks),
        )

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
    """

    image: np.ndarray | None = None
    size: tuple[int, int] | None = None  # (W, H) as uploaded
    name: str | None = None
    clicks: tuple[Click, ...] = ()
    steps: tuple[Step, ...] = ()
    upload: str | None = None
    encoder_runs: int | None = None

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

    def undone(self) -> Session:
        return replace(self, clicks=self.clicks[:-1], steps=self.steps[:-1])

    def cleared(self) -> Session:
        return replace(self, clicks=(), steps=())
