"""Gradio Space: click on an image (positive or negative) and the mask follows.

    python spaces/app.py --model FOLDER [--host 127.0.0.1] [--port 7860]

`build_demo(model=None, segmenter=None)` makes the Blocks app. `model` is a checkpoint folder (default: env
`HF_IIS_MODEL`, then the package's embedded default); `segmenter` replaces the pipeline with any callable of the
same signature, `segmenter(image, clicks=..., tta=..., triangulation=..., prev_mask=..., return_uncertainty=...)`
returning `{"probabilities": (H, W) float32, "score": float, ...}` (tests pass a deterministic stand-in).

Everything that belongs to one visitor (image, clicks, probability maps) lives in a per-session `gr.State`; the only
shared object is the model pipeline, whose calls are serialised by a lock (its embedding cache holds one image).
Clicks are (x, y) = (column, row) in pixels of the image the model sees: an upload over `max_pixels` is downscaled
for the model, and masks are upsampled back to the uploaded size. The `/segment` endpoint (`gr.api`) takes clicks in
uploaded-image pixels as JSON, `[[x, y, 1], [x, y, -1]]`, and returns the mask as a PNG and its score.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder
from PIL import Image, ImageOps, UnidentifiedImageError

import hf_iis  # noqa: F401  (registers the "interactive-segmentation" pipeline)
from hf_iis.checkpoint_paths import DEFAULT_CHECKPOINT
from hf_iis.image_io import load_image, validate_clicks
from hf_iis.visualize import overlay_mask, probability_image

LOG = logging.getLogger("hf_iis.space")
MAX_MODEL_PIXELS = int(os.environ.get("HF_IIS_SPACE_MAX_PIXELS", 2_000_000))  # the model sees at most this many
MAX_UPLOAD_PIXELS = 100_000_000  # refused before decoding (decompression bombs)
MAX_CLICKS = 64
MAX_TTA, MAX_TRIANGULATION = 8, 64
CONCURRENCY = int(os.environ.get("HF_IIS_SPACE_CONCURRENCY", 2))
POSITIVE, NEGATIVE = "positive (object)", "negative (background)"
EXAMPLES = ("astronaut", "coffee", "chelsea")  # skimage.data images (never benchmark images)
CSS = "#status {min-height: 3em} #canvas img {cursor: crosshair}"

Segmenter = Callable[..., dict]


# ----------------------------------------------------------------------------- model and images
def resolve_model(model: str | os.PathLike | None) -> str:
    """The checkpoint to load: `model`, else env HF_IIS_MODEL, else the embedded default when it exists."""
    model = model or os.environ.get("HF_IIS_MODEL")
    if model:
        return str(model)
    if (DEFAULT_CHECKPOINT / "config.json").is_file():
        return str(DEFAULT_CHECKPOINT)
    raise FileNotFoundError(f"no model: pass --model FOLDER (or set HF_IIS_MODEL); the embedded default checkpoint "
                            f"{DEFAULT_CHECKPOINT} is not there")


def load_segmenter(model: str | os.PathLike | None = None) -> Segmenter:
    from hf_iis.checkpoint_paths import load_pipeline

    return load_pipeline(resolve_model(model))


def upload_path(value: Any) -> str | None:
    """The file behind an upload (Gradio file payload or its dict, or a path); None for in-memory images."""
    if isinstance(value, FileData):
        value = value.model_dump()
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if isinstance(value, (str, os.PathLike)) else None


def read_upload(value: Any, max_pixels: int = MAX_MODEL_PIXELS) -> tuple[np.ndarray, tuple[int, int], str]:
    """An upload (Gradio file payload, path, PIL image or array) -> (RGB image for the model, uploaded (W, H), name).

    The model image is downscaled to at most `max_pixels`; anything unusable raises ValueError with a message
    meant for the person who uploaded it.
    """
    name, size = "image", None
    if isinstance(value, FileData):
        value = value.model_dump()
    if isinstance(value, dict):
        name = value.get("orig_name") or Path(str(value.get("path"))).name
        value = value.get("path")
    if value is None:
        raise ValueError("no image: upload an image (or pick an example) first")
    if isinstance(value, (str, os.PathLike)):
        name = name if name != "image" else Path(value).name
        value, size = _open_image(Path(value), name, max_pixels)
    image = load_image(value, max_pixels=None)  # RGB uint8; readable ValueError for odd modes and tiny images
    width, height = size or (image.shape[1], image.shape[0])
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        target = (max(8, int(width * scale)), max(8, int(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0))
    return np.ascontiguousarray(image), (int(width), int(height)), name


def _open_image(path: Path, name: str, max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an uploaded file (JPEGs over budget at reduced size); returns it with its displayed (W, H)."""
    if not path.is_file():
        raise ValueError(f"“{name}” was not received; upload it again")
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise ValueError(f"“{name}” is {width}×{height} = {width * height / 1e6:.0f} megapixels; "
                                 f"the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels")
            if opened.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation with a quarter turn
                width, height = height, width
            if opened.format == "JPEG" and width * height > max_pixels:  # decode at 1/2, 1/4 or 1/8 scale,
                scale = math.sqrt(max_pixels / (width * height))  # never below the model's size
                opened.draft("RGB", (math.ceil(opened.size[0] * scale), math.ceil(opened.size[1] * scale)))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        LOG.info("unreadable upload %s: %s", path, error)
        raise ValueError(f"“{name}” is not an image that can be read (corrupt file or unsupported format); "
                         f"upload a PNG, JPEG, WebP, BMP or TIFF image") from None
    return image, (width, height)


