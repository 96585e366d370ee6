r"""Turn a training checkpoint (accelerate state: `<run>/checkpoints/step_XXXXXXXX`) into a `save_pretrained` folder,
so that `scripts/compare_checkpoints.py`, `scripts/evaluate.py` and the pipeline can load a step of an unfinished run.

    python scripts/export_checkpoint.py runs/u2netp_hybrid/checkpoints/step_00000150 --like runs/u2netp_hybrid/final \
        --out runs/u2netp_hybrid/step150

`--like` is any save_pretrained folder of the same architecture (the run's `final/` or `best/`, written at every
validation; for a distillation run, its `final/` or any student of the same preset): its config and image
processor are copied, and the step's weights replace its weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safetensors.torch import load_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a <run>/checkpoints/step_XXXXXXXX folder")
    parser.add_argument("--like", type=Path, required=True, help="a save_pretrained folder of the same architecture")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    weights = args.checkpoint / "model.safetensors"
    if not weights.is_file():
        print(f"error: no model.safetensors in {args.checkpoint} (expected a <run>/checkpoints/step_* folder)",
              file=sys.stderr)
        return 2
    from hf_iis.checkpoint_paths import load_checkpoint

    model, processor = load_checkpoint(args.like)  # a teacher or a distilled student, by its config
    state = {k.removeprefix("model."): v for k, v in load_file(str(weights)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        print(f"error: {args.checkpoint} does not fit the architecture of {args.like}: {len(missing)} missing, "
              f"{len(unexpected)} unexpected tensors (e.g. {(missing + unexpected)[:3]})", file=sys.stderr)
        return 2
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
