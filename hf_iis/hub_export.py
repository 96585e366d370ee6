"""Write a self-contained hub folder: weights, configs and the code, loadable with `trust_remote_code=True`.

The folder's config carries `auto_map` (AutoConfig / AutoModel / AutoImageProcessor) and `custom_pipelines`
("interactive-segmentation"), and the package's module files are copied beside the weights, so

    pipeline(model=folder, trust_remote_code=True)

works in a Python process where `hf_iis` is not installed. Package-local checkpoints never get these keys: a folder
with `custom_pipelines` requires `trust_remote_code=True` even after `import hf_iis`.

Why the code is copied here and not by transformers' `custom_object_save`: the hub's remote-code loader reads one flat
folder and follows only `from .module import ...` lines, while the package keeps its modules in role folders
(`models/`, `inference/`, `scaling/`, ...). So the modules the pipeline, model, config and image processor need are
collected through their imports and written flat, each package import rewritten to `from .<module> import`.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from functools import partial
from pathlib import Path

TASK = "interactive-segmentation"
PACKAGE = "hf_iis"
PACKAGE_ROOT = Path(__file__).resolve().parent
PIPELINE_MODULE = "hf_iis.inference.pipeline_interactive_segmentation"

# What the exported code imports beyond the standard library (tests/test_hub_export.py runs the folder with only
# these packages and their own requirements importable); written as the folder's requirements.txt.
REQUIREMENTS = ("torch>=2.13", "transformers>=5.23.0", "huggingface_hub>=2.4.0", "safetensors>=0.8.0", "numpy>=1.26",
                "pillow>=10.0", "kornia>=0.7")
REQUIREMENTS_NOTE = ("\n## Requirements\n\nThe model's code runs with `pip install -r requirements.txt` (in this "
                     "folder): " + ", ".join(f"`{r}`" for r in REQUIREMENTS)
                     + ". Nothing else (no OpenCV, no hf_iis).\n")

_IMPORT_LINE = re.compile(r"^(?P<indent>\s*)from\s+(?P<source>\.+[\w.]*|hf_iis(?:\.[\w.]+)?)\s+import\s", re.M)


def export_hub_folder(checkpoint: str | Path | None, out_dir: str | Path, model_card: str | None = None) -> Path:
    """Export `checkpoint` (a package-local teacher or student folder; None = the embedded default) to `out_dir`
    for the hub. The student's folder carries its own classes in `auto_map`, so the same pipeline line loads it."""
    from .checkpoint_paths import load_checkpoint, resolve_checkpoint
    from .inference.pipeline_interactive_segmentation import InteractiveSegmentationPipeline

    folder = resolve_checkpoint(checkpoint)
    out = Path(out_dir)
    model, processor = load_checkpoint(folder)  # the model class is chosen by the config's model_type
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    classes = {"AutoConfig": type(model.config), "AutoModel": type(model), "AutoImageProcessor": type(processor),
               "pipeline": InteractiveSegmentationPipeline}
    flat = write_flat_code(out, [cls.__module__ for cls in classes.values()])
    name = {key: f"{flat[cls.__module__]}.{cls.__name__}" for key, cls in classes.items()}
    _update_json(out / "config.json", {
        "auto_map": {"AutoConfig": name["AutoConfig"], "AutoModel": name["AutoModel"]},
        "custom_pipelines": {TASK: {"default": {}, "impl": name["pipeline"], "pt": ["AutoModel"], "tf": [],
                                    "type": "image"}},
    })
    _update_json(out / "preprocessor_config.json", {"auto_map": {"AutoImageProcessor": name["AutoImageProcessor"]}})
    # transformers writes the weights through a private temporary file (mode 0600): give them the mode every other
    # file got from the umask (0644 under the usual 022)
    for weights in out.glob("model*.safetensors*"):
        shutil.copymode(out / "config.json", weights)
    (out / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    if model_card is not None:
        note = "" if "requirements.txt" in model_card else REQUIREMENTS_NOTE
        (out / "README.md").write_text(model_card.rstrip("\n") + "\n" + note if note else model_card)
    return out


def write_flat_code(out: Path, roots: list[str]) -> dict[str, str]:
    """Copy the package modules `roots` need (through their imports, lazy ones included) into `out`, flat, with each
    package import rewritten to `from .<module> import`. Returns {dotted module: its flat name}."""
    needed: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in needed:
            continue
        needed[module] = _module_file(module)
        todo.extend(_package_imports(module, needed[module]))
    flat: dict[str, str] = {}
    for module in needed:
        short = module.rsplit(".", 1)[-1]
        if short in flat.values():
            clash = next(m for m, s in flat.items() if s == short)
            raise RuntimeError(f"two modules would share the exported file {short}.py: {clash} and {module}")
        flat[module] = short
    for module, path in needed.items():
        text = _IMPORT_LINE.sub(partial(_flat_import, module=module, path=path, flat=flat), path.read_text())
        (out / f"{flat[module]}.py").write_text(text)
    return flat


def _module_file(module: str) -> Path:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module} is not a module of {PACKAGE}")
    path = PACKAGE_ROOT.joinpath(*parts[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _resolve(source: str, module: str, path: Path) -> str:
    """The dotted module a `from <source> import` line in `module` names."""
    if not source.startswith("."):
        return source
    level = len(source) - len(source.lstrip("."))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - level + 1]
    rest = source[level:]
    return ".".join(base + ([rest] if rest else []))


def _package_imports(module: str, path: Path) -> list[str]:
    """The package modules `module` imports (at any depth of its code), as dotted names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            source = "." * node.level + (node.module or "")
            target = _resolve(source, module, path)
            if target == PACKAGE or not target.startswith(f"{PACKAGE}."):
                continue  # `from . import _register_with_transformers` reaches the package itself: not copied
            found.append(target)
    return found


def _flat_import(match: re.Match, module: str, path: Path, flat: dict[str, str]) -> str:
    target = _resolve(match["source"], module, path)
    if target not in flat:
        return match[0]
    return f"{match['indent']}from .{flat[target]} import "


def _update_json(path: Path, keys: dict) -> None:
    data = json.loads(path.read_text())
    data.update(keys)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
