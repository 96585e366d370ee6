r"""Choose between checkpoints on the training corpus's VALIDATION split (never a benchmark), with paired intervals.

    python scripts/compare_checkpoints.py --baseline hf_iis/checkpoints/default \
        --candidate s384=runs/stage3_384/final --candidate area=runs/stage3_area/final --out outputs/compare/stage3

Teacher and student checkpoints (`hf_iis.inference.predictors.load_predictor`) mix freely. Every model sees the same
validation masks and the same clicks: the center click (the standard clicker's first click) decoded plainly and with
tta=4, and three uniformly random positive clicks (the training loop's validation metric, seeds 0-2, each decoded on
its own); `--metrics` adds "center triangulation" (16 foreground-sampled auxiliary pixels for a teacher, the exact
sum for a student). For each candidate the table gives its mIoU@1 and the mean paired difference to the baseline
with a 95 % bootstrap interval over masks (`hf_iis.evaluation.metrics.paired_difference`): a difference whose
interval contains 0 is not evidence either way. Writes compare.json and compare.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hf_iis.checkpoint_paths import resolve_checkpoint
from hf_iis.cli_checks import check_output_dir
from hf_iis.evaluation.benchmarks import instances_from_samples, load_corpus_split
from hf_iis.evaluation.metrics import binarize, iou, paired_difference
from hf_iis.evaluation.protocols import instance_rng
from hf_iis.evaluation.report import hardware_info, timestamp
from hf_iis.inference.predictors import load_predictor
from hf_iis.utils.clicker import center_click, random_click

METRICS = ("center", "center tta=4", "random")
# Opt-in (--metrics): the center click through triangulation (16 foreground-sampled auxiliary pixels for a teacher,
# 2 x 16 decodes per mask; exact over all auxiliary pixels for a student).
OPTIONAL_METRICS = ("center triangulation",)
# zoom_in=False and bilinear upsampling throughout: the model's own first-click answers, as measured before the
# defaults became zoom_in="auto" and upsample="guided" (the comparisons in the docs stay reproducible)
_AS_BEFORE = {"zoom_in": False, "upsample": "bilinear"}
CENTER_SETTINGS = {"center": {"tta": 1, **_AS_BEFORE}, "center tta=4": {"tta": 4, **_AS_BEFORE},
                   "center triangulation": {"tta": 1, "triangulation": 16, "triangulation_sampling": "foreground",
                                            **_AS_BEFORE}}
SEEDS = (0, 1, 2)


def score_model(folder: str | None, instances, progress: bool = True,
                metrics: tuple[str, ...] = METRICS) -> dict[str, list[float]]:
    """Per-mask IoU (percent) of one checkpoint (teacher or distilled student) for each of `metrics`."""
    predictor = load_predictor(folder)
    scores = {m: [] for m in metrics}
    for inst in tqdm(instances, desc=f"validation {folder or 'default'}", disable=not progress):
        predictor.set_image(inst.image)
        c = center_click(inst.gt, inst.ignore)
        for name, settings in CENTER_SETTINGS.items():
            if name not in scores:
                continue
            probabilities = predictor.predict([(c.x, c.y, c.sign)], **settings).probabilities
            scores[name].append(100.0 * iou(binarize(probabilities), inst.gt, inst.ignore))
        if "random" not in scores:
            continue
        clicks = [random_click(inst.gt, instance_rng(inst.id, seed), +1, inst.ignore) for seed in SEEDS]
        maps = predictor.predict_single_clicks(np.array([(r.x, r.y) for r in clicks], dtype=np.float32), sign=1)
        scores["random"].append(float(np.mean([100.0 * iou(binarize(m), inst.gt, inst.ignore) for m in maps])))
    return scores


def source_table(per_mask: dict[str, list[float]], sources: list[str], metric: str) -> list[str]:
    """Markdown lines: per corpus source, each checkpoint's mIoU of `metric` and its paired difference to the
    baseline (the first entry of `per_mask`), with a 95 % bootstrap interval over that source's masks."""
    names = sorted(set(sources))
    counts = {n: sources.count(n) for n in names}
    lines = [f"Per source ({metric}): mIoU, and Δ to the baseline [95 % CI] over that source's masks.", "",
             "| checkpoint | " + " | ".join(f"{n} (N = {counts[n]})" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    base = np.asarray(per_mask["baseline"])
    for name, scores in per_mask.items():
        scores = np.asarray(scores)
        cells = []
        for n in names:
            keep = np.array([s == n for s in sources])
            cell = f"{scores[keep].mean():.2f}"
            if name != "baseline":
                d = paired_difference(scores[keep].tolist(), base[keep].tolist())
                cell += f" ({d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}])"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=FOLDER", required=True)
    parser.add_argument("--corpus", default="data_cache/corpus")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help=f"comma-separated subset of: {', '.join(METRICS + OPTIONAL_METRICS)} (default: "
                             f"{', '.join(METRICS)})")
    parser.add_argument("--by-source", action="store_true",
                        help="also a table per corpus source (COCO objects, CCP parts and persons, ...) for the first "
                             "metric: which kind of mask a checkpoint gains or loses on")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("outputs/compare"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    candidates = []
    for item in args.candidate:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--candidate takes NAME=FOLDER, got {item!r}")
        candidates.append((name, folder))
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    unknown = [m for m in metrics if m not in METRICS + OPTIONAL_METRICS]
    if unknown or not metrics:
        parser.error(f"--metrics takes a comma-separated subset of {', '.join(METRICS + OPTIONAL_METRICS)}; "
                     f"got {args.metrics!r}")

    # every folder and the output path before the first model is scored (minutes each)
    for what, folder in [("--baseline", args.baseline), *((f"--candidate {n}", f) for n, f in candidates)]:
        if folder is not None:
            try:
                resolve_checkpoint(folder)
            except FileNotFoundError as error:
                parser.error(f"{what}: {error}")
    try:
        check_output_dir(args.out, "--out")
    except ValueError as error:
        parser.error(str(error))
    try:
        samples = load_corpus_split(args.corpus, "validation", min_masks=1)
    except FileNotFoundError as error:
        parser.error(str(error))
    instances = instances_from_samples(samples)
    sources = [s.source for s in samples for _ in s.masks]
    base = score_model(args.baseline, instances, not args.no_progress, metrics)
    per_mask = {"baseline": base[metrics[0]]}
    rows = [{"name": "baseline", "folder": args.baseline or "embedded default",
             **{m: float(np.mean(base[m])) for m in metrics}}]
    for name, folder in candidates:
        scores = score_model(folder, instances, not args.no_progress, metrics)
        per_mask[name] = scores[metrics[0]]
        row = {"name": name, "folder": folder}
        for m in metrics:
            row[m] = float(np.mean(scores[m]))
            row[f"{m} vs baseline"] = paired_difference(scores[m], base[m])
        rows.append(row)

    header = "| checkpoint | " + " | ".join(f"{m} mIoU@1 | Δ [95 % CI]" for m in metrics) + " |"
    lines = [f"Validation split of `{args.corpus}`: {len(instances)} masks. Paired differences to the baseline "
             f"(`{rows[0]['folder']}`), bootstrap over masks.", "", header,
             "|---|" + "---|---|" * len(metrics)]
    for row in rows:
        cells = []
        for m in metrics:
            d = row.get(f"{m} vs baseline")
            cells += [f"{row[m]:.2f}", "—" if d is None else f"{d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    if args.by_source:
        lines += ["", *source_table(per_mask, sources, metrics[0])]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"created": timestamp(), "hardware": hardware_info(), "corpus": args.corpus, "masks": len(instances),
              "seeds": list(SEEDS), "metrics": list(metrics), "rows": rows,
              "sources": sources if args.by_source else None,
              "per_mask": per_mask if args.by_source else None}
    (args.out / "compare.json").write_text(json.dumps(report, indent=2))
    (args.out / "compare.md").write_text(text + "\n")
    print(f"wrote {args.out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
