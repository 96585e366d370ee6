"""Which kind of model a loaded object is, judged by its config's `model_type` so that nothing heavy is imported.

It sits below the predictors: both the teacher's and the student's predictor, and the registry that picks one, ask it.
"""

from __future__ import annotations

TEACHER_MODEL_TYPE = "signed_click_segmenter"
STUDENT_MODEL_TYPE = "signed_click_student"


def is_student(model) -> bool:
    """True for a `SignedClickStudentModel` (a config whose model_type is `STUDENT_MODEL_TYPE`)."""
    return getattr(getattr(model, "config", None), "model_type", None) == STUDENT_MODEL_TYPE
