"""scripts/push_to_hub.py: --dry-run lists the hub folder offline; a real run makes exactly one upload_folder call
(only the network call is faked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def push_module():
    return load_script("push_to_hub")


@pytest.fixture()
def carded_checkpoint(tiny_checkpoint, tmp_path):
    card = tmp_path / "card.md"
    card.write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    return tiny_checkpoint, card


def test_dry_run_lists_exactly_the_folder(push_module, carded_checkpoint, capsys, tmp_path):
    checkpoint, card = carded_checkpoint
    code = push_module.main(["--repo-id", "me/tiny", "--model", str(checkpoint), "--card", str(card), "--dry-run",
                             "--keep", str(tmp_path / "kept")])
    assert code == 0
    printed = capsys.readouterr().out
    listed = {line.split()[0] for line in printed.splitlines()[1:] if line.strip()}
    on_disk = {str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*") if p.is_file()}
    assert listed == on_disk
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json",
            "modeling_signed_click.py", "pipeline_interactive_segmentation.py"} <= listed
    assert "would upload" in printed


def test_upload_calls_upload_folder_once(push_module, carded_checkpoint, monkeypatch):
    checkpoint, card = carded_checkpoint
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id))

        def upload_folder(self, repo_id, folder_path, **kwargs):
            folder = Path(folder_path)
            config = json.loads((folder / "config.json").read_text())
            calls.append(("upload_folder", repo_id, "custom_pipelines" in config, (folder / "README.md").read_text()))
            return "https://example.invalid/commit"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert push_module.main(["--repo-id", "me/tiny", "--model", str(checkpoint), "--card", str(card)]) == 0
    assert calls[0] == ("create_repo", "me/tiny")
    assert calls[1][:3] == ("upload_folder", "me/tiny", True)
    assert calls[1][3].startswith(card.read_text())  # the export may append its own sections (requirements)
    assert len(calls) == 2


def test_missing_card_is_reported(push_module, tiny_checkpoint, capsys):
    assert push_module.main(["--repo-id", "me/tiny", "--model", str(tiny_checkpoint), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("push_to_hub.py: error: no model card") and len(err.splitlines()) == 1


def test_unreachable_hub_is_one_error_line(push_module, carded_checkpoint, monkeypatch, capsys):
    """Only the network call is faked: it fails the way it does offline (a connection error from the HTTP client)."""
    checkpoint, card = carded_checkpoint

    class OfflineApi:
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("[Errno -2] Name or service not known")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", OfflineApi)
    assert push_module.main(["--repo-id", "me/tiny", "--model", str(checkpoint), "--card", str(card)]) == 1
    err = capsys.readouterr().err
    assert "could not upload to me/tiny: [Errno -2] Name or service not known" in err and "Traceback" not in err
