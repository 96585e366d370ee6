"""The Gradio Space as a package module: click on an image (positive or negative) and the mask follows.

    from hf_iis.space import build_demo, launch_kwargs
    build_demo(model=None).launch(**launch_kwargs())     # what `python spaces/app.py` runs
    build_demo(model, device="cuda", dtype="bfloat16")   # or --device / --dtype, HF_IIS_DEVICE / HF_IIS_DTYPE

Modules:
    uploads   decoding a visitor's file (`read_upload`), with messages meant for that visitor
    session   `Session` (one visitor's image, clicks and steps, kept in a `gr.State`) and `Step` (one prediction)
    rendering probability / uncertainty maps with their colour legend, hint cards, masks, files in Gradio's cache
    handlers  `Handlers`: the UI's events and the `/segment` endpoint over the shared pipeline; a multi-map model's
              answers to each click are offered best first to pick from (`choose`)
    placement the model's device and dtype (arguments, else HF_IIS_DEVICE / HF_IIS_DTYPE), checked at start-up
    ui        `build_demo()` (the Blocks app), `launch_kwargs()`, `main()` (the command line)

Clicks are (x, y) = (column, row) in pixels of the image the model sees: an upload over `max_pixels` is downscaled
for the model, and masks are upsampled back to the uploaded size. The `/segment` endpoint (`gr.api`) takes clicks in
uploaded-image pixels as JSON, `[[x, y, 1], [x, y, -1]]`, and returns the mask as a PNG and its score. Needs the
`space` extra (gradio); `import hf_iis` never imports this package.
"""

from .handlers import MAX_CLICKS, MAX_TRIANGULATION, MAX_TTA, NEGATIVE, POSITIVE, Handlers
from .session import Session, Step
from .ui import build_demo, example_paths, launch_kwargs, load_segmenter, main, resolve_model
from .uploads import MAX_MODEL_PIXELS, MAX_UPLOAD_PIXELS, Upload, read_upload, upload_path

__all__ = [
    "MAX_CLICKS", "MAX_MODEL_PIXELS", "MAX_TRIANGULATION", "MAX_TTA", "MAX_UPLOAD_PIXELS", "NEGATIVE", "POSITIVE",
    "Handlers", "Session", "Step", "Upload", "build_demo", "example_paths", "launch_kwargs", "load_segmenter", "main",
    "read_upload", "resolve_model", "upload_path",
]
