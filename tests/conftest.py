"""Shared fixtures: a tiny random checkpoint, the real-data root, a photo (scikit-image's, never skipped) and a
benchmark image; and the guard that fails any test which looks up a host outside this machine."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# No outside connections from the test suite (nor from the subprocesses it starts). Both are read once, when gradio
# and huggingface_hub are first imported: by the test modules, after this file (nothing above imports them).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO_ROOT = Path(__file__).resolve().parents[1]
# The data folder: $HF_IIS_DATA_ROOT, else ../shared/data beside the repository; where neither exists (a fresh
# clone), the small synthetic samples shipped in tests/samples (same layouts; tests/samples/make_samples.py), made
# the tests' and scripts' data folder for this session. Tests that need the real benchmarks' content (fixed ids,
# published numbers, the extra datasets) skip there, saying so (`require_full_data`, `require_data`).
SAMPLES_ROOT = REPO_ROOT / "tests" / "samples"
# the folder asked for, kept aside: a second import of this file (as `tests.conftest`) sees HF_IIS_DATA_ROOT set below
_REAL_DATA_ROOT = Path(os.environ.setdefault("HF_IIS_TESTS_ASKED_DATA_ROOT", os.environ.get("HF_IIS_DATA_ROOT") or str(
    REPO_ROOT.parent / "shared" / "data")))
ON_SAMPLES = not _REAL_DATA_ROOT.is_dir() or _REAL_DATA_ROOT.resolve() == SAMPLES_ROOT
DATA_ROOT = SAMPLES_ROOT if ON_SAMPLES else _REAL_DATA_ROOT
os.environ["HF_IIS_DATA_ROOT"] = str(DATA_ROOT)


def load_script(name: str):
    """`scripts/<name>.py` imported as a module (scripts are not a package), so tests can call its `main(argv)`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_saliency_model(**overrides):
    """A tiny click model (64 px, no pretrained weights) with the U²-Net-p saliency branch and the click prior, seeded
    with torch.manual_seed(0): what the multi-map, saliency-frame and cache tests build on (`tiny_checkpoint` has no
    saliency branch). `overrides` go to the config."""
    from hf_iis.models.signed_click.configuration_signed_click import SignedClickConfig
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel

    torch.manual_seed(0)
    config = SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False,
                                           saliency_encoder="u2netp", saliency_input_size=64,
                                           saliency_click_prior=True, **overrides)
    return SignedClickModel(config).eval()


def perturbed_copy(folder: Path, out: Path) -> Path:
    """The checkpoint in `folder` saved to `out` with one decoder weight tensor shifted by 1: another model's weights
    (another sha256) in the same architecture, for the refusals of a cache or pseudo-labels of another teacher."""
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel

    model = SignedClickModel.from_pretrained(folder)
    with torch.no_grad():
        next(model.decoder.parameters()).add_(1.0)
    model.save_pretrained(out)
    SignedClickImageProcessor(size=64).save_pretrained(out)
    return out


def require_data(*parts: str) -> Path:
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        where = (f"not in the shipped samples ({SAMPLES_ROOT}); no data folder at {_REAL_DATA_ROOT}"
                 if ON_SAMPLES else "not found")
        pytest.skip(f"real data {path.relative_to(DATA_ROOT)} {where} (set HF_IIS_DATA_ROOT; README, Data)")
    return path


def require_full_data(what: str = "the real benchmarks") -> Path:
    """The data folder, or a skip when only the shipped samples are here (a test that checks `what`)."""
    if ON_SAMPLES:
        pytest.skip(f"checks {what}: needs the data folder (no {_REAL_DATA_ROOT}; set HF_IIS_DATA_ROOT; README, "
                    "Data); the shipped samples are synthetic")
    return DATA_ROOT


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
def photo() -> np.ndarray:
    """A real photo every test install has: scikit-image's coffee cup (400x600 RGB, public domain, shipped inside
    scikit-image), so the pipeline-contract, equivariance, CLI and Space tests never skip for want of data."""
    from skimage import data

    image = data.coffee()
    image.setflags(write=False)  # shared by the session: a test that wants to change it copies it
    return image


@pytest.fixture(scope="session")
def grabcut_image() -> np.ndarray:
    """The first GrabCut .jpg as (H, W, 3) uint8: a real photo (481x321), or the synthetic sample (320x240) where
    the data folder is missing."""
    folder = require_data("GrabCut", "data_GT")
    path = sorted(folder.glob("*.jpg"))[0]
    return np.asarray(Image.open(path).convert("RGB"))


# ----------------------------------------------------------------------------- no outside connections
LOOPBACK_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_local_host(host) -> bool:
    """True for what never leaves the machine: loopback names and addresses, the wildcard bind addresses, and the
    machine's own host name."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").rstrip(".").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost") or host == socket.gethostname().lower():
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _install_lookup_guard() -> list[str]:
    """Wrap `socket.getaddrinfo` (which `socket.create_connection`, httpx, urllib3, requests and asyncio all go
    through) so that a lookup of an outside host is recorded and refused as if the machine were offline. Installed
    once per process (this file is imported both as `conftest` and as `tests.conftest`); returns the record."""
    if hasattr(socket.getaddrinfo, "outside_lookups"):
        return socket.getaddrinfo.outside_lookups
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not is_local_host(host):
            guarded_getaddrinfo.outside_lookups.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"tests make no outside connection: lookup of {host!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    guarded_getaddrinfo.outside_lookups = []
    guarded_getaddrinfo.real = real_getaddrinfo
    socket.getaddrinfo = guarded_getaddrinfo
    return guarded_getaddrinfo.outside_lookups


OUTSIDE_LOOKUPS = _install_lookup_guard()


@pytest.fixture(autouse=True)
def _no_outside_lookups():
    """Fail a test during which anything in this process looked up a host outside the machine."""
    start = len(OUTSIDE_LOOKUPS)
    yield
    made = OUTSIDE_LOOKUPS[start:]
    if made:
        pytest.fail(f"outside host(s) looked up during the test: {sorted(set(made))}", pytrace=False)