def upsample(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) probabilities -> (H, W) at `size` = (W, H), bilinear."""
    if probabilities.shape[::-1] == tuple(size):
        return probabilities.astype(np.float32)
    resized = Image.fromarray(probabilities.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def save_to_cache(image: Image.Image, name: str, format: str = "png") -> str:
    """Write `image` into Gradio's cache as <cache>/<content hash>/<name>.<format>, atomically.

    Gradio's own `save_pil_to_cache` rewrites a content-addressed file in place, so two visitors (or two API calls)
    producing the same picture at once can be served a half-written file; a staged write plus rename cannot.
    """
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    data = buffer.getvalue()
    folder = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest()[:40]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{format}"
    if not path.is_file():
        descriptor, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    return str(path)


def _as_cached_files(handler: Callable) -> Callable:
    """Wrap a UI handler so that the PIL images it returns reach Gradio as files written by `save_to_cache`."""
    names = ("state", "canvas", "probability", "uncertainty", "mask", "status", "details")

    def convert(value, name):
        if isinstance(value, Image.Image):
            return save_to_cache(value, name, "png" if name == "mask" else "webp")
        if isinstance(value, dict) and isinstance(value.get("value"), Image.Image):
            return {**value, "value": convert(value["value"], name)}
        return value

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        out = handler(*args, **kwargs)
        return tuple(convert(value, name) for value, name in zip(out, names[len(names) - len(out):]))

    return wrapper


# ----------------------------------------------------------------------------- per-session state
def empty_state() -> dict:
    return {"image": None, "size": None, "name": None, "clicks": [], "steps": []}


class Handlers:
    """The UI's event handlers; every per-visitor value comes in and goes out through `state`."""

    def __init__(self, segmenter: Segmenter, max_pixels: int = MAX_MODEL_PIXELS) -> None:
        self.segmenter = segmenter
        self.max_pixels = max_pixels
        self.lock = threading.Lock()  # the pipeline's predictor caches one image: one call at a time

    # ---- model call
    def predict(self, image: np.ndarray, clicks: list, prev: np.ndarray | None, tta: int, triangulation: int) -> dict:
        predictor = getattr(self.segmenter, "predictor", None)
        with self.lock:
            before = getattr(predictor, "encode_count", None)
            start = time.perf_counter()
            out = self.segmenter(image, clicks=[tuple(c) for c in clicks], tta=int(tta),
                                 triangulation=int(triangulation), prev_mask=prev, return_uncertainty=True)
            wall = time.perf_counter() - start
            after = getattr(predictor, "encode_count", None)
        uncertainty = out.get("uncertainty")
        return {
            "probs": np.asarray(out["probabilities"], dtype=np.float32).astype(np.float16),
            "unc": None if uncertainty is None else np.asarray(uncertainty, dtype=np.float32).astype(np.float16),
            "score": float(out.get("score", 0.0)),
            "seconds": wall,  # what the visitor waits for: the pipeline call, pre- and post-processing included
            "model_seconds": float(out.get("seconds", wall)),
            "encoder_runs": after,
            "encoded": None if before is None else after - before,
            "tta": int(tta),
            "triangulation": int(triangulation),
        }

    # ---- events
    def load(self, value: Any, show_prob: bool, show_unc: bool, state: dict | None = None) -> tuple:
        if value is None:
            return (empty_state(), *self.render(empty_state(), show_prob, show_unc))
        key = upload_path(value)
        if key is not None and state is not None and key == state.get("failed_upload"):
            # Gradio fires `change` again for an upload its preview cannot show: one message per bad file
            return tuple(gr.skip() for _ in range(7))
        try:
            image, size, name = read_upload(value, self.max_pixels)
        except ValueError as error:
            return self.fail({**empty_state(), "failed_upload": key}, str(error), show_prob, show_unc)
        state = {**empty_state(), "image": image, "size": size, "name": name}
        height, width = image.shape[:2]
        note = f"**{name}** ({size[0]}×{size[1]}) loaded."
        if (width, height) != size:
            note += (f" It is over the model's budget of {self.max_pixels / 1e6:.1f} MP: the model sees "
                     f"{width}×{height} and masks are upsampled back to {size[0]}×{size[1]}.")
        return (state, *self.render(state, show_prob, show_unc, note + " Choose positive or negative and click."))

    def click(self, state: dict, x: float, y: float, sign: str, tta: int, triangulation: int, show_prob: bool,
              show_unc: bool) -> tuple:
        if state is None or state.get("image") is None:
            return self.fail(state or empty_state(), "Upload an image (or pick an example) before clicking.",
                             show_prob, show_unc)
        if len(state["clicks"]) >= MAX_CLICKS:
            return self.fail(state, f"That is {MAX_CLICKS} clicks, the most one mask takes: undo or reset.",
                             show_prob, show_unc)
        height, width = state["image"].shape[:2]
        click = (int(np.clip(round(float(x)), 0, width - 1)), int(np.clip(round(float(y)), 0, height - 1)),
                 -1 if sign == NEGATIVE else 1)
        clicks = [*state["clicks"], click]
        prev = state["steps"][-1]["probs"].astype(np.float32) if state["steps"] else None
        return self._run(state, clicks, prev, state["steps"], tta, triangulation, show_prob, show_unc)

    def select(self, state: dict, sign: str, tta: int, triangulation: int, show_prob: bool, show_unc: bool,
               evt: gr.SelectData) -> tuple:
        x, y = evt.index[:2]
        return self.click(state, x, y, sign, tta, triangulation, show_prob, show_unc)

    def rerun(self, state: dict, tta: int, triangulation: int, show_prob: bool, show_unc: bool) -> tuple:
        """New slider values: recompute the last click's prediction (from the same previous mask)."""
        if not state or not state.get("steps"):
            return (state or empty_state(), *self.render(state or empty_state(), show_prob, show_unc))
        steps = state["steps"][:-1]
        prev = steps[-1]["probs"].astype(np.float32) if steps else None
        return self._run(state, state["clicks"], prev, steps, tta, triangulation, show_prob, show_unc)

    def undo(self, state: dict, show_prob: bool, show_unc: bool) -> tuple:
        if not state or not state.get("clicks"):
            return self.fail(state or empty_state(), "Nothing to undo.", show_prob, show_unc)
        state = {**state, "clicks": state["clicks"][:-1], "steps": state["steps"][:-1]}
        return (state, *self.render(state, show_prob, show_unc, "Last click undone."))

    def reset(self, state: dict, show_prob: bool, show_unc: bool) -> tuple:
        state = {**(state or empty_state()), "clicks": [], "steps": []}
        message = "Clicks cleared." if state["image"] is not None else None
        return (state, *self.render(state, show_prob, show_unc, message))

    def toggle(self, state: dict, show_prob: bool, show_unc: bool) -> tuple:
        return self.render(state or empty_state(), show_prob, show_unc)

    def _run(self, state, clicks, prev, steps, tta, triangulation, show_prob, show_unc) -> tuple:
        try:
            step = self.predict(state["image"], clicks, prev, tta, triangulation)
        except ValueError as error:
            return self.fail(state, str(error), show_prob, show_unc)
        except Exception as error:  # never a stack trace in the page; the log has it
            LOG.exception("prediction failed")
            return self.fail(state, f"The model failed on this input ({type(error).__name__}: {error}).",
                             show_prob, show_unc)
        state = {**state, "clicks": clicks, "steps": [*steps, step]}
        return (state, *self.render(state, show_prob, show_unc))

    def fail(self, state: dict, message: str, show_prob: bool, show_unc: bool) -> tuple:
        gr.Warning(message)
        return (state, *self.render(state, show_prob, show_unc, f"⚠️ {message}"))

    # ---- outputs: canvas, probability map, uncertainty map, full-size mask, status, details
    def render(self, state: dict, show_prob: bool, show_unc: bool, message: str | None = None) -> tuple:
        image, clicks, steps = state["image"], state["clicks"], state["steps"]
        prob_map = gr.update(visible=bool(show_prob), value=None)
        unc_map = gr.update(visible=bool(show_unc), value=None)
        if image is None:
            return (None, prob_map, unc_map, None, message or "Upload an image or pick an example.",
                    json.dumps({"n_clicks": 0, "clicks": []}))
        step = steps[-1] if steps else None
        probs = None if step is None else step["probs"].astype(np.float32)
        mask = np.zeros(image.shape[:2], bool) if probs is None else probs >= 0.5
        canvas = overlay_mask(image, mask, clicks)
        full_mask = None
        if probs is not None:
            full_mask = Image.fromarray(np.where(upsample(probs, state["size"]) >= 0.5, 255, 0).astype(np.uint8))
            if show_prob:
                prob_map = gr.update(visible=True, value=probability_image(probs))
            if show_unc and step["unc"] is not None:
                unc_map = gr.update(visible=True, value=probability_image(step["unc"].astype(np.float32)))
        details = {
            "image_size": list(state["size"]),
            "model_size": [image.shape[1], image.shape[0]],
            "n_clicks": len(clicks),
            "clicks": [list(c) for c in clicks],
            "mask_area": int(mask.sum()),
            "mask_fraction": round(float(mask.mean()), 5),
            "mask_at_last_click": bool(mask[clicks[-1][1], clicks[-1][0]]) if clicks and step else None,
            "mask_size": None if full_mask is None else list(full_mask.size),
        }
        if step is not None:
            details.update({k: step[k] for k in ("encoder_runs", "tta", "triangulation")})
            details.update({k: round(step[k], 4) for k in ("score", "seconds", "model_seconds")})
            details["embedding"] = None if step["encoded"] is None else ("cached" if step["encoded"] == 0 else
                                                                         "computed")
        return (canvas, prob_map, unc_map, full_mask, message or self.status(details), json.dumps(details))

    @staticmethod
    def status(details: dict) -> str:
        clicks = details["clicks"]
        if not clicks:
            return "Click on the object: a positive click adds to the mask, a negative click removes."
        positive = sum(1 for c in clicks if c[2] > 0)
        text = (f"**{len(clicks)} click{'s' * (len(clicks) > 1)}** ({positive} +, {len(clicks) - positive} −) · "
                f"prediction **{details['seconds']:.3f} s** (TTA {details['tta']}, triangulation "
                f"{details['triangulation']}) · mask {100 * details['mask_fraction']:.1f} % · "
                f"score {details['score']:.2f}")
        if details.get("embedding"):
            text += f" · image embedding {details['embedding']} (encoder runs: {details['encoder_runs']})"
        return text

    # ---- programmatic endpoint
    def segment(self, image: FileData, clicks: str, tta: int = 1, triangulation: int = 0) -> tuple[FileData, float]:
        """Segment an image from signed clicks.

        clicks: JSON list [[x, y, 1], [x, y, -1]] in pixels of the uploaded image (x = column, y = row; +1 object,
        -1 background). tta: 1..8 views; triangulation: 0..64 auxiliary pixels. Returns the mask (PNG, 0/255, the
        uploaded image's size) and its score (mean probability inside the mask).
        """
        try:
            working, size, _ = read_upload(image, self.max_pixels)
            parsed = json.loads(clicks) if isinstance(clicks, str) else clicks
            parsed = validate_clicks(parsed, *size)
            if not (1 <= int(tta) <= MAX_TTA and 0 <= int(triangulation) <= MAX_TRIANGULATION):
                raise ValueError(f"tta must be in 1..{MAX_TTA} and triangulation in 0..{MAX_TRIANGULATION}")
            height, width = working.shape[:2]
            sx, sy = width / size[0], height / size[1]
            scaled = [(min(max((x + 0.5) * sx - 0.5, 0), width - 1), min(max((y + 0.5) * sy - 0.5, 0), height - 1),
                       s) for x, y, s in parsed]
            step = self.predict(working, scaled, None, tta, triangulation)
        except json.JSONDecodeError as error:
            raise gr.Error(f"clicks must be JSON like [[x, y, 1], [x, y, -1]] ({error})") from None
        except ValueError as error:
            raise gr.Error(str(error)) from None
        probs = upsample(step["probs"].astype(np.float32), size)
        mask = Image.fromarray(np.where(probs >= 0.5, 255, 0).astype(np.uint8))
        return FileData(path=save_to_cache(mask, "mask"), orig_name="mask.png", mime_type="image/png"), step["score"]


