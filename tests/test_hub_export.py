"""The exported hub folder loads with trust_remote_code in a process where hf_iis cannot be imported."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hf_iis.hub_export import export_hub_folder

REMOTE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    assert importlib.util.find_spec("hf_iis") is None, "hf_iis must not be importable here"
    import numpy as np
    from transformers import pipeline
    seg = pipeline(model=sys.argv[1], trust_remote_code=True)
    image = np.load(sys.argv[2])
    out = seg(image, clicks=[(30, 20, 1), (5, 5, -1)], tta=4, triangulation=4)
    np.save(sys.argv[3], out["probabilities"])
    print(json.dumps({"pipeline": type(seg).__name__, "size": list(out["mask"].size)}))
    """
)


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
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").read_text() == "# card\n"
    assert "auto_map" in json.loads((folder / "preprocessor_config.json").read_text())
    # package-local checkpoints stay free of remote-code keys
    assert "custom_pipelines" not in json.loads((tiny_checkpoint / "config.json").read_text())

    image = (np.random.default_rng(0).random((48, 72, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "image.npy", image)
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    # -S skips site-packages processing (and with it the editable-install hook that makes hf_iis importable);
    # the installed third-party packages are then added back as plain paths.
    bootstrap = f"import sys; sys.path.extend({site.getsitepackages()!r}); sys.argv = sys.argv[1:]; " \
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
