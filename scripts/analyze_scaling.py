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
    α·direct + (1 − α)·triangulated, to choose α on validation data.
Writes analysis.json and analysis.md, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hf_iis import SignedClickPredictor
from hf_iis.evaluation.benchmarks import instances_from_samples, load_corpus_split
from hf_iis.evaluation.metrics import binarize, iou
from hf_iis.scaling.triangulation import SAMPLINGS
from hf_iis.scaling.tta import D4_VIEWS, VIEW_ORDER, combine_views
from hf_iis.utils.clicker import center_click

BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
# view choice: the first n of VIEW_ORDER (what tta=n uses) against sets with the rescale views
VIEW_SETS = {
    "tta=1": [v.name for v in VIEW_ORDER[:1]],
    "tta=2 (identity, hflip)": [v.name for v in VIEW_ORDER[:2]],
    "tta=4 (the flips)": [v.name for v in VIEW_ORDER[:4]],
    "tta=8 (D4)": [v.name for v in VIEW_ORDER[:8]],
    "identity, hflip, 2 rescales": ["identity", "hflip", "scale0.75", "scale1.25"],
    "identity, hflip, 4 (flipped) rescales": ["identity", "hflip", "scale0.75", "scale1.25", "hflip+scale0.75",
                                              "hflip+scale1.25"],
    "tta=12 (all views)": [v.name for v in VIEW_ORDER],
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--corpus", default="data_cache/corpus")
    parser.add_argument("--limit", type=int, default=None, help="at most this many validation images")
    parser.add_argument("--triangulation", default="4,16", help="K values, comma list")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("outputs/analysis/default"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    predictor = SignedClickPredictor.from_pretrained(args.model)
    try:
        samples = load_corpus_split(args.corpus, "validation", limit=args.limit, min_masks=1)
    except FileNotFoundError as error:
        parser.error(str(error))
    instances = instances_from_samples(samples)
    ks = [int(k) for k in args.triangulation.split(",") if k]
    per_view = {v.name: [] for v in D4_VIEWS}
    agreement = {v.name: [] for v in D4_VIEWS}
    tta = {n: [] for n in (1, 2, 4, 8)}
    view_sets = {(name, mode): [] for name in VIEW_SETS for mode in ("probability", "logit")}
    tri = {(k, s, a): [] for k in ks for s in SAMPLINGS for a in BLENDS}
    seconds = {("tri", k): [] for k in ks}
    direct_maps, truths = [], []
    started = time.perf_counter()
    for inst in tqdm(instances, desc="validation masks"):
        predictor.set_image(inst.image)
        click = center_click(inst.gt, inst.ignore)
        clicks = [(click.x, click.y, click.sign)]
        by_name = {v.name: predictor.predict(clicks, tta=[v.name]).probabilities for v in VIEW_ORDER}
        maps = [by_name[v.name] for v in D4_VIEWS]
        for (name, mode), values in view_sets.items():
            mean, _ = combine_views(torch.from_numpy(np.stack([by_name[v] for v in VIEW_SETS[name]])), mode)
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
        for k in ks:
            for sampling in SAMPLINGS:
                t0 = time.perf_counter()
                triangulated = predictor.predict(clicks, triangulation=k, triangulation_sampling=sampling,
                                                 triangulation_blend=0.0).probabilities
                seconds[("tri", k)].append(time.perf_counter() - t0)
                for alpha in BLENDS:
                    blended = alpha * maps[0] + (1 - alpha) * triangulated
                    tri[(k, sampling, alpha)].append(iou(binarize(blended), inst.gt, inst.ignore))
    ece, brier = calibration(direct_maps, truths)

    def pct(values: list[float]) -> float:
        return 100.0 * float(np.mean(values))

    report = {
        "model": args.model or "embedded default", "instances": len(instances), "split": "validation",
        "per_view_miou1": {k: pct(v) for k, v in per_view.items()},
        "view_agreement_iou": {k: pct(v) for k, v in agreement.items()},
        "tta_miou1": {str(n): pct(v) for n, v in tta.items()},
        "view_sets_miou1": {f"{name} [{mode}]": pct(v) for (name, mode), v in view_sets.items()},
        "calibration": {"ece": ece, "brier": brier},
        "triangulation_miou1": {f"K={k},{s},alpha={a}": pct(v) for (k, s, a), v in tri.items()},
        "triangulation_seconds": {f"K={k}": float(np.mean(v)) for (_, k), v in seconds.items()},
        "seconds_total": time.perf_counter() - started,
    }
    lines = [f"# Inference-time scaling analysis ({report['model']}, {len(instances)} validation masks, center click)",
             "", "| view | mIoU@1 alone | IoU with identity view |", "|---|---|---|"]
    lines += [f"| {k} | {report['per_view_miou1'][k]:.2f} | {report['view_agreement_iou'][k]:.2f} |" for k in per_view]
    lines += ["", "| TTA views | mIoU@1 |", "|---|---|"]
    lines += [f"| {n} | {v:.2f} |" for n, v in report["tta_miou1"].items()]
    lines += ["", "| views | mean of probabilities | mean of logits |", "|---|---|---|"]
    lines += [f"| {name} | {pct(view_sets[(name, 'probability')]):.2f} | {pct(view_sets[(name, 'logit')]):.2f} |"
              for name in VIEW_SETS]
    lines += ["", f"Calibration of the direct estimate: ECE {ece:.4f}, Brier {brier:.4f}", "",
              "| triangulation | " + " | ".join(f"α={a}" for a in BLENDS) + " |",
              "|---|" + "---|" * len(BLENDS)]
    for k in ks:
        for s in SAMPLINGS:
            lines.append(f"| K={k} {s} | " + " | ".join(f"{pct(tri[(k, s, a)]):.2f}" for a in BLENDS) + " |")
    lines += ["", "α = 1 is the direct estimate, α = 0 the pure triangulated estimate."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analysis.json").write_text(json.dumps(report, indent=2))
    (args.out / "analysis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {args.out}/analysis.json and analysis.md in {report['seconds_total']:.0f} s")


if __name__ == "__main__":
    main()
