"""The `evaluate` metric module of interactive segmentation, loadable from any working directory.

    from hf_iis.metrics import load_metric
    metric = load_metric()           # "masks": mIoU of probability maps against ground-truth masks
    curves = load_metric("curves")   # NoC@τ / NoF@τ / mIoU@k of per-instance IoU curves
    evaluate.load(str(hf_iis.metrics.METRIC_PATH), "curves")   # the same, by the installed folder's absolute path

The module itself (`interactive_segmentation/interactive_segmentation.py`) documents both configurations; the
definitions live in `hf_iis.evaluation.metrics`. `evaluate` is an optional dependency (the `eval` extra).
"""

from __future__ import annotations

from pathlib import Path

METRIC_PATH = Path(__file__).resolve().parent / "interactive_segmentation"


def load_metric(config_name: str | None = None, **kwargs):
    """`evaluate.load` of the metric folder inside the installed package: "masks" (default) or "curves";
    keywords go to `evaluate.load`."""
    try:
        import evaluate
    except ImportError as error:
        raise ImportError("the interactive-segmentation metric needs `evaluate`: pip install 'hf-iis[eval]'") from error

    return evaluate.load(str(METRIC_PATH), config_name, **kwargs)
