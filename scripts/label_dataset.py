"""Segment every row of a `datasets` dataset with the pipeline and write the masks back as a dataset
(`hf_iis.labelling`; also `hf-iis label`). Clicks come from a column, from the click simulator on a mask column,
or from one point for every image.

    python scripts/label_dataset.py --dataset my_saved_dataset --mask-column mask --out outputs/labels
    python scripts/label_dataset.py --dataset "data/*.parquet" --clicks-column clicks --tta 4 --out outputs/labels
    ACCELERATE_USE_CPU=1 python -m accelerate.commands.launch --config_file configs/accelerate/cpu_2proc.yaml \
        scripts/label_dataset.py --dataset my_saved_dataset --point 120,80 --out outputs/labels

Rerun the same command to resume: chunks already written are skipped. The result: `datasets.load_from_disk(
"<out>/dataset")` with columns index, id, mask, score, clicks.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as scripts/train.py: idle OpenMP threads sleep

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, report  # noqa: E402
from hf_iis.labelling import add_label_arguments, run_from_args  # noqa: E402

PROG = "label_dataset.py"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_label_arguments(parser)
    try:
        return run_from_args(parser.parse_args(argv))
    except USAGE_ERRORS as error:
        return report(PROG, error)


if __name__ == "__main__":
    sys.exit(main())
