"""Shared fixtures: a tiny random checkpoint, the real-data root, and a real image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("HF_IIS_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))


def load_script(name: str):
    """`scripts/<name>.py` imported as a module (scripts are not a package), so tests can call its `main(argv)`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_data(*parts: str) -> Path:
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set HF_IIS_DATA_ROOT)")
    return path


@pytest.fixture(scope="session")
def data_root() -> Path:
    return require_data()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny model (64 px input) saved the way training saves it."""
    import hf_iis

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    config = hf_iis.SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False)
    model = hf_iis.SignedClickModel(config).eval()
    model.save_pretrained(folder)
    hf_iis.SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def grabcut_image() -> np.ndarray:
    """A real photo (the first GrabCut .jpg, 481x321) as (H, W, 3) uint8."""
    folder = require_data("GrabCut", "data_GT")
    path = sorted(folder.glob("*.jpg"))[0]
    return np.asarray(Image.open(path).convert("RGB"))
