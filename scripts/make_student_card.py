r"""Fill `model_cards/student_template.md` for a distilled student from measured outputs, with a model-index block.

    python scripts/make_student_card.py --model hf_iis/checkpoints/student --run model_cards/student_v2_run \
        --eval outputs/eval/student_v2/results.json --compare outputs/compare/student_v2/compare.md \
        --latency outputs/bench/latency_student_v2.json --latency outputs/bench/latency_default.json \
        --proposals outputs/eval/student_v2_proposals/table.md \
        --out model_cards/student.md --copy-to hf_iis/checkpoints/student/README.md

Every number in the card is read from these files: the evaluation's own table (student and teacher measured in one
run), the validation comparison of `scripts/compare_checkpoints.py`, `scripts/bench_latency.py` JSONs, the
proposals table of `scripts/evaluate_student.py`, and the run record (config.yaml, log.jsonl, cache_info.json) of
`scripts/distill.py train`. Only the student's own rows enter the model-index.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from huggingface_hub import ModelCard, ModelCardData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_card import DATA_NOTES, _measured, count_parameters, eval_results, save_card  # noqa: E402  (the teacher card's)


def click_rule_texts(config: dict) -> dict[str, str]:
    """What the card says about combining clicks: naive Bayes, or the learned rule on top of it."""
    if config.get("click_rule") == "learned":
        return {"click_rule": "Several clicks combine by naive Bayes over the per-click maps plus a small learned "
                              "residual over those maps and the previous mask (`click_rule=\"learned\"`, trained by "
                              "`scripts/distill.py train-rule`), still with no image pass per click",
                "click_rule_limits": "Its multi-click rule (naive Bayes plus a small learned residual over the click "
                                     "maps) corrects less well than the teacher's decoder, which re-reads the image "
                                     "features with all clicks: NoC is higher (tables above)."}
    return {"click_rule": "Several clicks combine by naive Bayes over the per-click maps",
            "click_rule_limits": "Its multi-click rule (naive Bayes over single-click maps) corrects less well than "
                                 "the teacher's decoder, which reads all clicks and the previous mask: NoC is much "
                                 "higher. `prev_mask` is accepted and not used."}


def training_section(run: Path, hardware: str) -> str:
    """The distillation run from its record: cache, steps, time, losses at the first and last logged step."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    cache = json.loads((run / "cache_info.json").read_text())
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    steps = [entry for entry in lines if "train/loss" in entry]
    if not steps:
        raise ValueError(f"{run / 'log.jsonl'} has no logged training step")
    first, last = steps[0], steps[-1]
    hours = (last["time"] - lines[0]["time"]) / 3600
    spec = cache.get("spec", {})
    start = f"the image backbone of `{config['backbone_from']}`" if config.get("backbone_from") else (
        f"`{config['init_from']}`" if config.get("init_from") else "ImageNet weights")
    return (
        f"`scripts/distill.py train` ({hardware}; config `{run}/config.yaml`, log `{run}/log.jsonl`), from {start}: "
        f"{last['step']} steps of batch {config['batch_size']} in {hours:.1f} h "
        f"({last.get('sec_per_step', float('nan')):.2f} s per step), AdamW (lr {config['lr']}, backbone "
        f"{config['backbone_lr']}), cosine schedule with {config['warmup_steps']} warm-up steps, D4 views as "
        f"augmentation. Targets (`scripts/distill.py cache`, `{run}/cache_info.json`): the teacher "
        f"`{cache['teacher']}` at tta={spec.get('tta')} on {cache['images']} unlabelled images (the corpus's train "
        f"split without its masks and CCP's unannotated photos; never its validation split or a benchmark), "
        f"{spec.get('clicks')} random signed clicks and {spec.get('sequences')} corrective click sequences per image, "
        f"stored as uint8 maps on the stride-{cache['stride']} grid. Loss: soft-target BCE + "
        f"{config['loss_weights'].get('soft_iou')} x soft IoU on the grid, single clicks + "
        f"{config['sequence_weight']} x click sequences. Training loss {first['train/loss']:.3f} (step "
        f"{first['step']}) → {last['train/loss']:.3f} (step {last['step']}); single-click KL to the teacher "
        f"{first.get('train/single_kl', float('nan')):.3f} → {last.get('train/single_kl', float('nan')):.3f}."
    )


