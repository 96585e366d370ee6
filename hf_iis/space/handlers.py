"""The Space's event handlers and its `/segment` endpoint. Every per-visitor value comes in and goes out as a
`Session`; the only shared object is the segmenter (the pipeline), whose calls are serialised by a lock (its
embedding cache holds one image).

Each UI handler returns (session, canvas, probability map, uncertainty map, full-size mask, answers, status,
details JSON); the two map checkboxes update their own map only (`toggle_probability`, `toggle_uncertainty`). The model
is asked for every answer (`multimask_output=True`): a multi-map model's answers are offered in the `answers` radio,
best first, and `choose` makes the picked one the shown mask, the full-size mask and the next click's `prev_mask`;
the picked answer's map (`Session.map_index`) is passed as `map_index` with the image's next clicks, so they stay on it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np
import torch
from gradio.data_classes import FileData
from PIL import Image

from ..models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from ..utils.image_io import validate_clicks
from ..utils.visualize import overlay_mask
from .rendering import hint_card, probability_picture, save_to_cache, uncertainty_picture
from .session import Session, Step
from .uploads import MAX_MODEL_PIXELS, read_upload, upload_path

LOG = logging.getLogger("hf_iis.space")
MAX_CLICKS = 64
MAX_TTA, MAX_TRIANGULATION = 8, 64
ZOOM_CHOICES = {"off": False, "auto": "auto", "on": True}  # the zoom radio's words -> the pipeline's `zoom_in`
DEFAULT_ZOOM = "auto"  # the predictor's own default (`SignedClickPredictor.predict`), passed on as no keyword
POSITIVE, NEGATIVE = "positive (object)", "negative (background)"
NO_SPREAD = ("One estimate has no spread: raise TTA views to 2 or more, or triangulation pixels above 0, to see "
             "the uncertainty map.")
NOT_ANSWER_1 = ("The uncertainty map is computed for answer 1 (the best predicted) only: pick answer 1 to see it "
                "(with TTA views ≥ 2 or triangulation pixels above 0).")
N_OUTPUTS = 8
REPEAT_WINDOW_S = 10.0  # Gradio's repeated `change` comes within this (the visitor's session may lag behind it)

Segmenter = Callable[..., dict]


class Handlers:
    """The UI's event handlers and the API endpoint, over one shared `segmenter`: any callable with the pipeline's
    signature, `segmenter(image, clicks=..., tta=..., triangulation=..., prev_mask=..., return_uncertainty=...,
    multimask_output=...)` returning `{"probabilities": (h, w) float32, "score": float, ...}`, with every answer in
    `mask_probabilities` / `iou_scores` / `scores` for `multimask_output=True` (tests pass a deterministic
    stand-in)."""

    def __init__(self, segmenter: Segmenter, max_pixels: int = MAX_MODEL_PIXELS) -> None:
        self.segmenter = segmenter
        self.max_pixels = max_pixels
        self.lock = threading.Lock()  # the pipeline's predictor caches one image: one call at a time
        self.points = SignedClickImageProcessor()  # the pipeline's mapping of clicks between two image sizes
        self._uploads: OrderedDict[str, tuple[str, float]] = OrderedDict()  # visitor -> (last upload, when)
        self._uploads_lock = threading.Lock()

    # ---- model call
    def predict(self, image: np.ndarray, clicks, prev: np.ndarray | None, tta: int, triangulation: int,
                answers: bool = True, zoom: str = DEFAULT_ZOOM, map_index: int | None = None) -> Step:
        """One prediction; `answers`: every answer of a multi-map model (each runs the whole scaling path), False:
        the best-predicted one alone; `zoom`: a word of `ZOOM_CHOICES` (zoom-in crop views, `inference/zoom.py`);
        `map_index`: the model map to keep (None: the model's own choice)."""
        if zoom not in ZOOM_CHOICES:
            raise ValueError(f"zoom must be one of {list(ZOOM_CHOICES)}, got {zoom!r}")
        extra = {} if zoom == DEFAULT_ZOOM else {"zoom_in": ZOOM_CHOICES[zoom]}  # stand-ins need not know it
        if map_index is not None:  # only once a visitor picked another answer of a segmenter that names its maps
            extra["map_index"] = int(map_index)
        with self.lock:
            start = time.perf_counter()
            out = self.segmenter(image, clicks=[tuple(c) for c in clicks], tta=int(tta),
                                 triangulation=int(triangulation), prev_mask=prev, return_uncertainty=True,
                                 multimask_output=answers, **extra)
            wall = time.perf_counter() - start
        return Step.from_output(out, clicks, tta, triangulation, wall)

    # ---- events
    def load(self, value: Any, show_prob: bool, show_unc: bool, session: Session | None = None,
             request: gr.Request = None) -> tuple:
        visitor = getattr(request, "session_hash", None)
        if value is None:  # cleared: the same file may come again
            self._forget_upload(visitor)
            return (Session(), *self.render(Session(), show_prob, show_unc))
        key = upload_path(value)
        if not self._begin_upload(visitor, key, session):
            # Gradio fires `change` twice for one upload, the second time at once (seeing the session from before
            # the upload, which is not stored yet) or right after: one read and one message per file
            return tuple(gr.skip() for _ in range(N_OUTPUTS))
        try:
            image, size, name = read_upload(value, self.max_pixels)
        except ValueError as error:
            return self.fail(Session(upload=key), str(error), show_prob, show_unc)
        session = Session(image=image, size=size, name=name, upload=key)
        height, width = image.shape[:2]
        note = f"**{name}** ({size[0]}×{size[1]}) loaded."
        if (width, height) != size:
            note += (f" It is over the model's budget of {self.max_pixels / 1e6:.1f} MP: the model sees "
                     f"{width}×{height} and masks are upsampled back to {size[0]}×{size[1]}.")
        return (session, *self.render(session, show_prob, show_unc, note + " Choose positive or negative and click."))

    def _begin_upload(self, visitor: str | None, key: str | None, session: Session | None) -> bool:
        """False for a repeat of this visitor's last upload: the file the session holds (or refused), or the file
        one of the visitor's events began reading under `REPEAT_WINDOW_S` ago (its session may not be stored yet).
        Otherwise the file is recorded as this visitor's last upload, before it is read, and True."""
        if key is None:
            return True
        if session is not None and key == session.upload:
            return False
        if visitor is None:
            return True
        now = time.monotonic()
        with self._uploads_lock:
            last = self._uploads.pop(visitor, None)
            if last is not None and last[0] == key and now - last[1] < REPEAT_WINDOW_S:
                self._uploads[visitor] = last
                return False
            self._uploads[visitor] = (key, now)
            while len(self._uploads) > 10_000:  # oldest visitors first
                self._uploads.popitem(last=False)
        return True

    def _forget_upload(self, visitor: str | None) -> None:
        with self._uploads_lock:
            self._uploads.pop(visitor, None)

    def click(self, session: Session, x: float, y: float, sign: str, tta: int, triangulation: int,
              show_prob: bool, show_unc: bool, zoom: str = DEFAULT_ZOOM) -> tuple:
        session = session or Session()
        if session.image is None:
            return self.fail(session, "Upload an image (or pick an example) before clicking.", show_prob, show_unc)
        if len(session.clicks) >= MAX_CLICKS:
            return self.fail(session, f"That is {MAX_CLICKS} clicks, the most one mask takes: undo or reset.",
                             show_prob, show_unc)
        height, width = session.image.shape[:2]
        click = (int(np.clip(round(float(x)), 0, width - 1)), int(np.clip(round(float(y)), 0, height - 1)),
                 -1 if sign == NEGATIVE else 1)
        prev = session.last.probability_map() if session.last else None
        return self._run(session, [*session.clicks, click], prev, session.steps, tta, triangulation, show_prob,
                         show_unc, zoom)

    def select(self, session: Session, sign: str, tta: int, triangulation: int, show_prob: bool, show_unc: bool,
               evt: gr.SelectData, zoom: str = DEFAULT_ZOOM) -> tuple:  # Gradio puts `evt` at its place in the inputs
        x, y = evt.index[:2]
        return self.click(session, x, y, sign, tta, triangulation, show_prob, show_unc, zoom)

    def rerun(self, session: Session, tta: int, triangulation: int, show_prob: bool, show_unc: bool,
              zoom: str = DEFAULT_ZOOM) -> tuple:
        """New slider values: recompute the last click's prediction (from the same previous mask)."""
        session = session or Session()
        if not session.steps:
            return (session, *self.render(session, show_prob, show_unc))
        steps = session.steps[:-1]
        prev = steps[-1].probability_map() if steps else None
        return self._run(session, session.clicks, prev, steps, tta, triangulation, show_prob, show_unc, zoom)

    def choose(self, session: Session, answer: str | int | None, show_prob: bool, show_unc: bool) -> tuple:
        """The answers radio: answer `answer` of the last click becomes the shown mask, the full-size mask and the
        next click's `prev_mask`, and its map the one the next clicks keep (`Session.with_choice`). `answer` is the
        radio's value, "<step key>:<index>", or an index (0 = the best).

        The radio's value names the step it was picked on: a pick made while a click was still queued arrives after
        that click's prediction, and must not pick among the new click's answers."""
        session = session or Session()
        if isinstance(answer, str):
            key, _, index = answer.partition(":")
            if session.last is None or key != str(session.last.key) or not index.isdigit():
                return self.fail(session, "Those answers belonged to an earlier click: pick again from the answers "
                                          "shown now.", show_prob, show_unc)
            answer = int(index)
        if answer is None or session.last is None or answer == session.last.chosen:
            return (session, *self.render(session, show_prob, show_unc))
        try:
            session = session.with_choice(answer)
        except ValueError as error:
            return self.fail(session, str(error), show_prob, show_unc)
        return (session, *self.render(session, show_prob, show_unc))

    def undo(self, session: Session, show_prob: bool, show_unc: bool) -> tuple:
        session = session or Session()
        if not session.clicks:
            return self.fail(session, "Nothing to undo.", show_prob, show_unc)
        session = session.undone()
        return (session, *self.render(session, show_prob, show_unc, "Last click undone."))

    def reset(self, session: Session, show_prob: bool, show_unc: bool) -> tuple:
        session = (session or Session()).cleared()
        message = "Clicks cleared." if session.image is not None else None
        return (session, *self.render(session, show_prob, show_unc, message))

    def _run(self, session: Session, clicks, prev, steps, tta, triangulation, show_prob, show_unc,
             zoom: str = DEFAULT_ZOOM) -> tuple:
        try:
            step = self.predict(session.image, clicks, prev, tta, triangulation, zoom=zoom,
                                map_index=session.map_index)
        except ValueError as error:
            return self.fail(session, str(error), show_prob, show_unc)
        except Exception as error:  # never a stack trace in the page; the log has it
            LOG.exception("prediction failed")
            return self.fail(session, f"The model failed on this input ({type(error).__name__}: {error}).",
                             show_prob, show_unc)
        session = session.with_step(clicks, step, steps)
        return (session, *self.render(session, show_prob, show_unc))

    def fail(self, session: Session, message: str, show_prob: bool, show_unc: bool) -> tuple:
        gr.Warning(message)
        return (session, *self.render(session, show_prob, show_unc, f"⚠️ {message}"))

    # ---- outputs: canvas, probability map, uncertainty map, full-size mask, answers, status, details
    def render(self, session: Session, show_prob: bool, show_unc: bool, message: str | None = None) -> tuple:
        image, step = session.image, session.last
        prob_map, unc_map = self.probability_view(session, show_prob), self.uncertainty_view(session, show_unc)
        answers = self.answers_view(step)
        if image is None:
            return (None, prob_map, unc_map, None, answers, message or "Upload an image or pick an example.",
                    json.dumps({"n_clicks": 0, "clicks": []}))
        mask = np.zeros(image.shape[:2], bool) if step is None else step.mask()
        canvas = overlay_mask(image, mask, session.clicks)
        full_mask = None if step is None else Image.fromarray(np.where(step.mask(session.size), 255, 0).astype(
            np.uint8))
        details = self.describe(session, mask)
        return (canvas, prob_map, unc_map, full_mask, answers, message or self.status(details, show_unc),
                json.dumps(details))

    @staticmethod
    def answer_labels(step: Step) -> list[str]:
        """'answer 1 · predicted IoU 0.91', ... best first (the score where the model predicts no IoU)."""
        return [f"answer {k + 1} · " + (f"predicted IoU {iou:.2f}" if iou is not None else f"score {score:.2f}")
                for k, (iou, score) in enumerate(zip(step.predicted_ious, step.answer_scores))]

    @classmethod
    def answers_view(cls, step: Step | None) -> dict:
        """The answers radio: shown with a multi-map model's answers, hidden for one answer (or before a click)."""
        if step is None or len(step.answers) < 2:
            return gr.update(choices=[], value=None, visible=False)
        values = [f"{step.key}:{k}" for k in range(len(step.answers))]  # see `choose`
        return gr.update(choices=list(zip(cls.answer_labels(step), values)), value=values[step.chosen], visible=True)

    @staticmethod
    def probability_view(session: Session, show: bool) -> dict:
        if not show or session.last is None:
            return gr.update(visible=bool(show), value=None)
        return gr.update(visible=True, value=probability_picture(session.last.probability_map()))

    @staticmethod
    def uncertainty_view(session: Session, show: bool) -> dict:
        """The uncertainty map, or a card saying what to raise when the last step had a single estimate (or which
        answer to pick: only answer 1's spread is known)."""
        step = session.last
        if not show or step is None:
            return gr.update(visible=bool(show), value=None)
        if step.uncertainty_map() is None:
            return gr.update(visible=True, value=hint_card(NO_SPREAD if step.chosen == 0 else NOT_ANSWER_1))
        return gr.update(visible=True, value=uncertainty_picture(step.uncertainty_map().astype(np.float32)))

    def toggle_probability(self, session: Session, show_prob: bool) -> dict:
        """The probability checkbox: its map only (each toggle has its own outputs, so two quick toggles whose
        events finish out of order cannot hide each other's map)."""
        return self.probability_view(session or Session(), show_prob)

    def toggle_uncertainty(self, session: Session, show_unc: bool) -> tuple:
        """The uncertainty checkbox: its map and the status line (which says what to raise for a single estimate)."""
        session = session or Session()
        if session.image is None:
            return self.uncertainty_view(session, show_unc), "Upload an image or pick an example."
        details = self.describe(session, session.last.mask() if session.last else None)
        return self.uncertainty_view(session, show_unc), self.status(details, show_unc)

    @staticmethod
    def describe(session: Session, mask: np.ndarray | None) -> dict:
        """What the details box shows (and the browser tests read): clicks as received, the mask, the last step."""
        image, clicks, step = session.image, session.clicks, session.last
        if mask is None:
            mask = np.zeros(image.shape[:2], bool)
        details = {
            "image_size": list(session.size),
            "model_size": [image.shape[1], image.shape[0]],
            "n_clicks": len(clicks),
            "clicks": [list(c) for c in clicks],
            "mask_area": int(mask.sum()),
            "mask_fraction": round(float(mask.mean()), 5),
            "mask_at_last_click": bool(mask[clicks[-1][1], clicks[-1][0]]) if clicks and step else None,
            "mask_size": None if step is None else list(session.size),
        }
        if step is not None:
            details.update({"tta": step.tta, "triangulation": step.triangulation, "selects": step.selects,
                            "encoder_runs": session.encoder_runs, "uncertainty": step.uncertainty_map() is not None})
            iou = step.predicted_ious[step.chosen] if step.predicted_ious else None
            details.update({"answers": max(len(step.answers), 1), "answer": step.chosen + 1,
                            "predicted_iou": None if iou is None else round(iou, 4)})
            details.update({k: round(getattr(step, k), 4) for k in ("score", "seconds", "model_seconds")})
            details["embedding"] = (None if step.encoded_views is None else
                                    "cached" if step.encoded_views == 0 else "computed")
            details["zoom_box"] = None if step.zoom_box is None else list(step.zoom_box)
        return details

    @staticmethod
    def status(details: dict, show_unc: bool = False) -> str:
        clicks = details["clicks"]
        if not clicks:
            return "Click on the object: a positive click adds to the mask, a negative click removes."
        positive = sum(1 for c in clicks if c[2] > 0)
        text = (f"**{len(clicks)} click{'s' * (len(clicks) > 1)}** ({positive} +, {len(clicks) - positive} −) · "
                f"prediction **{details['seconds']:.3f} s** (TTA {details['tta']}, triangulation "
                f"{details['triangulation']}) · ")
        if details["selects"]:
            text += f"mask {100 * details['mask_fraction']:.1f} % · score {details['score']:.2f}"
        else:
            text += "nothing selected yet: a negative click only says what is not the object; add a positive click"
        if details.get("embedding"):
            text += f" · image embedding {details['embedding']}"
        if details.get("zoom_box"):
            text += " · refined on a zoomed crop"
        if details.get("answers", 1) > 1:
            text += f" · answer {details['answer']} of {details['answers']}"
            if details.get("predicted_iou") is not None:
                text += f" (predicted IoU {details['predicted_iou']:.2f})"
        if show_unc and not details["uncertainty"]:
            text += (" · uncertainty map: pick answer 1 to see it" if details.get("answer", 1) > 1 else
                     " · uncertainty map: raise TTA views to ≥ 2 or triangulation pixels above 0")
        return text

    # ---- programmatic endpoint
    def segment(self, image: FileData, clicks: str, tta: int = 1, triangulation: int = 0) -> tuple[FileData, float]:
        """Segment an image from signed clicks.

        clicks: JSON list [[x, y, 1], [x, y, -1]] in pixels of the uploaded image (x = column, y = row; +1 object,
        -1 background). tta: 1..8 views; triangulation: 0..64 auxiliary pixels. Returns the mask (PNG, 0/255, the
        uploaded image's size) and its score (mean probability inside the mask). Without a positive click the mask
        is empty and the score 0.
        """
        try:
            working, size, _ = read_upload(image, self.max_pixels)
            parsed = json.loads(clicks) if isinstance(clicks, str) else clicks
            parsed = validate_clicks(parsed, *size)
            if not (1 <= int(tta) <= MAX_TTA and 0 <= int(triangulation) <= MAX_TRIANGULATION):
                raise ValueError(f"tta must be in 1..{MAX_TTA} and triangulation in 0..{MAX_TRIANGULATION}")
            step = self.predict(working, self.to_model_image(parsed, size, working.shape[:2]), None, tta,
                                triangulation, answers=False)  # its output is the best answer alone
        except json.JSONDecodeError as error:
            raise gr.Error(f"clicks must be JSON like [[x, y, 1], [x, y, -1]] ({error})") from None
        except ValueError as error:
            raise gr.Error(str(error)) from None
        mask = Image.fromarray(np.where(step.mask(size), 255, 0).astype(np.uint8))
        return FileData(path=save_to_cache(mask, "mask"), orig_name="mask.png", mime_type="image/png"), step.score

    def to_model_image(self, clicks, size: tuple[int, int], model_shape: tuple[int, int]) -> list[tuple]:
        """Clicks in uploaded pixels (image `size` = (W, H)) -> pixels of the model image, (h, w) = `model_shape`,
        by the image processor's own point mapping, kept inside the image."""
        height, width = model_shape
        points = torch.tensor([[x, y] for x, y, _ in clicks], dtype=torch.float32)
        mapped = self.points.points_to_input(points, (size[1], size[0]), (height, width)).tolist()
        return [(min(max(x, 0.0), width - 1), min(max(y, 0.0), height - 1), sign)
                for (x, y), (_, _, sign) in zip(mapped, clicks)]
