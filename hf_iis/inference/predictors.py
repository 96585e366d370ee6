"""Which predictor serves a model: the teacher's `SignedClickPredictor` (a decoder pass per click set) or the
student's `SignedClickStudentPredictor` (dot products on a cached embedding). Both have the same public API
(`set_image`, `predict`, `predict_single_clicks`, `view_embeddings`), so the pipeline, the evaluation and the
benchmarks take either.

    predictor = predictor_for(model, image_processor, max_pixels=...)   # by the model's class
    predictor = load_predictor("runs/student/final")                   # a checkpoint folder, hub id or None
"""

from __future__ import annotations

from ..models.kinds import STUDENT_MODEL_TYPE, is_student

__all__ = ["STUDENT_MODEL_TYPE", "is_student", "load_predictor", "predictor_for"]


def predictor_for(model, image_processor=None, **kwargs):
    """The predictor class that fits `model`, built with `image_processor` and the predictor keywords."""
    if is_student(model):
        from .student_predictor import SignedClickStudentPredictor

        return SignedClickStudentPredictor(model, image_processor, **kwargs)
    from .predictor import SignedClickPredictor

    return SignedClickPredictor(model, image_processor, **kwargs)


def load_predictor(path=None, *, device=None, dtype=None, **kwargs):
    """`predictor_for(*load_checkpoint(path))`: teacher or student checkpoint, None = the embedded default;
    `device` / `dtype` place the model (`devices.py`)."""
    from ..checkpoint_paths import load_checkpoint

    model, processor = load_checkpoint(path, device=device, dtype=dtype)
    return predictor_for(model, processor, **kwargs)
