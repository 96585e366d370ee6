"""Where the embedded default checkpoint lives, resolution of user-given checkpoint locations, and loading them."""

from __future__ import annotations

import os
import re
import socket
from contextlib import contextmanager
from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
# The distilled feature-space student of the default model (docs/results_student.md): faster, less accurate.
STUDENT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "student"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def resolve_checkpoint(path: str | Path | None) -> str:
    """A checkpoint folder or hub repo id to load from; None means the embedded default model.

    A local folder must hold `config.json` and safetensors weights; otherwise FileNotFoundError names what is missing.
    A string that is not an existing path goes to the hub only when it reads as a hub repo id, `owner/name`
    (`looks_like_hub_repo_id`); anything else (`hub_foldr`, `./x`, `/tmp/x`, `outputs/typo` where `outputs/` exists)
    is a local folder that is not there: FileNotFoundError naming it, at once, with no hub lookup.
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
    text = str(path)
    if not looks_like_hub_repo_id(text):
        owner, hint = text.split("/")[0], ""
        if "/" not in text:
            hint = " (a hub repo id has the form owner/name)"
        elif text.count("/") == 1 and owner and Path(owner).is_dir():  # "/x" has no owner part: not a hub id
            hint = f" ({owner}/ is a local folder, so this is read as a path, not as a hub repo id)"
        raise FileNotFoundError(f"checkpoint folder not found: {text}{hint}")
    return text


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the hub's endpoint opens within `timeout` seconds (or a proxy is configured,
    which this probe cannot go through: the hub client then decides)."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def hub_source(repo_id: str) -> str:
    """`repo_id` when the hub can be asked; its cached snapshot folder when offline (`HF_HUB_OFFLINE`) or the hub
    is unreachable; else FileNotFoundError in one line, at once, instead of the hub client's retries (about 30 s)."""
    offline = _offline()
    if not offline and hub_reachable():
        return repo_id
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if offline:
        raise FileNotFoundError(f"checkpoint {repo_id}: HF_HUB_OFFLINE is set and this hub repo is not in the local "
                                f"cache; pass a local checkpoint folder, or unset HF_HUB_OFFLINE to download it")
    from huggingface_hub import constants

    raise FileNotFoundError(f"checkpoint {repo_id}: cannot reach the Hugging Face Hub ({constants.ENDPOINT}) and this "
                            f"hub repo is not in the local cache; check the network, or pass a local checkpoint folder")


def is_embedded_default(path: str | Path | None) -> bool:
    """True for None and for the embedded default checkpoint's folder, however it is spelled."""
    if path is None:
        return True
    try:
        return Path(path).resolve() == DEFAULT_CHECKPOINT
    except (OSError, RuntimeError, TypeError, ValueError):
        return False


@contextmanager
def quiet_default_loading(path: str | Path | None):
    """No "Loading weights" progress bar while the embedded default loads (it is the documented way to use the
    pipeline, and loads in a blink); other checkpoints keep it. transformers' setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    if not is_embedded_default(path) or not hf_logging.is_progress_bar_enabled():
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

    hub_bars_were_off = are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # also turns the hub's bars off
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
        if hub_bars_were_off:
            disable_progress_bars()


_REPO_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def looks_like_hub_repo_id(text: str) -> bool:
    """True for `owner/name` (hub characters, no `..`) whose `owner` is not a local folder: what `resolve_checkpoint`
    passes on to the hub. One-part names, paths starting with `.`, `/` or `~`, and deeper paths are local."""
    parts = text.split("/")
    if len(parts) != 2 or ".." in text or not all(_REPO_ID_PART.fullmatch(part) for part in parts):
        return False
    return not Path(parts[0]).is_dir()


def _model_type(source: str) -> str | None:
    """The `model_type` in a checkpoint's config.json (a folder, or a hub repo id)."""
    from transformers import PretrainedConfig

    return PretrainedConfig.get_config_dict(source)[0].get("model_type")


def load_checkpoint(path: str | Path | None = None, *, device=None, dtype=None):
    """(SignedClickModel, SignedClickImageProcessor) from a checkpoint folder, a hub repo id or None (the default);
    a student checkpoint (model_type "signed_click_student") gives a SignedClickStudentModel instead.

    `device` ('cpu', 'cuda', 'cuda:1', 0, a torch.device) and `dtype` (torch.float32 / bfloat16 / float16 or their
    names) place the model; both are checked before anything loads (`inference/devices.py`): a device this machine
    lacks is one ValueError naming the ones it has.

    Loading goes through this package's classes, so a folder written for the hub (`hf-iis export`, with `auto_map`
    and `custom_pipelines` for trust_remote_code) loads like any checkpoint, and damaged or unreachable weights
    raise ValueError naming the checkpoint instead of a loader traceback.
    """
    from safetensors import SafetensorError

    from .inference.devices import check_device, check_dtype, place_model
    from .models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from .models.signed_click.modeling_signed_click import SignedClickModel

    device, dtype = check_device(device), check_dtype(dtype)
    source = resolve_checkpoint(path)
    if not Path(source).is_dir():  # a hub repo id: offline or unreachable, its cached copy or one line at once
        source = hub_source(source)
    try:
        model_class = SignedClickModel
        if _model_type(source) == "signed_click_student":  # the distilled student (modeling_signed_click_student)
            from .models.student.modeling_signed_click_student import SignedClickStudentModel as model_class
        with quiet_default_loading(source):
            model = model_class.from_pretrained(source)
        processor = SignedClickImageProcessor.from_pretrained(source)
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot load checkpoint {source}: {first_line}") from error
    return place_model(model, device, dtype), processor


def load_pipeline(path: str | Path | None = None, *, device=None, dtype=None, torch_dtype=None, **pipeline_kwargs):
    """`pipeline("interactive-segmentation")` on `load_checkpoint(path, device=, dtype=)`; the other keywords
    (tta=..., max_pixels=...) go to it. `torch_dtype` is the older name of `dtype`."""
    from transformers import pipeline

    from . import _register_with_transformers

    if torch_dtype is not None:
        if dtype is not None:
            raise ValueError("pass dtype or torch_dtype (its older name), not both")
        dtype = torch_dtype
    _register_with_transformers()  # the "interactive-segmentation" task (hf_iis/__init__.py)
    model, processor = load_checkpoint(path, device=device, dtype=dtype)
    # the model is already placed; transformers' pipeline would otherwise move it back to its default device
    return pipeline("interactive-segmentation", model=model, image_processor=processor, device=model.device,
                    **pipeline_kwargs)
