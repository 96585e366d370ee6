"""Why inference-time scaling helps or not, measured on the training corpus's VALIDATION split (never a benchmark).

    python scripts/analyze_scaling.py --model hf_iis/checkpoints/default --out outputs/analysis/default

For each validation mask, with the center click (the standard clicker's first click):
  * equivariance: mIoU@1 of every D4 view alone, and the mean IoU between each view's mask and the identity's;
    a model that is equivariant to a view gains little from it alone but its errors average out;
  * TTA: mIoU@1 of the mean over the first n views of `hf_iis.scaling.tta.VIEW_ORDER`, n = 1, 2, 4, 8;
  * view choice: those sets against sets with the rescale views, each combined as a mean of probabilities and as a
    mean of logits;
  * calibration: expected calibration error (10 bins) and Brier score of the direct probabilities, since averaging
    only helps estimates that are probabilities;
  * triangulation: direct vs triangulated (K auxiliary pixels; uniform, stratified and foreground sampling) vs blends
    α·direct + (1 − α)·triangulated, to choose α on validation data; in both forms (`--triangulation-modes`): the
    seed's ("independent": single clicks at the auxiliary pixels) and the one that keeps the condition
    ("conditioned": the click plus each auxiliary pixel, `hf_iis/scaling/conditioned_triangulation.py`), with the
    gain of each over the direct estimate and its paired 95 % bootstrap interval.
Writes analysis.json and analysis.md (with the command and the hardware), and prints the tables.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
# view choice: the first n of VIEW_ORDER (what tta=n uses) against sets with the rescale views
VIEW_SET_NAMES = {
    "tta=1": 1,
    "tta=2 (identity, hflip)": 2,
    "tta=4 (the flips)": 4,
    "tta=8 (D4)": 8,
    "identity, hflip, 2 rescales": ["identity", "hflip", "scale0.75", "scale1.25"],
    "identity, hflip, 4 (flipped) rescales": ["identity", "hflip", "scale0.75", "scale1.25", "hflip+scale0.75",
                                              "hflip+scale1.25"],
    "tta=12 (all views)": 12,
}
PROG = "analyze_scaling.py"


def calibration(probabilities: list[np.ndarray], truths: list[np.ndarray], bins: int = 10) -> tuple[float, float]:
    p = np.concatenate([x.ravel() for x in probabilities])
    t = np.concatenate([x.ravel() for x in truths]).astype(np.float64)
    edges = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = edges == b
        if sel.any():
            ece += sel.mean() * abs(p[sel].mean() - t[sel].mean())
    return float(ece), float(np.mean((p - t) ** 2))


def _names(text: str, what: str, check) -> list:
    """A comma list, each item checked by `check` (which raises ValueError naming the accepted values)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{what} {text!r}: give a comma list")
    return [check(item) for item in items]


def _k_value(text: str) -> int:
    from hf_iis.scaling.triangulation import check_num_auxiliary

    value = check_num_auxiliary(int(text) if text.lstrip("+-").isdigit() else text)
    if value == 0:
        raise ValueError("--triangulation: K = 0 is the direct estimate, always reported; give K >= 1")
    return value


def parse_args(argv: list[str] | None):
    """Parsed and checked arguments (every check before a model or the data is read)."""
    from hf_iis.cli_checks import ArgumentParser, check_output_dir
    from hf_iis.scaling.conditioned_triangulation import TRIANGULATION_MODES, check_triangulation_mode
    from hf_iis.scaling.triangulation import SAMPLINGS, check_sampling

    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--corpus", default="data_cache/corpus")
    parser.add_argument("--limit", type=int, default=None, help="at most this many validation images")
    parser.add_argument("--triangulation", default="4,16", help="K values, comma list")
    parser.add_argument("--triangulation-modes", default=",".join(TRIANGULATION_MODES),
                        help=f"comma list of {', '.join(TRIANGULATION_MODES)} (default: both)")
    parser.add_argument("--samplings", default=",".join(SAMPLINGS), help=f"comma list of {', '.join(SAMPLINGS)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("outputs/analysis/default"))
    args = parser.parse_args(argv)
    args.ks = _names(args.triangulation, "--triangulation", _k_value)
    args.modes = _names(args.triangulation_modes, "--triangulation-modes", check_triangulation_mode)
    args.samplings = _names(args.samplings, "--samplings", check_sampling)
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: give 1 or more")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: give 1 or more validation images")
    if args.model is not None and not (Path(args.model) / "config.json").is_file():
        raise ValueError(f"--model {args.model}: no config.json there; give a checkpoint folder")
    check_output_dir(args.out, "--out")
    return args


