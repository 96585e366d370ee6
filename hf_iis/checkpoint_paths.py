"""Where the embedded default checkpoint lives, and resolution of user-given checkpoint locations."""

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
