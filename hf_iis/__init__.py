"""hf_iis: signed-click interactive image segmentation with inference-time scaling, on the Hugging Face stack.

`import hf_iis` registers the model with AutoConfig / AutoModel / AutoImageProcessor and the
`"interactive-segmentation"` pipeline with transformers, and stays light (no torch, no transformers; `hf-iis --help`
is instant): the registration runs at once when transformers is already imported, else right after transformers
is imported (by you, or by one of this package's modules), and the classes below load when first used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import sys

from .checkpoint_paths import DEFAULT_CHECKPOINT, STUDENT_CHECKPOINT, load_checkpoint, load_pipeline

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "InteractiveSegmentationPipeline": "inference.pipeline_interactive_segmentation",
    "Prediction": "inference.prediction",
    "SignedClickConfig": "models.signed_click.configuration_signed_click",
    "SignedClickImageProcessor": "models.signed_click.image_processing_signed_click",
    "SignedClickModel": "models.signed_click.modeling_signed_click",
    "SignedClickPredictor": "inference.predictor",
    "SignedClickSegmenterOutput": "models.signed_click.modeling_signed_click",
    "SignedClickStudentConfig": "models.student.configuration_signed_click_student",
    "SignedClickStudentModel": "models.student.modeling_signed_click_student",
    "SignedClickStudentPredictor": "inference.student_predictor",
    "load_predictor": "inference.predictors",
}

__all__ = [
    "DEFAULT_CHECKPOINT",
    "STUDENT_CHECKPOINT",
    "InteractiveSegmentationPipeline",
    "Prediction",
    "SignedClickConfig",
    "SignedClickImageProcessor",
    "SignedClickModel",
    "SignedClickPredictor",
    "SignedClickSegmenterOutput",
    "SignedClickStudentConfig",
    "SignedClickStudentModel",
    "SignedClickStudentPredictor",
    "load_checkpoint",
    "load_pipeline",
    "load_predictor",
]

_state = "pending"  # -> "running" -> "done"


def __getattr__(name: str):
    if name in _LAZY_ATTRIBUTES:
        _register_with_transformers()
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_ATTRIBUTES[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # `hf_iis.scaling`, `hf_iis.inference` and the like
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRIBUTES))


class _EmbeddedDefaultNotice(logging.Filter):
    """Drops transformers' "No model was supplied, defaulted to ..." warning for the embedded default checkpoint,
    which is the documented way to use the pipeline (other tasks' defaults keep their warning)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(f"No model was supplied, defaulted to {DEFAULT_CHECKPOINT} ")


def _register_with_transformers() -> None:
    """Register the config, model, image processor and pipeline with transformers (once; imports them)."""
    global _state
    if _state != "pending":
        return
    _state = "running"
    try:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel
        from transformers.pipelines import PIPELINE_REGISTRY

        from .inference.pipeline_interactive_segmentation import CheckedAutoModel, InteractiveSegmentationPipeline
        from .models.signed_click.configuration_signed_click import SignedClickConfig
        from .models.signed_click.image_processing_signed_click import SignedClickImageProcessor
        from .models.signed_click.modeling_signed_click import SignedClickModel
        from .models.student.configuration_signed_click_student import SignedClickStudentConfig
        from .models.student.modeling_signed_click_student import SignedClickStudentModel

        AutoConfig.register(SignedClickConfig.model_type, SignedClickConfig, exist_ok=True)
        AutoModel.register(SignedClickConfig, SignedClickModel, exist_ok=True)
        AutoImageProcessor.register(SignedClickConfig, image_processor_classes={"pil": SignedClickImageProcessor},
                                    exist_ok=True)
        # the distilled student: same image processor, same pipeline (hf_iis/inference/predictors.py dispatches)
        AutoConfig.register(SignedClickStudentConfig.model_type, SignedClickStudentConfig, exist_ok=True)
        AutoModel.register(SignedClickStudentConfig, SignedClickStudentModel, exist_ok=True)
        AutoImageProcessor.register(SignedClickStudentConfig,
                                    image_processor_classes={"pil": SignedClickImageProcessor}, exist_ok=True)
        PIPELINE_REGISTRY.register_pipeline(
            "interactive-segmentation",
            pipeline_class=InteractiveSegmentationPipeline,
            pt_model=CheckedAutoModel,  # AutoModel, with unreadable weights as a ValueError naming the checkpoint
            default={"model": (str(DEFAULT_CHECKPOINT), None)},  # model omitted -> the embedded default checkpoint
            type="image",
        )
        # what `save_pretrained` writes into a saved pipeline's custom_pipelines: the class a remote loader can find
        registered = InteractiveSegmentationPipeline._registered_impl
        InteractiveSegmentationPipeline._registered_impl = {
            task: {**impl, "pt": (AutoModel,)} for task, impl in registered.items()
        }
        logging.getLogger("transformers.pipelines").addFilter(_EmbeddedDefaultNotice())
    except BaseException:
        _state = "pending"
        raise
    _state = "done"
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegistrationFinder)]


def _register_when_safe(just_executed: str | None = None) -> None:
    """Register now unless one of this package's modules (other than `just_executed`, whose code has run) is still
    being imported: registering imports them, and a half-imported module would lack its classes. The outermost one
    calls this again when its own code has run."""
    if _state != "pending" or "transformers" not in sys.modules:
        return
    for name, module in list(sys.modules.items()):
        if name != just_executed and (name == __name__ or name.startswith(f"{__name__}.")):
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                return
    _register_with_transformers()


class _RegisteringLoader:
    """Wraps a module's loader: once the module's code has run, registration follows if it is safe."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register_when_safe(module.__name__)

    def __getattr__(self, name: str):  # get_resource_reader, get_filename, get_source, is_package, ...
        return getattr(self._loader, name)


class _RegistrationFinder:
    """Hands `transformers` and this package's submodules to `_RegisteringLoader`, until registration is done."""

    def find_spec(self, name: str, path=None, target=None):
        if _state != "pending":
            return None
        if name == "transformers":
            others = [finder for finder in sys.meta_path if not isinstance(finder, _RegistrationFinder)]
            spec = next((s for s in (_find(finder, name, path, target) for finder in others) if s is not None), None)
        elif name.startswith(f"{__name__}."):
            spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        else:
            return None
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _find(finder, name, path, target):
    find_spec = getattr(finder, "find_spec", None)
    return None if find_spec is None else find_spec(name, path, target)


if "transformers" in sys.modules:
    _register_with_transformers()
elif not any(isinstance(finder, _RegistrationFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegistrationFinder())
