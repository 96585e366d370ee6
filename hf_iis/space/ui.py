"""The Space's Blocks app (`build_demo`), its launch options, and the command line behind `spaces/app.py`.

    python spaces/app.py [--model FOLDER] [--device cuda] [--dtype bfloat16] [--host 127.0.0.1] [--port 7860]

The model's device and precision come from --device / --dtype, else HF_IIS_DEVICE / HF_IIS_DTYPE (default: the CPU
in float32), and are checked before the model loads (`placement`).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image

from ..checkpoint_paths import load_pipeline, resolve_checkpoint
from .handlers import (
    DEFAULT_ZOOM,
    MAX_TRIANGULATION,
    MAX_TTA,
    NEGATIVE,
    POSITIVE,
    ZOOM_CHOICES,
    Handlers,
    Segmenter,
)
from .placement import placement
from .rendering import as_cached_files
from .session import Session
from .uploads import MAX_MODEL_PIXELS

CONCURRENCY = int(os.environ.get("HF_IIS_SPACE_CONCURRENCY", 2))
EXAMPLES = ("astronaut", "coffee", "chelsea")  # skimage.data images (never benchmark images)
CSS = "#status {min-height: 3em} #canvas img {cursor: crosshair}"
LOG = logging.getLogger("hf_iis.space")
SESSION_QUEUE = "session"  # the queue group of the events that change a visitor's session (see build_demo)


def resolve_model(model: str | os.PathLike | None) -> str:
    """The checkpoint to load: `model`, else env HF_IIS_MODEL, else the embedded default (`resolve_checkpoint`'s
    checks: a missing folder is a FileNotFoundError naming it)."""
    model = model or os.environ.get("HF_IIS_MODEL") or None
    try:
        return resolve_checkpoint(model)
    except FileNotFoundError as error:
        if model is None:
            raise FileNotFoundError(f"no model: pass --model FOLDER (or set HF_IIS_MODEL); {error}") from None
        raise


def load_segmenter(model: str | os.PathLike | None = None, device=None, dtype=None) -> Segmenter:
    """The pipeline on `model` (`resolve_model`), placed on `device` in `dtype` (None: HF_IIS_DEVICE / HF_IIS_DTYPE,
    else as loaded); both are checked first, so a device the machine lacks is one ValueError before any loading."""
    device, dtype = placement(device, dtype)
    segmenter = load_pipeline(resolve_model(model), device=device, dtype=dtype)
    LOG.info("model on %s in %s", segmenter.model.device, segmenter.model.dtype)
    return segmenter


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
               max_pixels: int = MAX_MODEL_PIXELS, concurrency: int = CONCURRENCY, device=None,
               dtype=None) -> gr.Blocks:
    """The Space's Blocks app: `model` folder (None: HF_IIS_MODEL, then the embedded default) on `device` in `dtype`
    (`load_segmenter`), or a `segmenter`."""
    handlers = Handlers(segmenter or load_segmenter(model, device, dtype), max_pixels)
    # analytics off: the Space makes no outside connection (Gradio's telemetry and version check are on by default)
    with gr.Blocks(title="Signed-click interactive segmentation", delete_cache=(3600, 3600),
                   analytics_enabled=False) as demo:
        demo.handlers = handlers
        gr.Markdown("# Signed-click interactive segmentation\nUpload an image, then click on the object "
                    "(**positive**) or on what should not be in it (**negative**). Each click refines the mask; "
                    "more TTA views and triangulation pixels trade time for accuracy.")
        state = gr.State(Session(), time_to_live=3600)
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
                zoom = gr.Radio(list(ZOOM_CHOICES), value=DEFAULT_ZOOM, elem_id="zoom",
                                label="Zoom in (refine on a crop around the mask; auto: from the 2nd click)")
                with gr.Row():
                    show_prob = gr.Checkbox(label="Show probability map", elem_id="show_prob")
                    show_unc = gr.Checkbox(label="Show uncertainty map (TTA ≥ 2 or triangulation > 0)",
                                           elem_id="show_unc")
            with gr.Column(scale=2):
                canvas = gr.Image(label="2 · Click on the object", interactive=False, elem_id="canvas",
                                  buttons=["fullscreen"])
                status = gr.Markdown("Upload an image or pick an example.", elem_id="status")
                # a multi-map model's answers to the last click, best first; hidden while there is one answer
                answers = gr.Radio([], label="Answers to the last click (best first): pick one",
                                   visible=False, elem_id="answers")
                with gr.Row():
                    prob_map = gr.Image(label="Probability", interactive=False, visible=False, elem_id="prob_map")
                    unc_map = gr.Image(label="Uncertainty", interactive=False, visible=False, elem_id="unc_map")
                with gr.Accordion("Mask at the uploaded size, and details", open=False):
                    mask = gr.Image(label="Mask", interactive=False, format="png", type="pil", height=240,
                                    elem_id="mask")
                    details = gr.Textbox(label="Details (JSON)", interactive=False, lines=3, elem_id="details")
        outputs = [state, canvas, prob_map, unc_map, mask, answers, status, details]
        toggles = [show_prob, show_unc]
        files = as_cached_files
        # Every event that reads the session and writes a new one runs in one queue group, one at a time, in the
        # order the events came: Gradio reads a gr.State when the event starts, so two of them running together
        # would both start from the same session and the later write would drop the other's click. Clicks,
        # undo, reset and picking an answer are "multiple" (each one queued, none dropped while a prediction
        # runs; "once", the default, ignores them). The model runs one call at a time anyway (`Handlers.lock`).
        # Progress is "minimal" for all but the upload: the full progress overlay covers the canvas and swallows
        # clicks.
        ordered = {"concurrency_id": SESSION_QUEUE, "concurrency_limit": 1, "api_visibility": "private"}
        upload.change(files(handlers.load), [upload, *toggles, state], outputs, preprocess=False, **ordered)
        ordered["show_progress"] = "minimal"
        canvas.select(files(handlers.select), [state, sign, tta, triangulation, *toggles, zoom], outputs,
                      trigger_mode="multiple", **ordered)
        for slider in (tta, triangulation, zoom):  # `input`: a drag, a typed value or a pick reruns (once, last)
            slider.input(files(handlers.rerun), [state, tta, triangulation, *toggles, zoom], outputs,
                         trigger_mode="always_last", **ordered)
        undo.click(files(handlers.undo), [state, *toggles], outputs, trigger_mode="multiple", **ordered)
        reset.click(files(handlers.reset), [state, *toggles], outputs, trigger_mode="multiple", **ordered)
        # `input`, not `change`: the other events set the radio's value, and that must not pick an answer again.
        # No preprocessing: Gradio would refuse a pick made on the previous click's list (no longer among the
        # choices) with its own error; `choose` tells the visitor to pick again.
        answers.input(files(handlers.choose), [state, answers, *toggles], outputs, trigger_mode="multiple",
                      preprocess=False, **ordered)
        show_prob.change(as_cached_files(handlers.toggle_probability, ("probability",)), [state, show_prob],
                         [prob_map], api_visibility="private")
        show_unc.change(as_cached_files(handlers.toggle_uncertainty, ("uncertainty", "status")), [state, show_unc],
                        [unc_map, status], api_visibility="private")
        gr.api(handlers.segment, api_name="segment")
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    return demo


def launch_kwargs() -> dict:
    """Keyword arguments for `demo.launch` (Gradio 6 takes theme and css there)."""
    return {"theme": gr.themes.Soft(), "css": CSS, "max_file_size": "50mb", "show_error": False, "ssr_mode": False}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gradio Space: click on an image (positive or negative) and the "
                                                 "mask follows.")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: HF_IIS_MODEL, then the embedded "
                                                       "default model)")
    parser.add_argument("--device", default=None, help="where the model runs: cpu, cuda, cuda:1, mps (default: "
                                                        "HF_IIS_DEVICE, then the CPU)")
    parser.add_argument("--dtype", default=None, help="the model's precision: float32, bfloat16 or float16 "
                                                       "(default: HF_IIS_DTYPE, then float32)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    try:
        demo = build_demo(args.model, device=args.device, dtype=args.dtype)
    except (FileNotFoundError, OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs())
