r"""How sure is a model of the pixel it was clicked on? P(x ∈ m | x ∈ m) should be ~1 for a positive click.

    python scripts/diagnose_click_self_probability.py --model runs/student_tb/final --model hf_iis/checkpoints/default \
        --corpus data_cache/corpus_v2 --masks 60

For `--masks` seeded validation masks of the corpus (never a benchmark), the center click's probability at the click
pixel and the share of clicks whose own pixel falls below 0.5 (the mask then misses the click), per model.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from hf_iis.evaluation.benchmarks import instances_from_samples, load_corpus_split
from hf_iis.inference.predictors import load_predictor
from hf_iis.utils.clicker import center_click


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="teacher or student folder (repeatable)")
    parser.add_argument("--corpus", default="data_cache/corpus_v2")
    parser.add_argument("--masks", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    instances = instances_from_samples(load_corpus_split(args.corpus))
    pick = np.random.default_rng(0).choice(len(instances), min(args.masks, len(instances)), replace=False)
    for folder in args.model:
        predictor = load_predictor(folder)
        at_click = []
        for i in pick:
            inst = instances[i]
            c = center_click(inst.gt, inst.ignore)
            predictor.set_image(inst.image)
            probabilities = predictor.predict([(c.x, c.y, c.sign)]).probabilities
            at_click.append(float(probabilities[int(c.y), int(c.x)]))
        values = np.asarray(at_click)
        print(json.dumps({"model": folder, "masks": len(values), "below_0.5": round(float((values < 0.5).mean()), 3),
                          "quantiles_0_10_25_50": np.quantile(values, [0, 0.1, 0.25, 0.5]).round(3).tolist()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
