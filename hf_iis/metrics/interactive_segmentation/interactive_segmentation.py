"""`evaluate` module for interactive segmentation: mIoU / NoC / NoF, a thin wrapper over
`hf_iis.evaluation.metrics` (which holds and tests the definitions).

Load it offline from any working directory with ``hf_iis.metrics.load_metric()`` (or ``load_metric("curves")``), which
is ``evaluate.load(str(hf_iis.metrics.METRIC_PATH), ...)``: the absolute path of this folder in the installed package.

Two configurations:

* ``"masks"`` (default): ``predictions`` are (H, W) probability maps or masks, ``references`` (H, W) gt masks
  (nonzero = object), optional ``ignore`` (a list of (H, W) masks, nonzero = ignore band, or None) passed to
  ``compute``; a prediction is foreground where it is ``>= threshold`` (default 0.5). Returns ``mIoU`` (percent)
  and per-instance ``ious`` (fractions).
* ``"curves"``: ``predictions`` are per-instance IoU curves (IoU after click 1, 2, ...; fractions), from the
  standard NoC loop. Returns NoC@85/90/95, NoF@85/90/95 and mIoU@k (percent) of `summarize_curves`.
"""

import datasets
import evaluate
import numpy as np

import hf_iis.evaluation.metrics as ism

_DESCRIPTION = """Interactive-segmentation metrics of the RITM / SimpleClick / SegNext protocol: IoU with an ignore
band (ignore pixels count neither in intersection nor in union), NoC@τ (clicks until IoU ≥ τ, max_clicks when never),
NoF@τ (instances never reaching τ) and mIoU@k (mean IoU after k clicks)."""

_KWARGS_DESCRIPTION = """
Args (config "masks"):
    predictions: list of (H, W) probability maps or masks.
    references: list of (H, W) ground-truth masks (nonzero = object).
    ignore: optional list of (H, W) ignore masks (nonzero = ignored) or None entries.
    threshold: probability threshold, default 0.5 (foreground where prediction >= threshold).
Args (config "curves"):
    predictions: list of per-instance IoU curves (fractions), one value per click.
    max_clicks: curve length to evaluate (default: the curves' length).
Returns:
    "masks": {"mIoU": percent, "ious": list of fractions}.
    "curves": {"NoC@85", "NoC@90", "NoC@95", "NoF@85", "NoF@90", "NoF@95", "mIoU@1", ..., "miou_curve", ...}.
Examples:
    >>> from hf_iis.metrics import load_metric
    >>> metric = load_metric("curves")
    >>> metric.compute(predictions=[[0.5, 0.9, 0.95]])["NoC@90"]
    2.0
"""

_CITATION = """@inproceedings{sofiiuk2022ritm,
  title={Reviving Iterative Training with Mask Guidance for Interactive Segmentation},
  author={Sofiiuk, Konstantin and Petrov, Ilya A. and Konushin, Anton},
  booktitle={ICIP}, year={2022}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class InteractiveSegmentation(evaluate.Metric):
    """mIoU / NoC / NoF of interactive segmentation (see the module docstring)."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name == "curves":
            features = datasets.Features({"predictions": datasets.List(datasets.Value("float64"))})
        else:
            features = datasets.Features({
                "predictions": datasets.List(datasets.List(datasets.Value("float32"))),
                "references": datasets.List(datasets.List(datasets.Value("uint8"))),
            })
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=features,
        )

    def _compute(self, predictions, references=None, ignore=None, threshold=0.5, max_clicks=None):
        if self.config_name == "curves":
            return ism.summarize_curves(np.asarray(predictions, dtype=np.float64), max_clicks)
        ignore = [None] * len(predictions) if ignore is None else ignore
        ious = [
            ism.iou(ism.binarize(np.asarray(p, dtype=np.float32), threshold), np.asarray(r) > 0,
                None if g is None else np.asarray(g) > 0)
            for p, r, g in zip(predictions, references, ignore, strict=True)
        ]
        return {"mIoU": float(100.0 * np.mean(ious)), "ious": [float(v) for v in ious]}
