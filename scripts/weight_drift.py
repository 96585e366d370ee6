"""How far a trained checkpoint moved from the one it started from: per top-level module, the largest relative change
(||after - before|| / ||before||) of its weights and, separately, of its BatchNorm running statistics, and how many
tensors of each kind changed at all.

    python scripts/weight_drift.py hf_iis/checkpoints/default runs/e2e_leg3/final
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, report

PROG = "weight_drift.py"


def drift(before: dict, after: dict) -> dict[tuple[str, str], dict[str, float]]:
    """{(module, "weights" | "running stats"): {"tensors", "changed", "max_relative_change"}} over float tensors."""
    import torch

    if set(before) != set(after):
        raise ValueError(f"the two checkpoints hold different tensors ({len(set(before) ^ set(after))} differ)")
    rows: dict = defaultdict(lambda: {"tensors": 0, "changed": 0, "max_relative_change": 0.0})
    for name, old in before.items():
        if not old.dtype.is_floating_point or old.numel() == 0:
            continue
        row = rows[(name.split(".")[0], "running stats" if "running_" in name else "weights")]
        new = after[name]
        row["tensors"] += 1
        if not torch.equal(old, new):
            row["changed"] += 1
            rel = ((new - old).norm() / old.norm().clamp_min(1e-12)).item()
            row["max_relative_change"] = max(row["max_relative_change"], rel)
    return dict(rows)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("before", help="checkpoint folder the run started from")
    parser.add_argument("after", help="checkpoint folder it wrote")
    try:
        args = parser.parse_args(argv)
        from safetensors.torch import load_file

        tensors = []
        for folder in (args.before, args.after):
            path = Path(folder) / "model.safetensors"
            if not path.is_file():
                raise ValueError(f"{folder}: no model.safetensors there (give a save_pretrained folder)")
            tensors.append(load_file(str(path)))
        rows = drift(*tensors)
    except USAGE_ERRORS as error:
        return report(PROG, error)
    print("| module | kind | tensors | changed | max relative change |\n|---|---|---|---|---|")
    for (module, kind), row in sorted(rows.items()):
        print(f"| {module} | {kind} | {row['tensors']} | {row['changed']} | {100 * row['max_relative_change']:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
