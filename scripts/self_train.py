"""Adapt the click model to your own unlabelled photos (self-training): the model, scaled (TTA views + zoom-in),
pseudo-labels random clicks on the photos, and its click decoder is fine-tuned on those labels from cached frozen
image embeddings.

    python scripts/self_train.py --photos my_photos/ --out runs/self_train_mine
    python scripts/self_train.py --photos a/ --photos b/ --out runs/st --steps 2000 --max-minutes 30
    # the unscaled teacher's pseudo-labels, to compare against:
    python scripts/self_train.py --photos my_photos/ --tta 1 --zoom-in off --out runs/self_train_unscaled
    # the labelling stage split between 2 CPU processes (one thread each on 2 cores):
    ACCELERATE_USE_CPU=1 python -m accelerate.commands.launch --config_file configs/accelerate/cpu_2proc.yaml \
        scripts/self_train.py --photos my_photos/ --out runs/self_train_mine --threads 1

Stages (`hf_iis/training/self_training.py`), each skipped when a rerun finds it done:
  1. pseudo-labels: --clicks-per-photo positive clicks drawn at random (seeded) in each photo's central 90 %, each
     answered by the teacher (`hf_iis.labelling`, `pipeline(..., tta=N, zoom_in=...)`); an answer is kept when its
     score (the mean probability inside the mask) is >= --min-score, its area is within [--min-area, --max-area]
     of the photo, and it is not a near copy (IoU > 0.9) of one already kept. Written as a parquet corpus
     (<out>/corpus, train split). Unreadable files are skipped and counted.
  2. the teacher's image embeddings of --views views per photo (<out>/cache);
     Each kept answer is a corpus row of its own with its click's region (a disk of 3 % of the longer side,
     inside the answer); answers that do not cover their click's neighbourhood are dropped and counted.
     --no-anchored: one row per photo with its kept answers (the loop before --anchored existed).
  3. the decoder fine-tuned from the teacher's own weights for --steps steps (resumable legs; --max-minutes ends a
     leg early: rerun the same command to continue). Each step clicks once, positive, in a label's own click
     region: the only question the teacher answered. --no-anchored clicks anywhere in a pseudo-label (and outside
     it, negative), as for human masks; measured, that loses (docs/results_self_training.md). --replay adds the
     shards of labelled caches to the draw.
     The result: <out>/final, `pipeline("interactive-segmentation", model="<out>/final")`.

<out>/self_train_info.json records the teacher (path, sha256), the settings, the photos' fingerprint and the counts
(photos read and skipped, pseudo-labels kept and dropped by reason, the quantiles of all answers' scores: what
--min-score cuts into). Rerunning with another teacher, other settings or other photos is refused; --max-minutes,
--threads and --device may change, and the filter (--min-score, --min-area, --max-area) and training settings too
until the corpus is written (a filter that kept nothing is retried without labelling again).

The folder rules of distillation hold: benchmark folders are refused, CCP's annotated photos 0001-1004 are skipped,
CamVid's test split is refused.
Under `accelerate launch` the processes share the labelling; the cache and the training run in the main process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as scripts/train.py: idle OpenMP threads sleep

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, positive_int, report  # noqa: E402

PROG = "self_train.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", action="append", required=True, help="a folder of unlabelled photos; repeatable")
    parser.add_argument("--model", default=None, help="checkpoint folder to adapt (default: the embedded model)")
    parser.add_argument("--out", required=True, help="output folder (an existing run in it is resumed)")
    parser.add_argument("--tta", type=positive_int, default=2, help="the teacher's TTA views (default 2)")
    parser.add_argument("--zoom-in", default="auto", help="auto | on | off: the teacher's zoom-in (default auto)")
    parser.add_argument("--clicks-per-photo", type=positive_int, default=4, help="random clicks per photo (4)")
    parser.add_argument("--min-score", type=float, default=0.75,
                        help="keep an answer whose score (mean probability inside its mask) is >= this (0.75)")
    parser.add_argument("--min-area", type=float, default=0.002, help="smallest kept mask, fraction of the photo")
    parser.add_argument("--max-area", type=float, default=0.9, help="largest kept mask, fraction of the photo")
    parser.add_argument("--anchored", action=argparse.BooleanOptionalAction, default=True,
                        help="train on each pseudo-label's own click (a small region around it, positive only; the "
                             "default) or, with --no-anchored, on clicks redrawn anywhere in the answer and outside it")
    parser.add_argument("--replay", action="append", default=[], metavar="CACHE",
                        help="an embedding cache of labelled data from the same --model (scripts/train_decoder.py "
                             "cache), joined to the training draw shard for shard; repeatable")
    parser.add_argument("--views", type=positive_int, default=2, help="cached views per photo (default 2)")
    parser.add_argument("--steps", type=positive_int, default=1000, help="decoder steps in all (default 1000)")
    parser.add_argument("--lr", type=float, default=1.0e-4, help="peak learning rate (default 1e-4)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="cached views per step (default 16)")
    parser.add_argument("--max-minutes", type=float, default=None, help="end this leg after this much training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", default=None, help="labelling device (default: the process's accelerate device)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def _quiet_libraries() -> Callable[[], None]:
    """Turn the libraries' own bars off (parquet writing, weight loading); returns what turns them back on, so an
    in-process caller (tests) keeps its settings."""
    import datasets
    from transformers.utils import logging as transformers_logging

    was = datasets.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()

    def restore() -> None:
        if was[0]:
            datasets.enable_progress_bars()
        if was[1]:
            transformers_logging.enable_progress_bar()
    return restore


def main(argv: list[str] | None = None) -> int:
    restore = None
    try:
        args = parse_args(argv)
        restore = _quiet_libraries() if args.no_progress else None
        from hf_iis.checkpoint_paths import DEFAULT_CHECKPOINT
        from hf_iis.training.self_training import SelfTrainSettings, self_train

        settings = SelfTrainSettings(
            # absolute paths: a rerun from another folder, or naming the default, is the same run
            photos=tuple(str(Path(f).resolve()) for f in args.photos),
            model=str(Path(args.model).resolve() if args.model else DEFAULT_CHECKPOINT), tta=args.tta,
            zoom_in=args.zoom_in, clicks_per_photo=args.clicks_per_photo, min_score=args.min_score,
            min_area=args.min_area, max_area=args.max_area, views=args.views, steps=args.steps, lr=args.lr,
            batch_size=args.batch_size, seed=args.seed, anchored=args.anchored,
            replay=tuple(str(Path(c).resolve()) for c in args.replay), max_minutes=args.max_minutes,
            threads=args.threads,
            device=args.device)
        record = self_train(settings, args.out, progress=not args.no_progress)
    except USAGE_ERRORS as error:
        return report(PROG, error)
    finally:
        if restore is not None:
            restore()
    if record is not None:
        stages = record["stages"]
        print(json.dumps({"out": args.out, "pseudo_labels": {k: v for k, v in stages["pseudo_labels"].items()
                                                             if k != "skipped"},
                          "cache": stages.get("cache"), "train": stages.get("train")}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
