"""Build Hugging Face parquet datasets from the segmentation folders.

    # the training corpus: COCO-MVal + BSDS500 test, fixed validation tenth of COCO-MVal
    python scripts/build_datasets.py --data-root ../shared/data --out data_cache/corpus
    # + ECSSD, CCP 0001-0900, Weizmann, CamVid train+val (../shared/data/EXTRA.md; rebuild the folder with
    # scripts/extract_extra_data.py), and a small fixed validation slice of them
    python scripts/build_datasets.py --data-root ../shared/data --extra-root /work/extra_data --out data_cache/corpus_v2
    # any single layout folder (benchmarks included: a plain conversion, not a training corpus)
    python scripts/build_datasets.py --layout grabcut --root ../shared/data/GrabCut --out data_cache/grabcut
    # a COCO-format annotation file + image folder
    python scripts/build_datasets.py --coco-json ann.json --images img/ --out data_cache/mycoco
    # then, optionally (needs network + token)
    python scripts/build_datasets.py ... --push-to-hub user/repo

Prints images, masks and skipped instances by reason, and the time taken.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, check_output_dir, positive_int, report
from hf_iis.data import LAYOUTS, default_data_root
from hf_iis.data.hf_datasets import DEFAULT_SOURCES, EXTRA_SOURCES, build_corpus, convert_folder, push_to_hub

REPO_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository
PROG = "build_datasets.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=None,
                        help=f"folder holding COCO_MVal/ and BSDS500/ (default: {default_data_root(REPO_DATA_ROOT)}: "
                        "$HF_IIS_DATA_ROOT, else ../shared/data beside the repository)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default data_cache/corpus)")
    parser.add_argument("--extra-root", type=Path, default=None,
                        help="folder of the extra datasets (ECSSD/, CCP/, Weizmann/, CamVid/): adds "
                        f"{', '.join(EXTRA_SOURCES)} to the corpus")
    parser.add_argument("--sources", nargs="+", default=None,
                        help=f"corpus layouts (default: {' '.join(DEFAULT_SOURCES)}, + {' '.join(EXTRA_SOURCES)} "
                        "with --extra-root)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--shard-size", type=positive_int, default=250, help="rows per parquet shard")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="convert one folder of this layout")
    parser.add_argument("--root", type=Path, help="the folder for --layout")
    parser.add_argument("--split", default=None, help="split name for --layout/--coco-json (default: "
                        "test for benchmarks, else train)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="first N instances only (--layout/--coco-json)")
    parser.add_argument("--coco-json", type=Path, help="COCO annotation JSON to convert")
    parser.add_argument("--images", type=Path, help="image folder for --coco-json")
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="push the result to this dataset repo")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-skip warnings")
    args = parser.parse_args(argv)
    if args.layout and args.root is None:
        parser.error("--layout needs --root")
    if args.coco_json and args.layout:
        parser.error("--coco-json and --layout are exclusive")
    if not 0 <= args.val_fraction < 1:
        parser.error(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """The folders and files to read exist and the output folder can be made, before anything is converted."""
    if args.out is not None:
        check_output_dir(args.out, "--out")
    if args.coco_json:
        if not args.coco_json.is_file():
            raise FileNotFoundError(f"--coco-json {args.coco_json}: no such file (a COCO annotation JSON)")
        if args.images is not None and not args.images.is_dir():
            raise FileNotFoundError(f"--images {args.images}: no such folder")
    elif args.layout:
        if not args.root.is_dir():
            raise FileNotFoundError(f"--root {args.root}: no such folder (the {args.layout} dataset folder)")
    else:
        root = args.data_root or default_data_root(REPO_DATA_ROOT)
        if not Path(root).is_dir():
            raise FileNotFoundError(f"data folder {root} not found: give --data-root (the folder holding COCO_MVal/ "
                                    "and BSDS500/; README, 'Data' says where each dataset comes from)")
        if args.extra_root is not None and not args.extra_root.is_dir():
            raise FileNotFoundError(f"--extra-root {args.extra_root}: no such folder")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        check_inputs(args)
        return build(args)
    except USAGE_ERRORS as error:  # a missing folder, an unknown source, a malformed annotation file
        return report(PROG, error)


def build(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(levelname)s %(message)s")
    progress = not args.quiet
    if args.quiet:
        import datasets

        datasets.disable_progress_bars()
    start = time.perf_counter()
    if args.coco_json:
        out = args.out or Path("data_cache") / args.coco_json.stem
        options = {"annotations": args.coco_json, **({"images": args.images} if args.images else {})}
        try:
            stats = convert_folder(args.coco_json.parent, "coco_json", out, split=args.split or "train",
                                   limit=args.limit, shard_size=args.shard_size, progress=progress, **options)
        except json.JSONDecodeError as error:
            raise ValueError(f"--coco-json {args.coco_json} is not valid JSON ({error})") from None
    elif args.layout:
        out = args.out or Path("data_cache") / args.layout
        split = args.split or ("test" if LAYOUTS[args.layout].benchmark else "train")
        stats = convert_folder(args.root, args.layout, out, split=split, limit=args.limit,
                               shard_size=args.shard_size, progress=progress)
    else:
        out = args.out or Path("data_cache/corpus")
        stats = build_corpus(args.data_root or default_data_root(REPO_DATA_ROOT), out, sources=args.sources,
                             val_fraction=args.val_fraction, shard_size=args.shard_size, progress=progress,
                             extra_root=args.extra_root)
    elapsed = time.perf_counter() - start
    print(stats.summary())
    print(f"wrote {out} in {elapsed:.1f} s")
    if args.push_to_hub:
        push_to_hub(out, args.push_to_hub)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
