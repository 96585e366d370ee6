"""Evaluation of interactive segmentation: click protocols, metrics, peers, reports.

Light on import: only numpy / OpenCV / tqdm modules are loaded here. The classical peers
(:mod:`hf_iis.evaluation.peers`, needs scikit-image), the saliency baselines
(:mod:`hf_iis.evaluation.saliency_peers`, U²-Net(-p) from their ONNX weights, needs onnx), the plots
(:mod:`hf_iis.evaluation.plots`, matplotlib), the proposal protocol and the scaling study are imported from their
modules when needed. The rows of ``results.json`` are the dataclasses of :mod:`hf_iis.evaluation.results` (which
holds the JSON keys); :mod:`hf_iis.evaluation.report` writes the files and the markdown report of a run.
"""

from hf_iis.evaluation.benchmarks import BENCHMARKS, Instance, instances_from_samples, load_benchmark
from hf_iis.evaluation.metrics import (
    average_recall_curve,
    binarize,
    iou,
    miou_curve,
    noc,
    nof,
    summarize_curves,
)
from hf_iis.evaluation.protocols import (
    ClickRun,
    RandomClickRun,
    run_center_click,
    run_click_loop,
    run_instances,
    run_noc,
    run_random_click,
    summarize_random,
)
from hf_iis.evaluation.segmenters import (
    AveragedClicksSegmenter,
    EmptySegmenter,
    ModelSegmenter,
    OracleSegmenter,
    Segmenter,
)

__all__ = [
    "BENCHMARKS",
    "Instance",
    "instances_from_samples",
    "load_benchmark",
    "average_recall_curve",
    "binarize",
    "iou",
    "miou_curve",
    "noc",
    "nof",
    "summarize_curves",
    "ClickRun",
    "RandomClickRun",
    "run_center_click",
    "run_click_loop",
    "run_instances",
    "run_noc",
    "run_random_click",
    "summarize_random",
    "AveragedClicksSegmenter",
    "EmptySegmenter",
    "ModelSegmenter",
    "OracleSegmenter",
    "Segmenter",
]
