"""Where the embedded default checkpoint lives, resolution of user-given checkpoint locations, and loading them."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def resolve_checkpoint(path: str | Path | None) -> str:
    """A checkpoint folder or hub repo id to load from; None means the embedded default model.

    A local folder must hold `config.json` and safetensors weights; otherwise FileNotFoundError names what is missing.
    A string that is not an existing path is passed on as a hub repo id.
    """
    if path is None:
        path = DEFAULT_CHECKPOINT
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"the embedded default checkpoint is missing from {path}; reinstall hf-iis or pass model=<folder>"
            )
    folder = Path(path)
    if folder.exists():
        if not folder.is_dir():
            raise FileNotFoundError(f"checkpoint {folder} is a file; pass the folder that holds config.json")
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"checkpoint folder {folder} has no config.json")
        if not any((folder / name).is_file() for name in WEIGHT_FILES):
            raise FileNotFoundError(
                f"checkpoint folder {folder} has no weights: expected one of {', '.join(WEIGHT_FILES)}"
            )
        return str(folder)
    if str(path).startswith((".", "/", "~")) or Path(str(path)).suffix:
        raise FileNotFoundError(f"checkpoint folder not found: {path}")
    return str(path)


def load_checkpoint(path: str | Path | None = None):
    """(SignedClickModel, SignedClickImageProcessor) from a checkpoint folder, a hub repo id or None (the default).

    Loading goes through this package's classes, so a folder written for the hub (`hf-iis export`, with `auto_map`
    and `custom_pipelines` for trust_remote_code) loads like any checkpoint, and damaged or unreachable weights
    raise ValueError naming the checkpoint instead of a loader traceback.
    """
    from safetensors import SafetensorError

    from .image_processing_signed_click import SignedClickImageProcessor
    from .modeling_signed_click import SignedClickModel

    source = resolve_checkpoint(path)
    try:
        return SignedClickModel.from_pretrained(source), SignedClickImageProcessor.from_pretrained(source)
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot load checkpoint {source}: {first_line}") from error


def load_pipeline(path: str | Path | None = None, **pipeline_kwargs):
    """`pipeline("interactive-segmentation")` on `load_checkpoint(path)`; keywords (tta=..., device=...) go to it."""
    from transformers import pipeline  # the task is registered by hf_iis/__init__.py, imported before this module

    model, processor = load_checkpoint(path)
    return pipeline("interactive-segmentation", model=model, image_processor=processor, **pipeline_kwargs)
