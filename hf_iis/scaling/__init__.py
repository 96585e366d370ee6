"""Inference-time scaling, the seed's two estimators: test-time augmentation (`tta`: object-preserving views, mapped
back and averaged) and probabilistic triangulation (`triangulation`). Estimates are combined here.

Layer rule (tests/test_import_graph.py): nothing here imports a model, predictor, training or evaluation module.
"""
