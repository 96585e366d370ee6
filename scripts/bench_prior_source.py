r"""What `prior_source="stretched"` costs per photo: the first encode (the predictor's plain view, which includes the
extra U²-Net(-p) pass) and a first-click decode of map 1, median over benchmark photos, per checkpoint.

    python scripts/bench_prior_source.py --model runs/grown_init --model runs/grown_init_stretched --limit 20
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from hf_iis.cli_checks import ArgumentParser

    parser = ArgumentParser(prog="bench_prior_source.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="multi-map checkpoint folder (several)")
    parser.add_argument("--dataset", default="Berkeley")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    try:
        args = parser.parse_args(argv)
        if args.threads < 1 or args.limit < 1:
            raise ValueError("--threads and --limit must be >= 1")
        for folder in args.model:
            if not (Path(folder) / "config.json").is_file():
                raise ValueError(f"--model {folder}: no config.json there")
        from hf_iis.evaluation.benchmarks import load_benchmark

        instances = load_benchmark(args.dataset, args.data_root, limit=args.limit)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"bench_prior_source.py: error: {error}", file=sys.stderr)
        return 2
    import torch

    from hf_iis.inference.multimask_prediction import IDENTITY
    from hf_iis.inference.predictors import load_predictor
    from hf_iis.utils.clicker import center_click

    torch.set_num_threads(args.threads)
    predictors = {folder: load_predictor(folder) for folder in args.model}
    encode = {folder: [] for folder in predictors}
    decode = {folder: [] for folder in predictors}
    for inst in instances:  # the models alternate per photo, so a busy moment of a shared CPU hits all of them
        c = center_click(inst.gt, inst.ignore)
        for folder, p in predictors.items():
            p.set_image(inst.image)
            points = p.processor.points_to_input(torch.tensor([[c.x, c.y]]), p.original_size, p.reshaped_size)
            start = time.perf_counter()
            p.view_embeddings([IDENTITY])
            encode[folder].append(time.perf_counter() - start)
            start = time.perf_counter()
            p.predict_torch(points[None], torch.tensor([[1]]), map_index=0)
            decode[folder].append(time.perf_counter() - start)
    for folder in predictors:
        print(f"{folder}: first encode median {1000 * np.median(encode[folder]):.0f} ms, first-click decode of "
              f"map 1 median {1000 * np.median(decode[folder]):.1f} ms, N = {len(encode[folder])} "
              f"{args.dataset} photos, {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
