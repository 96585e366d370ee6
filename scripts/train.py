"""Train the signed-click segmenter.

    python scripts/train.py --config configs/default.yaml --data data_cache/corpus
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml scripts/train.py --config configs/default.yaml
    python scripts/train.py --config configs/default.yaml --resume          # continue the latest checkpoint

Overrides: `--set optim.lr=3e-4 --set data.batch_size=4`, or dotted flags `--optim.lr 3e-4 --data.batch_size=4`.
"""

from __future__ import annotations

import argparse
import os
import sys

# Idle OpenMP threads sleep instead of spinning. On a CPU shared with other work, spinning threads wait for a
# descheduled partner: measured here, a tiny-model step took 10 s with 2 spinning threads and 0.2 s with this set.
# It must be set before torch loads its OpenMP runtime, hence before importing hf_iis.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, report  # noqa: E402
from hf_iis.training.config import check_resume_target, check_run_paths, load_config  # noqa: E402

PROG = "train.py"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML training config (configs/default.yaml, configs/tiny.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, dotted keys (repeatable)")
    parser.add_argument("--data", help="parquet corpus folder (= data.path)")
    parser.add_argument("--output-dir", help="run folder (= output_dir)")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="continue from the latest checkpoint of the run folder (or the given checkpoint)")
    parser.add_argument("--streaming", action="store_true", help="stream the corpus (= data.streaming=true)")
    parser.add_argument("--backbone", help="a timm backbone name (= model.backbone)")
    parser.add_argument("--no-pretrained-backbone", action="store_true",
                        help="random-init backbone (= model.pretrained_backbone=false)")
    parser.add_argument("--max-steps", type=int, help="= optim.max_steps")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], help="= optim.mixed_precision")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args, rest = parser.parse_known_args(argv)
    overrides = list(args.overrides)
    i = 0
    while i < len(rest):  # dotted flags: --optim.lr 3e-4 or --optim.lr=3e-4
        token = rest[i]
        if not token.startswith("--"):
            parser.error(f"unexpected argument {token!r}")
        if "=" in token:
            overrides.append(token[2:])
            i += 1
        elif i + 1 < len(rest):
            overrides.append(f"{token[2:]}={rest[i + 1]}")
            i += 2
        else:
            parser.error(f"flag {token} needs a value")
    shortcuts = {
        "data.path": args.data, "output_dir": args.output_dir, "model.backbone": args.backbone,
        "optim.max_steps": args.max_steps, "optim.mixed_precision": args.mixed_precision,
    }
    overrides += [f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    if args.streaming:
        overrides.append("data.streaming=true")
    if args.no_pretrained_backbone:
        overrides.append("model.pretrained_backbone=false")
    return args, overrides


def main(argv: list[str] | None = None) -> int:
    # every argument, the config and the run's paths are checked before anything is written or built
    try:
        args, overrides = parse_args(argv)
        cfg = load_config(args.config, overrides)
        check_run_paths(cfg)
        check_resume_target(args.resume)
    except USAGE_ERRORS as error:
        return report(PROG, error)
    from hf_iis.training.loop import train

    train(cfg, resume=args.resume, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
