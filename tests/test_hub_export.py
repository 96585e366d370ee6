"""The exported hub folder loads with trust_remote_code in a process where hf_iis cannot be imported, and where only
the packages its requirements.txt declares (and what those require) can be imported."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hf_iis.hub_export import REQUIREMENTS, export_hub_folder

REMOTE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    assert importlib.util.find_spec("hf_iis") is None, "hf_iis must not be importable here"
    assert importlib.util.find_spec("cv2") is None, "only the declared packages may be importable here"
    import numpy as np
    from transformers import pipeline
    seg = pipeline(model=sys.argv[1], trust_remote_code=True)
    image = np.load(sys.argv[2])
    out = seg(image, clicks=[(30, 20, 1), (5, 5, -1)], tta=4, triangulation=4)
    np.save(sys.argv[3], out["probabilities"])
    print(json.dumps({"pipeline": type(seg).__name__, "size": list(out["mask"].size)}))
    """
)


def declared_closure(requirements) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions `requirements` name and, recursively, those they require (environment markers
    evaluated as pip does, extras not taken), by canonical name."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        found[name] = importlib.metadata.distribution(requirement.name)
        todo.extend(Requirement(r) for r in found[name].requires or ())
    return found


def only_declared_packages(requirements, target: Path) -> Path:
    """A folder that makes importable only the distributions of `declared_closure(requirements)`: a symlink to each
    top-level entry (packages, modules, .dist-info, .libs) their RECORD files lie under."""
    target.mkdir()
    for dist in declared_closure(requirements).values():
        for file in dist.files or ():
            top = file.parts[0]
            if top in ("..", "__pycache__") or (target / top).exists():
                continue
            source = Path(dist.locate_file(top))
            if source.exists():
                (target / top).symlink_to(source)
    return target


def test_declared_closure_holds_the_requirements_and_their_requirements():
    names = set(declared_closure(["transformers"]))
    assert {"transformers", "huggingface-hub", "tokenizers", "numpy"} <= names
    assert "opencv-python-headless" not in names and "hf-iis" not in names


def _tiny_student(folder):
    import torch

    from hf_iis import SignedClickImageProcessor
    from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).eval().save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_exported_folder_works_without_hf_iis(kind, tiny_checkpoint, tmp_path):
    if kind == "student":
        tiny_checkpoint = _tiny_student(tmp_path / "student")
    folder = export_hub_folder(tiny_checkpoint, tmp_path / "hub", model_card="# card\n")
    config = json.loads((folder / "config.json").read_text())
    expected_class = {"teacher": "modeling_signed_click.SignedClickModel",
                      "student": "modeling_signed_click_student.SignedClickStudentModel"}[kind]
    assert config["auto_map"]["AutoModel"] == expected_class
    assert "interactive-segmentation" in config["custom_pipelines"]
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").read_text().startswith("# card\n")
    assert (folder / "requirements.txt").read_text().split() == list(REQUIREMENTS)
    assert "requirements.txt" in (folder / "README.md").read_text()  # the card says what to install
    assert "auto_map" in json.loads((folder / "preprocessor_config.json").read_text())
    # package-local checkpoints stay free of remote-code keys
    assert "custom_pipelines" not in json.loads((tiny_checkpoint / "config.json").read_text())

    image = (np.random.default_rng(0).random((48, 72, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "image.npy", image)
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    # -S skips site-packages (and with it the editable-install hook that makes hf_iis importable); the only
    # third-party code on the path is then the folder of what requirements.txt declares, as a fresh install has
    declared = (folder / "requirements.txt").read_text().split()
    site = only_declared_packages(declared, tmp_path / "site")
    bootstrap = f"import sys; sys.path.append({str(site)!r}); sys.argv = sys.argv[1:]; " \
                f"exec(open(sys.argv[0]).read())"
    result = subprocess.run(
        [sys.executable, "-S", "-c", bootstrap, str(script), str(folder), str(tmp_path / "image.npy"),
         str(tmp_path / "remote.npy")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info == {"pipeline": "InteractiveSegmentationPipeline", "size": [72, 48]}

    # and it computes exactly what the package computes
    from transformers import pipeline

    local = pipeline("interactive-segmentation", model=str(tiny_checkpoint))
    expected = local(image, clicks=[(30, 20, 1), (5, 5, -1)], tta=4, triangulation=4)["probabilities"]
    assert np.allclose(np.load(tmp_path / "remote.npy"), expected, atol=1e-5)


def test_export_of_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        export_hub_folder(tmp_path / "nothing", tmp_path / "out")


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_exported_weights_get_the_mode_of_the_other_files(tiny_checkpoint, tmp_path, umask, expected):
    """transformers writes model.safetensors through a 0600 temporary file; the export gives it the umask's mode."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        folder = export_hub_folder(tiny_checkpoint, tmp_path / "hub")
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir() if path.is_file()}
    assert modes["model.safetensors"] == expected
    assert set(modes.values()) == {expected}, modes