def latency_section(paths: list[Path]) -> str:
    """One row per `scripts/bench_latency.py` JSON (same image, same machine, each run alone)."""
    if not paths:
        return "Run `scripts/bench_latency.py --model <student>`."
    rows = []
    for path in paths:
        bench = json.loads(path.read_text())
        warm = bench["grid_ms"]["warm"]
        rows.append(f"| `{bench['model']}` | {bench['encode_ms']:.1f} | {bench['first_click_ms']:.1f} | "
                    f"{bench['extra_decode_ms']:.1f} | {warm['tta=1,triangulation=0']:.1f} | "
                    f"{warm['tta=4,triangulation=0']:.1f} | {warm['tta=1,triangulation=16']:.1f} | "
                    f"{bench['peak_rss_mb']:.0f} |")
    first = json.loads(paths[0].read_text())
    return (f"`scripts/bench_latency.py` on a {first['image'][0]}x{first['image'][1]} photo, {first['hardware']} "
            f"(files: {', '.join(f'`{p}`' for p in paths)}); milliseconds:\n\n"
            "| model | encode | first click | another click set | cached click | cached click, tta=4 | "
            "cached click, triangulation | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
            + "\n\nFor the student `triangulation` is the exact sum over all auxiliary pixels; for the teacher K = 16 "
              "sampled pixels.")


def _quoted(path: Path | None, what: str, command: str) -> str:
    if path is None:
        return f"Run `{command}`."
    body = path.read_text().strip()
    if body.startswith("# "):
        body = body.split("\n", 1)[1].strip()
    return f"From `{path}` ({what}):\n\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("hf_iis/checkpoints/student"))
    parser.add_argument("--run", type=Path, required=True, help="run record: config.yaml, log.jsonl, cache_info.json")
    parser.add_argument("--run-hardware", default="2 CPU cores, torch 2.13 CPU")
    parser.add_argument("--eval", type=Path, action="append", required=True, help="results.json (repeatable)")
    parser.add_argument("--compare", type=Path, default=None, help="compare.md of scripts/compare_checkpoints.py")
    parser.add_argument("--latency", type=Path, action="append", default=[], help="bench_latency JSON (repeatable)")
    parser.add_argument("--proposals", type=Path, default=None, help="table.md of scripts/evaluate_student.py")
    parser.add_argument("--repo-id", default="hf-iis/signed-click-student-lite0")
    parser.add_argument("--template", type=Path, default=Path("model_cards/student_template.md"))
    parser.add_argument("--out", type=Path, default=Path("model_cards/student.md"))
    parser.add_argument("--copy-to", type=Path, default=None)
    args = parser.parse_args()

    for path in [args.model / "config.json", args.run, *args.eval, *args.latency,
                 *(p for p in (args.compare, args.proposals) if p is not None)]:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (see this script's --help for what makes it)")
    config = json.loads((args.model / "config.json").read_text())
    if config.get("model_type") != "signed_click_student":
        raise ValueError(f"{args.model} is not a student checkpoint (model_type {config.get('model_type')!r}); "
                         "the teacher's card is scripts/make_model_card.py")
    evaluations = [json.loads(path.read_text()) for path in args.eval]
    rows = [row for ev in evaluations for row in ev["results"]]
    num_parameters = count_parameters(args.model)
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag="image-segmentation",
        tags=["interactive-segmentation", "hf_iis", "distillation", "inference-time-scaling", "custom_code"],
        model_name=args.repo_id.split("/")[-1], eval_results=eval_results(rows, str(args.model)),
    )
    scaling = config.get("teacher_scaling") or {}
    run_config = yaml.safe_load((args.run / "config.yaml").read_text())
    cache = json.loads((args.run / "cache_info.json").read_text())
    card = ModelCard.from_template(
        card_data, template_path=str(args.template), model_name=args.repo_id.split("/")[-1], repo_id=args.repo_id,
        embed_dim=config["embed_dim"], stride=config["stride"], triangulation_stride=config["triangulation_stride"],
        teacher=config.get("teacher"), teacher_scaling=", ".join(f"{k}={v}" for k, v in scaling.items()),
        backbone=config["backbone"], image_size=config["image_size"], num_parameters=f"{num_parameters / 1e6:.1f} M",
        training=training_section(args.run, args.run_hardware), hardware=evaluations[0]["hardware"]["string"],
        eval_commands="\n".join(ev["command"] for ev in evaluations),
        eval_table="\n\n".join(_measured((Path(ev["settings"]["out"]) / "table.md").read_text())
                               for ev in evaluations),
        compare=_quoted(args.compare, "`scripts/compare_checkpoints.py`", "scripts/compare_checkpoints.py"),
        latency=latency_section(args.latency),
        proposals=_quoted(args.proposals, "`scripts/evaluate_student.py`, the corpus's validation split",
                          "scripts/evaluate_student.py"),
        images=f"{cache['images']:,}", data_notes=DATA_NOTES, **click_rule_texts(config),
        backbone_start="started from the teacher's image backbone" if run_config.get("backbone_from") else (
            f"continued from the student `{run_config['init_from']}`" if run_config.get("init_from")
            else "started from ImageNet weights"),
    )
    save_card(card, args.out, args.copy_to)


if __name__ == "__main__":
    main()
