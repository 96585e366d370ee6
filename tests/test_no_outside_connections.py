"""No outside connection: the Space and model loading resolve no host outside the machine, and a checkpoint path
that does not exist fails at once, naming the path, without asking the hub.

`tests/conftest.py` also guards the whole suite: a lookup of an outside host is refused and fails the test.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import huggingface_hub.constants
import pytest
from PIL import Image
from test_space_client import free_port
from transformers import pipeline

import hf_iis
from hf_iis import space as app
from hf_iis.cli import main
from tests.conftest import is_local_host

MISSING = ("hub_foldr", "./x", "/tmp/does/not/exist", "outputs/hub_foldr", "a/b/c")


@pytest.fixture
def lookups(monkeypatch):
    """Every host name looked up while the test runs; outside ones are refused as if the machine were offline."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def recording_getaddrinfo(host, *args, **kwargs):
        seen.append(str(host))
        if not is_local_host(host):
            raise socket.gaierror(socket.EAI_NONAME, f"no outside connection: {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    return seen


def _join_new_threads(before: set[threading.Thread], timeout: float = 5.0) -> None:
    """Wait for the non-daemon threads started since `before` (Gradio's telemetry runs in such threads)."""
    deadline = time.monotonic() + timeout
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))


def test_the_test_environment_is_offline():
    assert huggingface_hub.constants.HF_HUB_OFFLINE


def test_space_and_pipelines_resolve_no_outside_host(tiny_checkpoint, lookups, monkeypatch):
    # the app itself must turn Gradio's telemetry off, whatever the environment says
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    threads = set(threading.enumerate())
    demo = app.build_demo(model=str(tiny_checkpoint))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs())
    try:
        assert httpx.get(f"{demo.local_url}config", timeout=30).status_code == 200
    finally:
        demo.close()
    hf_iis.load_pipeline(tiny_checkpoint)
    pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    pipeline("interactive-segmentation")  # the embedded default
    _join_new_threads(threads)
    assert lookups, "the recorder saw no lookup at all (the local server was not reached)"
    outside = sorted({host for host in lookups if not is_local_host(host)})
    assert not outside, f"outside hosts looked up: {outside}"


@pytest.mark.parametrize("name", MISSING)
def test_a_missing_checkpoint_path_fails_at_once_naming_it(name, lookups, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()  # "outputs/hub_foldr" is a typo inside an existing folder, not a hub repo
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=f"checkpoint folder not found: {name}"):
        hf_iis.load_pipeline(name)
    with pytest.raises(FileNotFoundError, match=f"checkpoint folder not found: {name}"):
        hf_iis.SignedClickPredictor.from_pretrained(name)
    assert time.perf_counter() - start < 5
    assert not [host for host in lookups if not is_local_host(host)]


def test_cli_names_a_missing_model_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 32)).save(tmp_path / "photo.png")
    assert main(["segment", "photo.png", "--click", "5,5", "--model", "hub_foldr", "--out", "mask.png"]) == 2
    assert "checkpoint folder not found: hub_foldr" in capsys.readouterr().err


def test_a_hub_repo_id_is_still_passed_to_the_hub(tmp_path, monkeypatch):
    from hf_iis.checkpoint_paths import looks_like_hub_repo_id, resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("someone/signed-click-v1.5") == "someone/signed-click-v1.5"
    assert looks_like_hub_repo_id("outputs/hub_foldr")  # owner/name, and no local folder "outputs" here
    (tmp_path / "outputs").mkdir()
    assert not any(looks_like_hub_repo_id(name) for name in MISSING)


def test_transformers_pipeline_on_a_missing_path_fails_before_this_package_runs(tmp_path, monkeypatch):
    """`pipeline(model=<str>)` resolves the string with transformers' AutoConfig before it looks up the task's
    classes, so no registered code of ours can check it first (README, "Use it"): it fails fast with transformers'
    OSError, and offline (as in these tests) without a lookup."""
    monkeypatch.chdir(tmp_path)
    for name in ("/tmp/does/not/exist", "./x"):
        with pytest.raises(OSError, match="Repo id must"):
            pipeline("interactive-segmentation", model=name)
