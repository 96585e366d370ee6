"""Write a self-contained hub folder: weights, configs and the code, loadable with `trust_remote_code=True`.

The folder's config carries `auto_map` (AutoConfig / AutoModel / AutoImageProcessor) and `custom_pipelines`
("interactive-segmentation"), and the package's module files are copied beside the weights, so

    pipeline(model=folder, trust_remote_code=True)

works in a Python process where `hf_iis` is not installed. Package-local checkpoints never get these keys: a folder
with `custom_pipelines` requires `trust_remote_code=True` even after `import hf_iis`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers import AutoModel

from .pipeline_interactive_segmentation import InteractiveSegmentationPipeline

TASK = "interactive-segmentation"


def export_hub_folder(checkpoint: str | Path | None, out_dir: str | Path, model_card: str | None = None) -> Path:
    """Export `checkpoint` (a package-local teacher or student folder; None = the embedded default) to `out_dir`
    for the hub. The student's folder carries its own classes in `auto_map`, so the same pipeline line loads it."""
    from .checkpoint_paths import load_checkpoint, resolve_checkpoint

    folder = resolve_checkpoint(checkpoint)
    out = Path(out_dir)
    model, processor = load_checkpoint(folder)  # the model class is chosen by the config's model_type
    if out.exists():
        shutil.rmtree(out)
    registered = (type(model.config), type(model), type(processor))
    try:
        type(model.config).register_for_auto_class()
        type(model).register_for_auto_class("AutoModel")
        type(processor).register_for_auto_class("AutoImageProcessor")
        pipe = InteractiveSegmentationPipeline(model=model, image_processor=processor)
        # What transformers' pipeline() attaches to registered pipelines; save_pretrained turns it into
        # config.custom_pipelines and copies the pipeline module (and everything it imports relatively).
        pipe._registered_impl = {
            TASK: {"impl": InteractiveSegmentationPipeline, "pt": (AutoModel,), "tf": (), "type": "image",
                   "default": {}}
        }
        pipe.save_pretrained(out)
    finally:
        for cls in registered:  # keep later package-local saves free of auto_map
            cls._auto_class = None
    # transformers writes the weights through a private temporary file (mode 0600): give them the mode every other
    # file got from the umask (0644 under the usual 022)
    for weights in out.glob("model*.safetensors*"):
        shutil.copymode(out / "config.json", weights)
    if model_card is not None:
        (out / "README.md").write_text(model_card)
    return out
