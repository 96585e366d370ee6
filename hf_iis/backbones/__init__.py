"""Image backbones, written from their papers and loaded from published weights: EfficientNet-Lite
(`efficientnet_lite`),
U²-Net / U²-Net-p (`u2net`, weights found by `u2net_weights`), the frozen saliency branch built on U²-Net-p
(`saliency`) and the name → constructor registry (`registry`).

Layer rule (tests/test_import_graph.py): nothing here imports a model, predictor, training or evaluation module.
"""