# ----------------------------------------------------------------------------- the app
def example_paths() -> list[str]:
    """The skimage.data example photos, written once as PNG files."""
    import skimage.data

    folder = Path(tempfile.gettempdir()) / "hf_iis_space_examples"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in EXAMPLES:
        path = folder / f"{name}.png"
        if not path.is_file():
            Image.fromarray(getattr(skimage.data, name)()).save(path)
        paths.append(str(path))
    return paths


def build_demo(model: str | os.PathLike | None = None, segmenter: Segmenter | None = None,
               max_pixels: int = MAX_MODEL_PIXELS, concurrency: int = CONCURRENCY) -> gr.Blocks:
    """The Space's Blocks app: `model` folder (None: HF_IIS_MODEL, then the embedded default) or a `segmenter`."""
    handlers = Handlers(segmenter or load_segmenter(model), max_pixels)
    # analytics off: the Space makes no outside connection (Gradio's telemetry and version check are on by default)
    with gr.Blocks(title="Signed-click interactive segmentation", delete_cache=(3600, 3600),
                   analytics_enabled=False) as demo:
        demo.handlers = handlers
        gr.Markdown("# Signed-click interactive segmentation\nUpload an image, then click on the object "
                    "(**positive**) or on what should not be in it (**negative**). Each click refines the mask; "
                    "more TTA views and triangulation pixels trade time for accuracy.")
        state = gr.State(empty_state(), time_to_live=3600)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.Image(label="1 · Image", type="filepath", sources=["upload", "clipboard"], height=260,
                                  elem_id="upload")
                gr.Examples(example_paths(), inputs=[upload], label="Examples (scikit-image)")
                sign = gr.Radio([POSITIVE, NEGATIVE], value=POSITIVE, label="Next click is", elem_id="sign")
                with gr.Row():
                    undo = gr.Button("Undo last click", elem_id="undo")
                    reset = gr.Button("Reset clicks", elem_id="reset")
                tta = gr.Slider(1, MAX_TTA, value=1, step=1, label="TTA views", elem_id="tta")
                triangulation = gr.Slider(0, MAX_TRIANGULATION, value=0, step=1, label="Triangulation pixels",
                                          elem_id="triangulation")
                with gr.Row():
                    show_prob = gr.Checkbox(label="Show probability map", elem_id="show_prob")
                    show_unc = gr.Checkbox(label="Show uncertainty map", elem_id="show_unc")
            with gr.Column(scale=2):
                canvas = gr.Image(label="2 · Click on the object", interactive=False, elem_id="canvas",
                                  buttons=["fullscreen"])
                status = gr.Markdown("Upload an image or pick an example.", elem_id="status")
                with gr.Row():
                    prob_map = gr.Image(label="Probability", interactive=False, visible=False, elem_id="prob_map")
                    unc_map = gr.Image(label="Uncertainty", interactive=False, visible=False, elem_id="unc_map")
                with gr.Accordion("Mask at the uploaded size, and details", open=False):
                    mask = gr.Image(label="Mask", interactive=False, format="png", type="pil", height=240,
                                    elem_id="mask")
                    details = gr.Textbox(label="Details (JSON)", interactive=False, lines=3, elem_id="details")
        outputs = [state, canvas, prob_map, unc_map, mask, status, details]
        toggles = [show_prob, show_unc]
        files = _as_cached_files
        upload.change(files(handlers.load), [upload, *toggles, state], outputs, preprocess=False,
                      api_visibility="private")
        canvas.select(files(handlers.select), [state, sign, tta, triangulation, *toggles], outputs,
                      api_visibility="private", show_progress="minimal")
        for slider in (tta, triangulation):  # `input`: a drag and a value typed in the box both rerun (once, last)
            slider.input(files(handlers.rerun), [state, tta, triangulation, *toggles], outputs,
                         api_visibility="private", trigger_mode="always_last")
        undo.click(files(handlers.undo), [state, *toggles], outputs, api_visibility="private")
        reset.click(files(handlers.reset), [state, *toggles], outputs, api_visibility="private")
        for toggle in toggles:
            toggle.change(files(handlers.toggle), [state, *toggles], outputs[1:], api_visibility="private")
        gr.api(handlers.segment, api_name="segment")
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo


def launch_kwargs() -> dict:
    """Keyword arguments for `demo.launch` (Gradio 6 takes theme and css there)."""
    return {"theme": gr.themes.Soft(), "css": CSS, "max_file_size": "50mb", "show_error": False, "ssr_mode": False}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint folder (default: HF_IIS_MODEL, then the embedded "
                                                       "default model)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    try:
        demo = build_demo(args.model)
    except (FileNotFoundError, OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs())


if __name__ == "__main__":
    main()
