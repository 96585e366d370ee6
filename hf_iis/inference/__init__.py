"""Inference: the predictors and the transformers pipeline.

- `predictor.py`: the teacher's `SignedClickPredictor` (`set_image` encodes once, `predict` decodes click sets);
  `predictor_views.py` runs the views and triangulation, `view_cache.py` holds the encoded views of one image.
- `student_predictor.py`: the student's predictor, same public API.
- `predictors.py`: picks the predictor that fits a model.
- `pipeline_interactive_segmentation.py`: `pipeline("interactive-segmentation")`.
- `prediction.py`: the `Prediction` result.

Layer rule (tests/test_import_graph.py): nothing here imports training, evaluation, distillation or the Space.
"""
