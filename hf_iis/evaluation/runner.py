"""One evaluation run: models and peers × benchmarks × protocols → results JSON, CSV, markdown, plots.

This is the library behind ``scripts/evaluate.py``; :class:`EvalConfig` mirrors its flags. Every method of a
run sees the same instances and the same clicks (standard clicker; random clicks seeded per instance).
``noc_limit`` / ``random_limit`` run the NoC loop / the random clicks on a fixed, evenly spaced subset of a large
benchmark (:func:`spread_subset`, the same instances for every method), while mIoU@1 with the center click is
still measured on every instance.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hf_iis.evaluation.benchmarks import Instance, load_benchmark
from hf_iis.evaluation.metrics import binarize, summarize_curves
from hf_iis.evaluation.protocols import (
    ClickRun,
    RandomClickRun,
    prepare,
    random_click_run,
    run_click_loop,
    summarize_random,
)
from hf_iis.evaluation.report import hardware_info, timestamp, write_outputs
from hf_iis.evaluation.results import SECONDS_PER_CLICK, ClickMetrics, ResultRow, noc_key, threshold_tag
from hf_iis.evaluation.segmenters import ModelSegmenter, Segmenter, runs_conditioned_triangulation
from hf_iis.metrics.boundary_iou import DILATION_RATIO

__all__ = ["PROTOCOLS", "EvalConfig", "check_config", "run_evaluation", "spread_subset"]

PROTOCOLS = ("noc", "miou1", "random", "scaling", "proposals")


@dataclass
class EvalConfig:
    """Settings of one run (see ``scripts/evaluate.py --help``). ``models`` may be empty (peers only).

    ``limit`` cuts every benchmark to its first instances; ``noc_limit`` / ``random_limit`` run the NoC loop /
    the random clicks on at most that many instances per benchmark (an evenly spaced subset, :func:`spread_subset`)
    and leave mIoU@1 with the center click on all of them.
    """

    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=lambda: ["GrabCut", "Berkeley"])
    data_root: str | None = None
    protocols: list[str] = field(default_factory=lambda: ["noc", "miou1", "random"])
    tta: list[int] = field(default_factory=lambda: [1])
    triangulation: list[int] = field(default_factory=lambda: [0])
    sampling: list[str] = field(default_factory=lambda: ["uniform"])
    # scaling/conditioned_triangulation.py's modes: a row per mode for each triangulation K > 0 (K = 0 rows: one)
    triangulation_modes: list[str] = field(default_factory=lambda: ["independent"])
    upsample: list[str] = field(default_factory=lambda: ["bilinear"])  # inference/upsampling.py's modes
    zoom_in: list[bool | str] = field(default_factory=lambda: [False])  # inference/zoom.py: a row per setting
    map_choice: str = "first_click"  # inference/multimask_prediction.py: a multi-map model's map rule, every row
    peers: list[str] = field(default_factory=lambda: ["grabcut", "random_walker"])
    limit: int | None = None
    noc_limit: int | None = None
    random_limit: int | None = None
    seeds: int = 3
    max_clicks: int = 20
    out: str = "outputs/eval/run"
    scaling_tta: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    scaling_triangulation: list[int] = field(default_factory=lambda: [4, 16, 64])
    scaling_sampling: list[str] = field(default_factory=lambda: ["uniform", "stratified"])
    scaling_triangulation_modes: list[str] = field(default_factory=lambda: ["independent"])
    scaling_combos: list[tuple[int, int, str]] = field(
        default_factory=lambda: [(2, 4, "stratified"), (4, 16, "stratified"), (8, 64, "stratified")]
    )
    scaling_limit: int | None = 10
    proposal_folder: str = "data_cache/corpus"
    proposal_layout: str = "corpus"
    proposal_limit: int = 20
    proposal_min_masks: int = 2
    overlays: int = 3
    progress: bool = True
    command: str = ""


@dataclass
class _Method:
    segmenter: Segmenter
    kind: str  # "model" or "peer"
    model_path: str | None
    scaling: str
    settings: dict[str, Any]


def model_name(path, paths) -> str:
    """A model's label in the tables: its folder's name, or, when another model of the run has the same folder name
    (two runs' `final/`), its last two path parts ("ccp_scaled/final"), else the whole path."""
    name = Path(path).name
    if [Path(p).name for p in paths].count(name) <= 1:
        return name
    tail = "/".join(Path(path).parts[-2:])
    return tail if ["/".join(Path(p).parts[-2:]) for p in paths].count(tail) <= 1 else str(path)


def _model_methods(cfg: EvalConfig) -> tuple[list[_Method], dict[str, Any], list[dict[str, str]]]:
    """The model rows (a row per setting; sampling and triangulation mode only multiply rows with triangulation),
    the loaded predictors, and the rows left out because a model cannot run them (a distilled student has no
    conditioned triangulation)."""
    from hf_iis.inference.predictors import load_predictor

    methods, predictors, skipped = [], {}, []
    for path in cfg.models:
        predictor = load_predictor(path)  # a teacher or a distilled student checkpoint
        predictors[path] = predictor
        conditioned_ok = runs_conditioned_triangulation(predictor)
        for tta, tri, upsample, zoom in itertools.product(cfg.tta, cfg.triangulation, cfg.upsample, cfg.zoom_in):
            for sampling, mode in itertools.product(cfg.sampling if tri else cfg.sampling[:1],
                                                    cfg.triangulation_modes if tri else ["independent"]):
                seg = ModelSegmenter(predictor, tta, tri, sampling, upsample=upsample, zoom_in=zoom,
                                     triangulation_mode=mode, map_choice=cfg.map_choice)
                seg.name = f"{model_name(path, cfg.models)} [{seg.settings_label}]"
                if mode != "independent" and not conditioned_ok:
                    skipped.append({"model_path": str(path), "method": seg.name,
                                    "reason": f"its predictor cannot run triangulation_mode={mode!r} (a distilled "
                                              "student's triangulation is the exact feature-space one)"})
                    continue
                settings = {"tta": tta, "triangulation": tri, "sampling": sampling if tri else None,
                            "upsample": upsample, "zoom_in": zoom, "triangulation_mode": mode if tri else None,
                            "map_choice": cfg.map_choice}
                methods.append(_Method(seg, "model", str(path), seg.settings_label, settings))
    return methods, predictors, skipped


def _peer_methods(cfg: EvalConfig) -> list[_Method]:
    from hf_iis.evaluation.peers import make_peer

    out = []
    for name in cfg.peers:
        seg = make_peer(name)
        out.append(_Method(seg, "peer", None, "none (" + seg.settings_label + ")", {"peer": name}))
    return out


def spread_subset(n: int, limit: int | None) -> list[int]:
    """Indices of a fixed, evenly spaced subset of ``n`` instances: all of them when ``limit`` is ``None`` or
    ``>= n``, else ``round(i * (n - 1) / (limit - 1))`` for ``i = 0 .. limit - 1`` (first and last included)."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit <= 0:
        return []
    if limit == 1:
        return [0]
    return sorted({int(v) for v in np.rint(np.linspace(0, n - 1, limit))})


def _instance_records(method: str, dataset: str, instances: list[Instance], loops: dict[int, ClickRun],
                      noc_idx: set[int], rands: dict[int, RandomClickRun]) -> list[dict[str, Any]]:
    from hf_iis.evaluation.metrics import THRESHOLDS, noc

    recs = []
    for k, inst in enumerate(instances):
        if k not in loops and k not in rands:
            continue
        rec: dict[str, Any] = {"method": method, "dataset": dataset, "id": inst.id}
        if k in loops:
            r = loops[k]
            if k in noc_idx:
                for t in THRESHOLDS:
                    rec[noc_key(threshold_tag(t))] = noc(r.ious, t, len(r.ious))
                rec["ious"] = r.ious
                rec["clicks"] = [list(c) for c in r.clicks]
                rec["boundary_ious"] = r.boundary_ious
                rec[SECONDS_PER_CLICK] = r.seconds_per_click
            else:
                rec["iou@1 center"] = r.ious[0]
                rec["biou@1 center"] = r.boundary_ious[0] if r.boundary_ious else None
        if k in rands:
            rec["iou@1 random"] = rands[k].ious
            rec["random clicks"] = [list(c) for c in rands[k].clicks]
        recs.append(rec)
    return recs


def _run_pass(seg: Segmenter, instances: list[Instance], cfg: EvalConfig, noc_idx: set[int],
              rand_idx: set[int], desc: str) -> tuple[dict[int, ClickRun], dict[int, RandomClickRun]]:
    """One pass over the instances, each image handed to the segmenter once: the NoC loop on ``noc_idx`` (the
    center click alone on the others when mIoU@1 is asked for) and the random clicks on ``rand_idx``."""
    from tqdm import tqdm

    center = "miou1" in cfg.protocols or "noc" in cfg.protocols
    seeds = range(cfg.seeds)
    loops: dict[int, ClickRun] = {}
    rands: dict[int, RandomClickRun] = {}
    for k, inst in enumerate(tqdm(instances, desc=desc, disable=not cfg.progress, leave=False)):
        clicks = cfg.max_clicks if k in noc_idx else int(center)
        if not clicks and k not in rand_idx:
            continue
        encode = prepare(seg, inst)
        if clicks:
            loops[k] = run_click_loop(seg, inst, clicks, encode_seconds=encode)
        if k in rand_idx and len(seeds):
            rands[k] = random_click_run(seg, inst, seeds, encode_seconds=encode)
    return loops, rands


def _evaluate_method(m: _Method, dataset: str, instances: list[Instance], cfg: EvalConfig
                     ) -> tuple[ResultRow, list[dict[str, Any]], list[ClickRun]]:
    seg = m.segmenter
    metrics = ClickMetrics()
    n = len(instances)
    noc_idx = set(spread_subset(n, cfg.noc_limit)) if "noc" in cfg.protocols else set()
    rand_idx = set(spread_subset(n, cfg.random_limit)) if "random" in cfg.protocols else set()
    # one pass per instance: the image is encoded once for the click loop and the random clicks
    loops, rands = _run_pass(seg, instances, cfg, noc_idx, rand_idx, f"{dataset} {seg.name}")
    noc_runs = [loops[k] for k in sorted(noc_idx)]
    if noc_runs:
        metrics = ClickMetrics.from_dict(summarize_curves([r.ious for r in noc_runs], cfg.max_clicks))
        metrics.decode_seconds_per_click = float(np.mean([s for r in noc_runs for s in r.predict_seconds]))
        metrics.noc_instances = len(noc_runs)
        if all(r.boundary_ious for r in noc_runs):  # ClickRuns made elsewhere may lack them
            metrics.biou_curve = [float(v) for v in 100.0 * np.mean([r.boundary_ious for r in noc_runs], axis=0)]
    if loops:
        center = list(loops.values())  # each loop's first click is the center click
        metrics.miou1_center = float(100.0 * np.mean([r.ious[0] for r in center]))
        metrics.center_instances = len(center)
        if all(r.boundary_ious for r in center):
            metrics.biou1_center = float(100.0 * np.mean([r.boundary_ious[0] for r in center]))
        # (encode + all clicks) / clicks over the NoC loop; over the center click when NoC is not run
        metrics.seconds_per_click = float(np.mean([r.seconds_per_click for r in noc_runs or center]))
        metrics.encode_seconds_per_image = float(np.mean([r.encode_seconds for r in center]))
    if rands:
        metrics.set_random(summarize_random([rands[k] for k in sorted(rands)]), len(rands))
    row = ResultRow(method=seg.name, kind=m.kind, model_path=m.model_path, scaling=m.scaling, settings=m.settings,
                    dataset=dataset, num_instances=n, metrics=metrics, command=cfg.command)
    records = _instance_records(seg.name, dataset, instances, loops, noc_idx, rands)
    return row, records, noc_runs


def _overlay_items(m: _Method, instances: list[Instance], n: int, max_clicks: int) -> list[tuple]:
    from hf_iis.evaluation.protocols import run_click_loop

    items = []
    for inst in instances[:n]:
        run = run_click_loop(m.segmenter, inst, min(max_clicks, 5), keep_maps=True)
        for k in sorted({0, len(run.probabilities) - 1}):
            items.append((inst.image, inst.gt, binarize(run.probabilities[k]), run.clicks[: k + 1],
                          f"{m.segmenter.name}\n{inst.id}: {k + 1} click(s), IoU {100 * run.ious[k]:.1f}"))
    return items


OUTPUT_FILES = ("results.json", "instances.json", "instances.csv", "table.md")


def check_config(cfg: EvalConfig) -> None:
    """ValueError naming the first setting a run cannot use, before any model loads: unknown protocols, instance
    counts below 1 (a run on 0 or "-1" instances would report a benchmark it did not measure), and an output folder
    that cannot be written (a file in its place, a folder where a result file goes)."""
    from hf_iis.cli_checks import check_output_dir, check_output_file

    unknown = set(cfg.protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; known: {PROTOCOLS}")
    if not cfg.protocols:
        raise ValueError(f"no protocol to run; give some of {PROTOCOLS}")
    if not cfg.datasets:
        raise ValueError("no benchmark to run; give --datasets, e.g. GrabCut,Berkeley")
    for name in ("limit", "noc_limit", "random_limit"):
        value = getattr(cfg, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive number of instances (or unset for all), got {value!r}")
    for name, low in (("seeds", 1), ("max_clicks", 1), ("proposal_limit", 1), ("proposal_min_masks", 1),
                      ("overlays", 0)):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if cfg.scaling_limit is not None and cfg.scaling_limit < 1:
        raise ValueError(f"scaling_limit must be a positive number of instances (or unset for all), got "
                         f"{cfg.scaling_limit!r}")
    from hf_iis.inference.upsampling import check_upsample

    if not cfg.upsample:
        raise ValueError("no upsampling mode to run; give --upsample, e.g. bilinear,guided")
    for mode in cfg.upsample:
        check_upsample(mode)
    from hf_iis.inference.multimask_prediction import check_map_choice

    check_map_choice(cfg.map_choice)
    from hf_iis.scaling.zoom_geometry import check_zoom_in

    if not cfg.zoom_in:
        raise ValueError("no zoom-in setting to run; give --zoom-in, e.g. off,auto")
    for value in cfg.zoom_in:
        check_zoom_in(value)
    from hf_iis.scaling.conditioned_triangulation import check_triangulation_mode

    for name in ("triangulation_modes", "scaling_triangulation_modes"):
        if not getattr(cfg, name):
            raise ValueError(f"no {name} to run; give some of independent, conditioned")
        for mode in getattr(cfg, name):
            check_triangulation_mode(mode)
    for name in ("tta", "scaling_tta"):
        if any(v < 1 for v in getattr(cfg, name)):
            raise ValueError(f"{name} view counts must be >= 1, got {getattr(cfg, name)}")
    for name in ("triangulation", "scaling_triangulation"):
        if any(v < 0 for v in getattr(cfg, name)):
            raise ValueError(f"{name} pixel counts must be >= 0, got {getattr(cfg, name)}")
    out = check_output_dir(cfg.out, "--out")
    for name in OUTPUT_FILES:
        check_output_file(out / name, "result file")
    check_output_dir(out / "plots", "plots folder")


def run_evaluation(cfg: EvalConfig) -> dict[str, Any]:
    """Run everything ``cfg`` asks for, write the outputs under ``cfg.out``, return the results dict.

    Files: ``results.json`` (machine-readable: settings, hardware, timestamp, one entry per method × dataset),
    ``instances.json`` / ``instances.csv`` (per instance), ``table.md`` (measured rows, then the published table
    apart), ``plots/*.png``.
    """
    from hf_iis.evaluation.plots import plot_benchmark

    check_config(cfg)
    out = Path(cfg.out)
    started = time.perf_counter()
    model_methods, predictors, skipped = _model_methods(cfg)
    methods = model_methods + _peer_methods(cfg)
    results: dict[str, Any] = {
        "timestamp": timestamp(), "command": cfg.command, "settings": asdict(cfg), "hardware": hardware_info(),
        "boundary_iou_dilation_ratio": DILATION_RATIO,  # bIoU's band: this fraction of each image's diagonal
        "results": [], "scaling": [], "multiclick": [], "proposals": [],
        "skipped": skipped,  # settings a model cannot run, each with why
    }
    instance_records: list[dict[str, Any]] = []
    click_protocols = {"noc", "miou1", "random"} & set(cfg.protocols)
    for dataset in cfg.datasets:
        instances = load_benchmark(dataset, cfg.data_root, cfg.limit)
        curves: dict[str, list[float]] = {}
        overlay_items: list[tuple] = []
        for m in methods if click_protocols else []:
            row, recs, noc_runs = _evaluate_method(m, dataset, instances, cfg)
            results["results"].append(row.to_dict())
            instance_records += recs
            if noc_runs:
                curves[m.segmenter.name] = row.metrics.miou_curve
            if cfg.overlays:
                overlay_items += _overlay_items(m, instances, cfg.overlays, cfg.max_clicks)
        if "scaling" in cfg.protocols:
            _run_scaling(cfg, predictors, dataset, instances, results, curves)
        plot_benchmark(out, dataset, curves, results, overlay_items)
    if "proposals" in cfg.protocols and predictors:
        _run_proposals(cfg, predictors, results, out)
    results["seconds total"] = time.perf_counter() - started
    write_outputs(out, results, instance_records)
    return results


def _run_scaling(cfg: EvalConfig, predictors: dict[str, Any], dataset: str, instances: list[Instance],
                 results: dict[str, Any], curves: dict[str, list[float]]) -> None:
    from hf_iis.evaluation.scaling import run_multiclick_comparison, run_scaling, scaling_grid

    grid = scaling_grid(cfg.scaling_tta, cfg.scaling_triangulation, cfg.scaling_sampling, cfg.scaling_combos,
                        cfg.scaling_triangulation_modes)
    subset = instances[: cfg.scaling_limit] if cfg.scaling_limit else instances
    for path, predictor in predictors.items():
        runnable = [g for g in grid if g.mode == "independent" or runs_conditioned_triangulation(predictor)]
        label = model_name(path, cfg.models)
        for g in grid:
            note = {"model_path": path, "method": f"{label} scaling [{g.label}]",
                    "reason": f"its predictor cannot run triangulation_mode={g.mode!r}"}
            if g not in runnable and note not in results["skipped"]:  # once, not once per benchmark
                results["skipped"].append(note)
        for row in run_scaling(predictor, subset, runnable, range(cfg.seeds), cfg.progress, cfg.map_choice):
            results["scaling"].append(replace(row, model=label, model_path=path, dataset=dataset,
                                              num_instances=len(subset)).to_dict())
        for name, (summary, _runs) in run_multiclick_comparison(predictor, subset, cfg.max_clicks,
                                                                progress=cfg.progress,
                                                                map_choice=cfg.map_choice).items():
            results["multiclick"].append({"model_path": path, "dataset": dataset, "method": name,
                                          **summary.to_dict()})
            curves[f"{label}: {name}"] = summary.miou_curve


def _run_proposals(cfg: EvalConfig, predictors: dict[str, Any], results: dict[str, Any], out: Path) -> None:
    from hf_iis.evaluation.benchmarks import load_corpus_split, load_multimask
    from hf_iis.evaluation.plots import plot_ar_curves
    from hf_iis.evaluation.proposals import run_proposals, summarize_proposals

    if cfg.proposal_layout == "corpus":  # a parquet training corpus folder: its validation split
        samples = load_corpus_split(cfg.proposal_folder, "validation", cfg.proposal_limit, cfg.proposal_min_masks)
    else:
        samples = load_multimask(cfg.proposal_folder, cfg.proposal_layout, cfg.data_root, cfg.proposal_limit,
                                 min_masks=cfg.proposal_min_masks)
    ar_curves = {}
    for path, predictor in predictors.items():
        seg = ModelSegmenter(predictor, name=model_name(path, cfg.models), map_choice=cfg.map_choice)
        summary = summarize_proposals(run_proposals(seg, samples, progress=cfg.progress))
        held_out = cfg.proposal_layout == "corpus"
        results["proposals"].append({
            "model": seg.name, "model_path": path, "data": cfg.proposal_folder, "images": len(samples),
            "held_out": held_out, **summary,
            **({} if held_out else {"note": "not the corpus validation split: may overlap the training data"}),
        })
        ar_curves[model_name(path, cfg.models)] = summary["ar_curve"]
    plot_ar_curves(ar_curves, out / "plots" / "proposals_ar.png", f"zero-shot proposals, {cfg.proposal_folder}")
