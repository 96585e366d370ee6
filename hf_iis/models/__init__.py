"""The models, one folder each, in transformers' layout (`configuration_*`, `modeling_*`, `image_processing_*`):

- `signed_click/`: the teacher, f(I, x, s) — image embedding, click encoding, click decoder, saliency click prior,
  losses.
- `student/`: the distilled student — one image pass, then a dot product per click; exact feature-space
  triangulation.
- `kinds.py`: which of the two a loaded model is.

Layer rule (tests/test_import_graph.py): models import backbones, scaling and utils, never inference, training,
evaluation, distillation or the Space.
"""
