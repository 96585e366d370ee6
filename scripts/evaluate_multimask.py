r"""How good is a multi-map model's choice? First-click mIoU of the chosen map, of each map, and of the best map per
instance (the oracle), with how often each map is chosen, for the center click (the standard clicker's first).

    python scripts/evaluate_multimask.py --model runs/grown_init --datasets GrabCut,Berkeley --out outputs/eval/mm
    python scripts/evaluate_multimask.py --model runs/decoder_multimask/final --corpus data_cache/corpus_v2 \
        --out outputs/eval/mm_val                                     # the training corpus's validation split

The gap between "chosen" and "oracle" is what the IoU head leaves on the table. Maps are named by the order of the
model's outputs (map 1 = the click-component map of a grown model). Writes multimask.json and multimask.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm


def score(folder: str, instances, progress: bool = True) -> dict:
    """Per-instance IoU (percent) of each map and the index of the chosen one."""
    from hf_iis.evaluation.metrics import binarize, iou
    from hf_iis.inference.multimask_prediction import IDENTITY, predicted_ious
    from hf_iis.inference.predictors import load_predictor
    from hf_iis.utils.clicker import center_click

    predictor = load_predictor(folder)
    maps = int(getattr(predictor.model.config, "num_mask_outputs", 1))
    per_map, chosen = [], []
    for inst in tqdm(instances, desc=folder, disable=not progress):
        predictor.set_image(inst.image)
        c = center_click(inst.gt, inst.ignore)
        points = predictor.processor.points_to_input(torch.tensor([[c.x, c.y]]), predictor.original_size,
                                                     predictor.reshaped_size)
        row = []
        for k in range(maps):
            out = predictor.predict_torch(points[None], torch.tensor([[c.sign]]), map_index=k if maps > 1 else None)
            probabilities = predictor._to_original(out.probabilities)[0].numpy()
            row.append(100.0 * iou(binarize(probabilities), inst.gt, inst.ignore))
        per_map.append(row)
        ious = predicted_ious(predictor.model, predictor.view_embeddings([IDENTITY])[IDENTITY.name], points[None],
                              torch.tensor([[c.sign]]), None)
        chosen.append(0 if ious is None else int(ious[0].argmax()))  # the predictor's own choice
    return {"per_map": per_map, "chosen": chosen}


def summarize(result: dict) -> dict:
    per_map = np.asarray(result["per_map"])
    chosen = np.asarray(result["chosen"])
    return {"n": int(per_map.shape[0]), "chosen": float(per_map[np.arange(len(chosen)), chosen].mean()),
            "oracle": float(per_map.max(1).mean()), "per_map": [float(v) for v in per_map.mean(0)],
            "chosen_share": [float(np.mean(chosen == k)) for k in range(per_map.shape[1])]}


def main(argv: list[str] | None = None) -> int:
    from hf_iis.cli_checks import ArgumentParser

    parser = ArgumentParser(prog="evaluate_multimask.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="checkpoint folder (several: one each)")
    parser.add_argument("--datasets", default=None, help="benchmarks, e.g. GrabCut,Berkeley")
    parser.add_argument("--corpus", default=None, help="or a corpus folder: its validation split")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-progress", action="store_true")
    try:
        args = parser.parse_args(argv)
        if bool(args.datasets) == bool(args.corpus):
            raise ValueError("give --datasets or --corpus (one of them)")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder")
        for folder in args.model:
            if not (Path(folder) / "config.json").is_file():
                raise ValueError(f"--model {folder}: no config.json there")
        from hf_iis.evaluation.benchmarks import instances_from_samples, load_benchmark, load_corpus_split

        if args.corpus:
            sets = {"validation": instances_from_samples(load_corpus_split(args.corpus, "validation", min_masks=1))}
        else:
            from hf_iis.data.layouts import default_data_root

            # as evaluate.py: --data-root, else $HF_IIS_DATA_ROOT, else ../shared/data beside the repository
            root = args.data_root or str(default_data_root(Path(__file__).resolve().parents[2] / "shared" / "data"))
            sets = {name: load_benchmark(name, root) for name in args.datasets.split(",")}
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"evaluate_multimask.py: error: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from hf_iis.evaluation.report import hardware_info, timestamp

    rows = []
    for folder in args.model:
        for name, instances in sets.items():
            rows.append({"model": folder, "dataset": name,
                         **summarize(score(folder, instances, not args.no_progress))})
    command = "python scripts/evaluate_multimask.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"# First-click choice among a model's maps ({timestamp()})", "",
             f"Command: `{command}`", "", f"Hardware: {json.dumps(hardware_info())}", "",
             "| model | dataset | N | chosen mIoU@1 | oracle (best map) | mIoU@1 per map | chosen share per map |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dataset']} | {r['n']} | {r['chosen']:.2f} | {r['oracle']:.2f} | "
                     f"{' / '.join(f'{v:.2f}' for v in r['per_map'])} | "
                     f"{' / '.join(f'{v:.2f}' for v in r['chosen_share'])} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "multimask.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    (args.out / "multimask.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
