r"""Zero-shot proposals of the distilled student next to the teacher's: recall vs number of proposals.

    python scripts/evaluate_student.py --student runs/student/final --teacher hf_iis/checkpoints/default \
        --corpus data_cache/corpus_v2 --limit 20 --out outputs/eval/student_proposals

Rows (same images, same scoring: `hf_iis.evaluation.proposals`):
  - teacher, click sampling: single positive clicks on an 8 x 8 grid + 32 random pixels, mask NMS (the protocol of
    `scripts/evaluate.py --protocols proposals`);
  - student, click sampling: the same protocol on the student;
  - student, feature partition: `hf_iis.evaluation.feature_proposals` (greedy covering of the embedding grid, no
  clicks).
Images: the corpus's validation split (held out from training and from distillation), rows with >= 2 masks.
Writes results.json, table.md and plots/proposals_ar.png under --out. The click benchmarks (mIoU@1, NoC) of the
student run through scripts/evaluate.py --model <student folder>.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", required=True, help="student checkpoint folder (scripts/distill.py train ... /final)")
    p.add_argument("--teacher", default=None, help="teacher checkpoint folder (default: the embedded model); "
                   "'none' to skip the teacher row")
    p.add_argument("--corpus", default="data_cache/corpus_v2", help="corpus folder: its validation split is read")
    p.add_argument("--limit", type=int, default=20, help="images (default %(default)s)")
    p.add_argument("--min-masks", type=int, default=2)
    p.add_argument("--max-proposals", type=int, default=96, help="curve length (= the click protocol's 8² + 32)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="outputs/eval/student_proposals")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import torch

    from hf_iis.evaluation.benchmarks import load_corpus_split
    from hf_iis.evaluation.feature_proposals import run_feature_proposals
    from hf_iis.evaluation.plots import plot_ar_curves
    from hf_iis.evaluation.proposals import run_proposals, summarize_proposals
    from hf_iis.evaluation.report import proposals_table
    from hf_iis.evaluation.segmenters import ModelSegmenter
    from hf_iis.inference.predictors import is_student, load_predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        samples = load_corpus_split(args.corpus, "validation", args.limit, args.min_masks)
        student = load_predictor(args.student)
        if not is_student(student.model):
            raise ValueError(f"--student {args.student} is not a student checkpoint")
        teacher = None if str(args.teacher).lower() == "none" else load_predictor(args.teacher)
    except (FileNotFoundError, ValueError) as error:
        print(f"evaluate_student.py: error: {error}", file=sys.stderr)
        return 2
    progress = not args.no_progress
    runs = {}
    if teacher is not None:
        runs["teacher, click sampling"] = run_proposals(ModelSegmenter(teacher, name="teacher"), samples,
                                                        progress=progress)
    runs["student, click sampling"] = run_proposals(ModelSegmenter(student, name="student"), samples,
                                                    progress=progress)
    runs["student, feature partition"] = run_feature_proposals(student, samples, args.max_proposals,
                                                               progress=progress)
    rows = []
    for name, method_runs in runs.items():
        summary = summarize_proposals(method_runs)
        curve = summary["ar_curve"]
        rows.append({"model": name, "data": args.corpus, "held_out": True, "images": len(samples), **summary,
                     **{f"AR@{n}": curve[min(n, len(curve)) - 1] for n in (1, 5, 10, 20, 50)}})
    out = Path(args.out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    command = "python scripts/evaluate_student.py " + shlex.join(argv)
    (out / "results.json").write_text(json.dumps({"command": command, "student": args.student,
                                                  "teacher": args.teacher, "proposals": rows}, indent=1))
    extra = "| method | AR@1 | AR@5 | AR@10 | AR@20 | AR@50 |\n|---|---|---|---|---|---|\n" + "".join(
        f"| {r['model']} | " + " | ".join(f"{r[f'AR@{n}']:.1f}" for n in (1, 5, 10, 20, 50)) + " |\n" for r in rows)
    (out / "table.md").write_text(f"# Zero-shot proposals: student vs teacher\n\nCommand: `{command}`\n\n"
                                  f"{proposals_table(rows)}\n\n{extra}")
    plot_ar_curves({r["model"]: r["ar_curve"] for r in rows}, out / "plots" / "proposals_ar.png",
                   f"zero-shot proposals, {args.corpus} validation")
    for r in rows:
        print(f"{r['model']:28s} AR@#gt={r['AR@#gt']:.1f} #proposals={r['mean #proposals']:.1f} "
              f"s/image={r['seconds per image']:.2f}")
    print(f"wrote {out}/results.json, table.md, plots/proposals_ar.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
