r"""Choose the guided upsampling's radius and eps (`hf_iis/inference/upsampling.py`) on COCO_MVal, which is neither a
reported click benchmark nor training data: mIoU and boundary IoU (percent) after the center click, per setting.

    python scripts/probe_guided_upsampling.py --limit 40 --radii 1,2,4,8,16 --eps 1e-4,1e-3,1e-2 --threads 1

Each instance is decoded once; every setting upsamples the same model-frame map.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, positive_int, report
from hf_iis.data.layouts import default_data_root

REPO_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
PROG = "probe_guided_upsampling.py"


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give a comma list of positive numbers, e.g. 2,4") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{flag} {text!r}: give a comma list of positive numbers, e.g. 2,4")
    return values


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint folder (default: the embedded default model)")
    p.add_argument("--data-root", default=None, help="folder holding COCO_MVal/ (default: as evaluate.py)")
    p.add_argument("--limit", type=positive_int, default=40, help="evenly spaced instances (default: %(default)s)")
    p.add_argument("--radii", default="1,2,4,8,16", help="radii in model-input pixels (default: %(default)s)")
    p.add_argument("--eps", default="1e-4,1e-3,1e-2", help="regularisers (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    try:
        args = p.parse_args(sys.argv[1:] if argv is None else argv)
        radii, epss = _floats(args.radii, "--radii"), _floats(args.eps, "--eps")
        folder = Path(args.data_root or default_data_root(REPO_DATA_ROOT)) / "COCO_MVal"
        if not folder.is_dir():
            raise FileNotFoundError(f"no COCO_MVal folder at {folder}; give --data-root")
    except USAGE_ERRORS as error:
        return report(PROG, error)

    import numpy as np
    import torch

    from hf_iis.data.layouts import read_folder
    from hf_iis.evaluation.benchmarks import instances_from_samples
    from hf_iis.evaluation.metrics import iou
    from hf_iis.evaluation.runner import spread_subset
    from hf_iis.inference.predictor import SignedClickPredictor
    from hf_iis.inference.upsampling import guided_upsample
    from hf_iis.metrics.boundary_iou import boundary_iou
    from hf_iis.utils.clicker import next_click

    if args.threads:
        torch.set_num_threads(args.threads)
    instances = instances_from_samples(read_folder(folder, "coco_mval"))
    instances = [instances[k] for k in spread_subset(len(instances), args.limit)]
    predictor = SignedClickPredictor.from_pretrained(args.model)
    settings = [("bilinear", None, None)] + [("guided", r, e) for r in radii for e in epss]
    scores: dict[tuple, list[tuple[float, float]]] = {s: [] for s in settings}
    for inst in instances:
        predictor.set_image(inst.image)
        click = next_click(inst.gt, np.zeros_like(inst.gt), ignore=inst.ignore, clicked=[])
        prediction = predictor.predict([(click.x, click.y, click.sign)])
        h, w = predictor.reshaped_size
        low = torch.sigmoid(torch.from_numpy(prediction.input_logits))[None, None, :h, :w]
        for mode, radius, eps in settings:
            probabilities = prediction.probabilities if mode == "bilinear" else \
                guided_upsample(low, inst.image, radius, eps)[0, 0].numpy()
            mask = probabilities >= 0.5
            scores[(mode, radius, eps)].append((iou(mask, inst.gt, inst.ignore),
                                                boundary_iou(mask, inst.gt, inst.ignore)))
    print(f"COCO_MVal, N={len(instances)} instances, center click; mIoU / bIoU (percent)")
    for (mode, radius, eps), values in scores.items():
        miou, biou = 100.0 * np.mean(values, axis=0)
        label = mode if mode == "bilinear" else f"guided r={radius:g} eps={eps:g}"
        print(f"{label:28s} mIoU={miou:.2f} bIoU={biou:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
