"""Distil the signed-click teacher into the feature-space student: build the teacher-target cache, then
train on it.

    python scripts/distill.py cache --teacher hf_iis/checkpoints/default --corpus data_cache/corpus_v2 \
        --image-dir /work/extra_data/CCP/photos --out data_cache/distill_v1 --images 4000 --clicks 16 --tta 4
    python scripts/distill.py train --config configs/distill_student.yaml --cache data_cache/distill_v1 \
        --output-dir runs/student --max-steps 3000
    python scripts/distill.py train --config configs/distill_student.yaml --cache data_cache/distill_v1 \
        --output-dir runs/student --resume                       # continue the latest checkpoint
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml scripts/distill.py train ...

    python scripts/distill.py train-rule --student hf_iis/checkpoints/student --cache data_cache/distill_v1 \
        --out runs/student_rule --steps 300 --threads 1    # only the learned multi-click rule, the rest frozen

`cache` resumes too: rerun the same command and the shards already written are skipped. The student ends in
<output-dir>/final: `pipeline("interactive-segmentation", model="<output-dir>/final")`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as scripts/train.py: idle OpenMP threads sleep

from hf_iis.cli_checks import (  # noqa: E402
    USAGE_ERRORS,
    ArgumentParser,
    check_output_dir,
    non_negative_int,
    positive_int,
    report,
)

PROG = "distill.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cache = sub.add_parser("cache", help="teacher maps for random clicks on unlabelled images -> parquet shards")
    cache.add_argument("--teacher", default=None, help="teacher checkpoint folder (default: the embedded model)")
    cache.add_argument("--corpus", action="append", default=[], help="parquet corpus folder: its train split's "
                       "images (masks ignored; the validation split is never read); repeatable")
    cache.add_argument("--image-dir", action="append", default=[], help="a folder of unlabelled images; "
                       "repeatable (in a CCP folder the annotated photos 0001-1004 are skipped)")
    cache.add_argument("--out", required=True, help="cache folder")
    cache.add_argument("--images", type=positive_int, default=None,
                       help="at most N images (a seeded shuffle; default all)")
    cache.add_argument("--clicks", type=positive_int, default=16,
                       help="single clicks per image, half positive (default 16)")
    cache.add_argument("--sequences", type=non_negative_int, default=4, help="click sequences per image (default 4)")
    cache.add_argument("--sequence-clicks", type=positive_int, default=3,
                       help="clicks of the longest sequence (default 3)")
    cache.add_argument("--tta", type=positive_int, default=4, help="teacher TTA views (default 4: its best setting)")
    cache.add_argument("--triangulation", type=non_negative_int, default=0,
                       help="teacher triangulation pixels (default 0)")
    cache.add_argument("--zoom-in", choices=("off", "auto"), default="off",
                       help="auto: the click sequences' maps also use the teacher's zoom-in view (default off)")
    cache.add_argument("--stride", type=int, default=4, choices=(4, 8), help="target grid stride (default 4)")
    cache.add_argument("--shard-size", type=positive_int, default=64)
    cache.add_argument("--seed", type=int, default=0)
    cache.add_argument("--part", default="0/1", metavar="K/N",
                       help="build only shards K, K+N, K+2N, ... (0 <= K < N): run N of these side by side on one "
                            "--out (default 0/1: all)")
    cache.add_argument("--threads", type=positive_int, default=None)
    cache.add_argument("--no-progress", action="store_true")
    train = sub.add_parser("train", help="train the student on a cache")
    train.add_argument("--config", default=None, help="YAML (configs/distill_student.yaml)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument("--cache", default=None, help="= cache")
    train.add_argument("--output-dir", default=None, help="= output_dir")
    train.add_argument("--max-steps", type=positive_int, default=None, help="= max_steps")
    train.add_argument("--resume", nargs="?", const=True, default=False,
                       help="continue the latest checkpoint of the run folder (or the given checkpoint)")
    train.add_argument("--no-progress", action="store_true")
    rule = sub.add_parser("train-rule", help="train only a student's learned multi-click rule on a cache")
    rule.add_argument("--student", required=True, help="student checkpoint folder (its rule is added if absent)")
    rule.add_argument("--cache", required=True, help="teacher-target cache folder with click sequences")
    rule.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, final/")
    rule.add_argument("--steps", type=positive_int, default=300)
    rule.add_argument("--batch-images", type=positive_int, default=8, help="images per step (all their sequences)")
    rule.add_argument("--lr", type=float, default=1e-3)
    rule.add_argument("--prev-drop", type=float, default=0.5,
                      help="probability that a sequence gets no previous map (default 0.5)")
    rule.add_argument("--repeat-prob", type=float, default=0.0,
                      help="probability that a sequence is extended with repeats of its own clicks (default 0)")
    rule.add_argument("--max-clicks", type=positive_int, default=20,
                      help="longest click set after repeats (default 20, the click protocol's)")
    rule.add_argument("--channels", type=positive_int, default=32, help="width of a fresh rule (default 32)")
    rule.add_argument("--save-every", type=positive_int, default=50, help="checkpoint every N steps (default 50)")
    rule.add_argument("--seed", type=int, default=0)
    rule.add_argument("--resume", action="store_true", help="continue the run in --out (same settings)")
    rule.add_argument("--threads", type=positive_int, default=None)
    rule.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def parse_part(text: str) -> tuple[int, int]:
    """`K/N` with 0 <= K < N, e.g. 1/2 (the second of two builders)."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        raise ValueError(f"--part {text!r}: expected K/N with 0 <= K < N, e.g. 0/2 and 1/2 for two builders")
    return int(k), int(n)


