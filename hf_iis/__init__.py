"""hf_iis: signed-click interactive image segmentation with inference-time scaling, on the Hugging Face stack.

`import hf_iis` registers the model with AutoConfig / AutoModel / AutoImageProcessor and the
`"interactive-segmentation"` pipeline with transformers.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .checkpoint_paths import DEFAULT_CHECKPOINT, load_checkpoint, load_pipeline
from .configuration_signed_click import SignedClickConfig
from .image_processing_signed_click import SignedClickImageProcessor
from .modeling_signed_click import SignedClickModel, SignedClickSegmenterOutput
from .pipeline_interactive_segmentation import CheckedAutoModel, InteractiveSegmentationPipeline
from .predictor import Prediction, SignedClickPredictor

__version__ = "0.1.0"

AutoConfig.register(SignedClickConfig.model_type, SignedClickConfig, exist_ok=True)
AutoModel.register(SignedClickConfig, SignedClickModel, exist_ok=True)
AutoImageProcessor.register(SignedClickConfig, image_processor_classes={"pil": SignedClickImageProcessor},
                            exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "interactive-segmentation",
    pipeline_class=InteractiveSegmentationPipeline,
    pt_model=CheckedAutoModel,  # AutoModel, with unreadable weights as a ValueError naming the checkpoint
    default={"model": (str(DEFAULT_CHECKPOINT), None)},  # model omitted -> the embedded default checkpoint
    type="image",
)
# what `save_pretrained` writes into a saved pipeline's custom_pipelines: the class a remote loader can find
InteractiveSegmentationPipeline._registered_impl = {
    task: {**impl, "pt": (AutoModel,)} for task, impl in InteractiveSegmentationPipeline._registered_impl.items()
}

__all__ = [
    "InteractiveSegmentationPipeline",
    "Prediction",
    "SignedClickConfig",
    "SignedClickImageProcessor",
    "SignedClickModel",
    "SignedClickPredictor",
    "SignedClickSegmenterOutput",
    "load_checkpoint",
    "load_pipeline",
]
