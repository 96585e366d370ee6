"""Everything `hf_iis` exports still imports from the package root (the layout by role moved modules, not names)."""

from __future__ import annotations

import importlib

import hf_iis

# the public names before the layout by role; none may disappear
PUBLIC_NAMES = {
    "DEFAULT_CHECKPOINT", "STUDENT_CHECKPOINT", "InteractiveSegmentationPipeline", "Prediction", "SignedClickConfig",
    "SignedClickImageProcessor", "SignedClickModel", "SignedClickPredictor", "SignedClickSegmenterOutput",
    "SignedClickStudentConfig", "SignedClickStudentModel", "SignedClickStudentPredictor", "load_checkpoint",
    "load_pipeline", "load_predictor",
}


def test_every_name_in_all_imports():
    assert PUBLIC_NAMES <= set(hf_iis.__all__)
    for name in hf_iis.__all__:
        value = getattr(hf_iis, name)
        assert value is not None, name
        if isinstance(value, type):  # a class: defined where __init__'s table says, in the role folders
            assert value.__module__.startswith("hf_iis."), (name, value.__module__)
            assert getattr(importlib.import_module(value.__module__), name) is value


def test_classes_live_in_their_role_folders():
    assert hf_iis.SignedClickModel.__module__ == "hf_iis.models.signed_click.modeling_signed_click"
    assert hf_iis.SignedClickStudentModel.__module__ == "hf_iis.models.student.modeling_signed_click_student"
    assert hf_iis.SignedClickPredictor.__module__ == "hf_iis.inference.predictor"
    assert hf_iis.InteractiveSegmentationPipeline.__module__ == "hf_iis.inference.pipeline_interactive_segmentation"


def test_auto_classes_still_resolve_the_package_models():
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model("signed_click_segmenter")
    assert type(config) is hf_iis.SignedClickConfig
    assert AutoModel._model_mapping[type(config)] is hf_iis.SignedClickModel
    student = AutoConfig.for_model("signed_click_student")
    assert AutoModel._model_mapping[type(student)] is hf_iis.SignedClickStudentModel