def run_cache(args: argparse.Namespace) -> int:
    import torch

    from hf_iis.checkpoint_paths import DEFAULT_CHECKPOINT
    from hf_iis.distillation.cache import build_cache
    from hf_iis.distillation.sources import corpus_images, folder_images, open_corpus, select_images
    from hf_iis.distillation.teacher_targets import TargetSpec
    from hf_iis.inference.predictors import load_predictor

    # every setting and the output folder are checked before the teacher loads or cache_info.json is written
    if not args.corpus and not args.image_dir:
        raise ValueError("give at least one --corpus or --image-dir")
    check_output_dir(args.out, "--out")
    part = parse_part(args.part)
    spec = TargetSpec(args.clicks, args.sequences, args.sequence_clicks, args.tta, args.triangulation,
                      zoom_in=args.zoom_in == "auto")
    if args.threads:
        torch.set_num_threads(args.threads)
    corpora = {folder: open_corpus(folder) for folder in args.corpus}
    refs = [r for folder, data in corpora.items() for r in corpus_images(folder, data)]
    refs += [r for folder in args.image_dir for r in folder_images(folder)]
    refs = select_images(refs, args.images, args.seed)
    teacher = load_predictor(args.teacher)
    if type(teacher).__name__ != "SignedClickPredictor":
        raise ValueError("--teacher must be a teacher checkpoint (a SignedClickModel), not a student")
    started = time.perf_counter()
    info = build_cache(teacher, str(args.teacher or DEFAULT_CHECKPOINT), refs, args.out, spec, args.stride, corpora,
                       args.seed, args.shard_size, progress=not args.no_progress, part=part)
    seconds = time.perf_counter() - started
    done = info["rows_written_now"] + info["skipped_now"]
    print(json.dumps({**info, "seconds": round(seconds, 1),
                      "seconds_per_image": round(seconds / done, 3) if done else None}))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from hf_iis.distillation.config import load_distill_config
    from hf_iis.distillation.trainer import distill

    shortcuts = {"cache": args.cache, "output_dir": args.output_dir, "max_steps": args.max_steps}
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    summary = distill(load_distill_config(args.config, overrides), resume=args.resume,
                      progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


def run_train_rule(args: argparse.Namespace) -> int:
    import torch

    from hf_iis.distillation.rule_training import RuleTrainSpec, check_student_folder, train_rule

    spec = RuleTrainSpec(args.steps, args.batch_images, args.lr, prev_drop=args.prev_drop, channels=args.channels,
                         save_every=args.save_every, seed=args.seed, repeat_prob=args.repeat_prob,
                         max_clicks=args.max_clicks)
    check_student_folder(args.student)
    check_output_dir(args.out, "--out")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(train_rule(args.student, args.cache, args.out, spec, resume=args.resume,
                                progress=not args.no_progress)))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        commands = {"cache": run_cache, "train": run_train, "train-rule": run_train_rule}
        return commands[args.command](args)
    except USAGE_ERRORS as error:
        return report(PROG, error)


if __name__ == "__main__":
    sys.exit(main())