def main(argv: list[str] | None = None) -> int:
    from hf_iis.cli_checks import USAGE_ERRORS, report

    try:
        args = parse_args(argv)
        from hf_iis.evaluation.benchmarks import instances_from_samples, load_corpus_split

        samples = load_corpus_split(args.corpus, "validation", limit=args.limit, min_masks=1)
        if not samples:
            raise ValueError(f"--corpus {args.corpus}: its validation split has no masks")
    except USAGE_ERRORS as error:
        return report(PROG, error)
    import torch
    from tqdm import tqdm

    from hf_iis import SignedClickPredictor
    from hf_iis.evaluation.metrics import binarize, iou, paired_difference
    from hf_iis.evaluation.report import hardware_info, timestamp
    from hf_iis.scaling.tta import D4_VIEWS, VIEW_ORDER, combine_views
    from hf_iis.utils.clicker import center_click

    torch.set_num_threads(args.threads)
    predictor = SignedClickPredictor.from_pretrained(args.model)
    instances = instances_from_samples(samples)
    view_sets = {name: [v.name for v in VIEW_ORDER[:spec]] if isinstance(spec, int) else spec
                 for name, spec in VIEW_SET_NAMES.items()}
    ks, modes, samplings = args.ks, args.modes, args.samplings
    per_view = {v.name: [] for v in D4_VIEWS}
    agreement = {v.name: [] for v in D4_VIEWS}
    tta = {n: [] for n in (1, 2, 4, 8)}
    view_scores = {(name, mode): [] for name in view_sets for mode in ("probability", "logit")}
    tri = {(m, k, s, a): [] for m in modes for k in ks for s in samplings for a in BLENDS}
    seconds = {(m, k): [] for m in modes for k in ks}
    direct_maps, truths = [], []
    started = time.perf_counter()
    for inst in tqdm(instances, desc="validation masks", disable=args.no_progress):
        predictor.set_image(inst.image)
        click = center_click(inst.gt, inst.ignore)
        clicks = [(click.x, click.y, click.sign)]
        by_name = {v.name: predictor.predict(clicks, tta=[v.name], zoom_in=False,
                                                     upsample="bilinear").probabilities for v in VIEW_ORDER}
        maps = [by_name[v.name] for v in D4_VIEWS]
        for (name, mode), values in view_scores.items():
            mean, _ = combine_views(torch.from_numpy(np.stack([by_name[v] for v in view_sets[name]])), mode)
            values.append(iou(binarize(mean.numpy()), inst.gt, inst.ignore))
        identity = binarize(maps[0])
        for view, prob in zip(D4_VIEWS, maps):
            per_view[view.name].append(iou(binarize(prob), inst.gt, inst.ignore))
            agreement[view.name].append(iou(binarize(prob), identity))
        for n in tta:
            mean, _ = combine_views(torch.from_numpy(np.stack(maps[:n])))
            tta[n].append(iou(binarize(mean.numpy()), inst.gt, inst.ignore))
        direct_maps.append(maps[0])
        truths.append(inst.gt)
        for mode in modes:
            for k in ks:
                for sampling in samplings:
                    t0 = time.perf_counter()
                    triangulated = predictor.predict(clicks, triangulation=k, triangulation_sampling=sampling,
                                                     triangulation_blend=0.0, triangulation_mode=mode,
                                                     zoom_in=False, upsample="bilinear").probabilities
                    seconds[(mode, k)].append(time.perf_counter() - t0)
                    for alpha in BLENDS:
                        blended = alpha * maps[0] + (1 - alpha) * triangulated
                        tri[(mode, k, sampling, alpha)].append(iou(binarize(blended), inst.gt, inst.ignore))
    ece, brier = calibration(direct_maps, truths)

    def pct(values: list[float]) -> float:
        return 100.0 * float(np.mean(values))

    direct = 100.0 * np.asarray(per_view[D4_VIEWS[0].name])
    gains = {(m, k, s): paired_difference(100.0 * np.asarray(tri[(m, k, s, 0.0)]), direct)
             for m in modes for k in ks for s in samplings}
    command = f"python scripts/{PROG} " + " ".join(argv if argv is not None else sys.argv[1:])
    report_json = {
        "command": command, "hardware": hardware_info(), "when": timestamp(),
        "model": args.model or "embedded default", "instances": len(instances), "split": "validation",
        "per_view_miou1": {k: pct(v) for k, v in per_view.items()},
        "view_agreement_iou": {k: pct(v) for k, v in agreement.items()},
        "tta_miou1": {str(n): pct(v) for n, v in tta.items()},
        "view_sets_miou1": {f"{name} [{mode}]": pct(v) for (name, mode), v in view_scores.items()},
        "calibration": {"ece": ece, "brier": brier},
        # the seed's form keeps its earlier keys; the conditioned form has its own entry
        **{("triangulation_miou1" if m == "independent" else f"{m}_triangulation_miou1"):
           {f"K={k},{s},alpha={a}": pct(tri[(m, k, s, a)]) for k in ks for s in samplings for a in BLENDS}
           for m in modes},
        "triangulation_gain_over_direct": {f"{m},K={k},{s}": g for (m, k, s), g in gains.items()},
        "triangulation_seconds": {f"{m},K={k}": float(np.mean(v)) for (m, k), v in seconds.items()},
        "seconds_total": time.perf_counter() - started,
    }
    lines = [f"# Inference-time scaling analysis ({report_json['model']}, {len(instances)} validation masks, "
             "center click)", "", f"Command: `{command}`", "", f"Hardware: {json.dumps(report_json['hardware'])}", "",
             "| view | mIoU@1 alone | IoU with identity view |", "|---|---|---|"]
    lines += [f"| {k} | {report_json['per_view_miou1'][k]:.2f} | {report_json['view_agreement_iou'][k]:.2f} |"
              for k in per_view]
    lines += ["", "| TTA views | mIoU@1 |", "|---|---|"]
    lines += [f"| {n} | {v:.2f} |" for n, v in report_json["tta_miou1"].items()]
    lines += ["", "| views | mean of probabilities | mean of logits |", "|---|---|---|"]
    lines += [f"| {name} | {pct(view_scores[(name, 'probability')]):.2f} | "
              f"{pct(view_scores[(name, 'logit')]):.2f} |" for name in view_sets]
    lines += ["", f"Calibration of the direct estimate: ECE {ece:.4f}, Brier {brier:.4f}", "",
              "| triangulation | " + " | ".join(f"α={a}" for a in BLENDS) + " |",
              "|---|" + "---|" * len(BLENDS)]
    for m in modes:
        suffix = "" if m == "independent" else f", {m}"
        for k in ks:
            for s in samplings:
                lines.append(f"| K={k} {s}{suffix} | " + " | ".join(f"{pct(tri[(m, k, s, a)]):.2f}" for a in BLENDS)
                             + " |")
    lines += ["", "α = 1 is the direct estimate, α = 0 the pure triangulated estimate.", "",
              f"Gain of the pure triangulated estimate (α = 0) over the direct one ({direct.mean():.2f}), "
              "mIoU@1 points, with the paired 95 % bootstrap interval over the masks:", "",
              "| K | sampling | " + " | ".join(modes) + " |", "|---|---|" + "---|" * len(modes)]
    for k in ks:
        for s in samplings:
            cells = [f"{g['diff']:+.2f} [{g['low']:+.2f}, {g['high']:+.2f}]"
                     for g in (gains[(m, k, s)] for m in modes)]
            lines.append(f"| {k} | {s} | " + " | ".join(cells) + " |")
    lines += ["", "Seconds per triangulated call (mean over masks and samplings): " + ", ".join(
        f"{m} K={k} {report_json['triangulation_seconds'][f'{m},K={k}']:.2f} s" for m in modes for k in ks) + "."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analysis.json").write_text(json.dumps(report_json, indent=2))
    (args.out / "analysis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {args.out}/analysis.json and analysis.md in {report_json['seconds_total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
