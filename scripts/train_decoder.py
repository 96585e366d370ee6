r"""Train the click decoder and its heads (S maps, IoU head, output prior) from cached frozen image embeddings.

    # 1. cache the teacher's image embeddings for V views of every training image (resumable: shards are skipped)
    python scripts/train_decoder.py cache --teacher hf_iis/checkpoints/default --corpus data_cache/corpus_v2 \
        --views 2 --out data_cache/embeddings_v2
    # 2. train as resumable legs (rerun the same command to continue; --set stop_at_step=N ends a leg at step N)
    python scripts/train_decoder.py train --config configs/decoder_multimask.yaml --set max_minutes=60
    #    object-box crops (the views zoom-in inference sees) go to a cache of their own, trained on beside the first:
    python scripts/train_decoder.py cache --corpus data_cache/corpus_v2 --views 1 --object-crops \
        --out data_cache/embeddings_crops
    # 3. throughput against today's end-to-end step: scripts/bench_train_throughput.py --decoder-config ...
    # the untrained grown model alone (S maps that start as component / old answer / blend), to compare against:
    python scripts/train_decoder.py grow --teacher hf_iis/checkpoints/default --out runs/grown_init
    #    with the saliency branch on each view's photo stretched (cache and train from this model, not the default):
    python scripts/train_decoder.py grow --saliency-frame stretched --saliency-input-size 320 --out runs/grown_sframe
    # 4. retrain the IoU head alone on which answer a click means (the maps unchanged; rules in
    #    hf_iis/training/iou_head_training.py); the head inputs are computed once and kept in --examples
    python scripts/train_decoder.py head --model runs/decoder_multimask/final --cache data_cache/embeddings_v2 \
        --rule largest --views 4000 --examples runs/choice/examples.safetensors --out runs/choice/largest

The cache records the teacher's weights (sha256), backbone, input size, corpus and views (`cache_info.json`); a run
refuses a cache of another model, and a resumed run refuses other settings. See
`hf_iis/training/embedding_cache.py` and `hf_iis/training/decoder_training.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cache = sub.add_parser("cache", help="encode V views of every training image once")
    cache.add_argument("--teacher", default="hf_iis/checkpoints/default", help="checkpoint folder (frozen image side)")
    cache.add_argument("--corpus", required=True, help="parquet corpus folder (scripts/build_datasets.py --out)")
    cache.add_argument("--split", default="train")
    cache.add_argument("--views", type=int, default=2, help="views per image: 0 = plain, >= 1 augmented")
    cache.add_argument("--out", required=True, help="cache folder (created; an existing one is resumed)")
    cache.add_argument("--object-crops", action="store_true",
                       help="every view an object-box crop (the views zoom-in inference sees), no plain view")
    cache.add_argument("--seed", type=int, default=0)
    cache.add_argument("--limit", type=int, default=None, help="first N images only (tests, trials)")
    cache.add_argument("--images-per-shard", type=int, default=32)
    cache.add_argument("--threads", type=int, default=2)
    grow = sub.add_parser("grow", help="write the teacher grown to S maps with the output prior, untrained")
    grow.add_argument("--teacher", default="hf_iis/checkpoints/default")
    grow.add_argument("--out", required=True, help="folder to write (save_pretrained)")
    grow.add_argument("--num-masks", type=int, default=3)
    grow.add_argument("--no-prior-in-output", action="store_true")
    grow.add_argument("--prior-source", default="branch",
                      help="branch | stretched: the saliency map the output prior's component is cut from "
                           "(SignedClickConfig.prior_source)")
    grow.add_argument("--saliency-frame", default=None,
                      help="padded | stretched: what the saliency branch sees (SignedClickConfig.saliency_frame; "
                           "default: the teacher's)")
    grow.add_argument("--saliency-input-size", type=int, default=None,
                      help="side the saliency branch runs at, a multiple of 32 (default: the teacher's)")
    head = sub.add_parser("head", help="retrain the IoU head alone under a choice rule")
    head.add_argument("--model", required=True, help="multi-map checkpoint folder whose maps are kept")
    head.add_argument("--cache", default="data_cache/embeddings_v2", help="embedding cache of the model's teacher")
    head.add_argument("--rule", required=True, help="uniform | area | largest")
    head.add_argument("--views", type=int, default=4000, help="cached views to draw first clicks on")
    head.add_argument("--examples", action="append", default=None,
                      help="safetensors file of stored head inputs: read when it exists, else written; repeatable "
                           "(files that all exist are read and joined, e.g. collected with other --seed values)")
    head.add_argument("--standardize", action="store_true",
                      help="fit on standardized head inputs, the statistics folded into the head (default: raw)")
    head.add_argument("--head-inputs", default=None,
                      help="pooled | mask_pooled: give the model a new IoU head reading these inputs (default: keep)")
    head.add_argument("--epochs", type=int, default=60)
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--out", required=True, help="folder to write (save_pretrained)")
    head.add_argument("--threads", type=int, default=2)
    train = sub.add_parser("train", help="train (or resume) the decoder from a cache")
    train.add_argument("--config", default="configs/decoder_multimask.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    train.add_argument("--no-progress", action="store_true")
    return parser


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _cache(args) -> int:
    import torch
    from tqdm import tqdm

    from hf_iis.models.signed_click.configuration_signed_click import SignedClickConfig
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel
    from hf_iis.training.augment import InputFormat
    from hf_iis.training.config import AugmentParams
    from hf_iis.training.data import load_split
    from hf_iis.training.embedding_cache import CACHE_INFO, CacheInfo, build_embedding_cache, check_cache_info

    for name in ("views", "limit", "images_per_shard", "threads"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    teacher, corpus, out = Path(args.teacher), Path(args.corpus), Path(args.out)
    if not (teacher / "model.safetensors").is_file():
        raise ValueError(f"--teacher {teacher}: no model.safetensors there (a save_pretrained folder is expected)")
    if not (corpus / "dataset_info.json").is_file() and not any(corpus.glob(f"{args.split}-*.parquet")):
        raise ValueError(f"--corpus {corpus}: no parquet corpus there (build it with scripts/build_datasets.py)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    # what the cache will hold, checked against an existing cache before any model is loaded
    augment = AugmentParams(object_crop_prob=1.0) if args.object_crops else AugmentParams()
    info = CacheInfo.for_run(teacher, SignedClickConfig.from_pretrained(str(teacher)), corpus, args.split, args.views,
                             args.seed, augment, first_view=1 if args.object_crops else 0)
    if (out / CACHE_INFO).is_file():
        check_cache_info(out, info)
    torch.set_num_threads(args.threads)
    model = SignedClickModel.from_pretrained(str(teacher)).eval()
    processor = SignedClickImageProcessor.from_pretrained(str(teacher))
    rows = load_split(str(corpus), args.split)
    if args.limit is not None:
        rows = rows.select(range(min(args.limit, len(rows))))
    with tqdm(total=len(rows), desc="embedding cache", unit="image") as bar:
        written = build_embedding_cache(model, rows, out, info, InputFormat.of_processor(processor),
                                        images_per_shard=args.images_per_shard, progress=bar)
    print(f"wrote {written} new shard(s) to {out} ({len(rows)} images x {args.views} views)")
    return 0


def _grow(args) -> int:
    from hf_iis.models.signed_click.grow_outputs import grow_outputs
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel

    _positive("--num-masks", args.num_masks)
    from hf_iis.models.signed_click.configuration_signed_click import PRIOR_SOURCES

    if args.prior_source not in PRIOR_SOURCES:
        raise ValueError(f"--prior-source must be one of {list(PRIOR_SOURCES)}, got {args.prior_source!r}")
    if args.prior_source != "branch" and args.no_prior_in_output:
        raise ValueError(f"--prior-source {args.prior_source} chooses the output prior: drop --no-prior-in-output")
    from hf_iis.models.signed_click.configuration_signed_click import SALIENCY_FRAMES

    if args.saliency_frame is not None and args.saliency_frame not in SALIENCY_FRAMES:
        raise ValueError(f"--saliency-frame must be one of {list(SALIENCY_FRAMES)}, got {args.saliency_frame!r}")
    if args.saliency_frame == "stretched" and args.prior_source == "stretched":
        raise ValueError("--saliency-frame stretched already gives the output prior the photo's own map: drop "
                         "--prior-source stretched")
    size = args.saliency_input_size
    if size is not None and (size < 32 or size % 32):
        raise ValueError(f"--saliency-input-size must be a positive multiple of 32, got {size}")
    teacher, out = Path(args.teacher), Path(args.out)
    if not (teacher / "model.safetensors").is_file():
        raise ValueError(f"--teacher {teacher}: no model.safetensors there (a save_pretrained folder is expected)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not an empty folder")
    import torch

    torch.manual_seed(0)  # the IoU head's hidden layer is new: the same draw as `train`'s (seed 0) every time
    # the frame and the branch's input size are config only: the same weights load under either
    frame = {k: v for k, v in (("saliency_frame", args.saliency_frame), ("saliency_input_size", size)) if v is not None}
    grown = grow_outputs(SignedClickModel.from_pretrained(str(teacher), **frame), args.num_masks,
                         not args.no_prior_in_output, args.prior_source)
    grown.save_pretrained(out)
    SignedClickImageProcessor.from_pretrained(str(teacher)).save_pretrained(out)
    print(f"wrote {out}: {args.num_masks} map(s), prior in output: {not args.no_prior_in_output}, "
          f"prior source: {args.prior_source}, saliency frame: {grown.config.saliency_frame} at "
          f"{grown.config.saliency_input_size}")
    return 0


def _head(args) -> int:
    import torch
    from safetensors.torch import load_file, save_file

    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel
    from hf_iis.models.signed_click.multimask import IOU_HEAD_INPUTS
    from hf_iis.training.embedding_cache import CACHE_INFO, file_sha256
    from hf_iis.training.iou_head_training import (
        CHOICE_RULES,
        ChoiceExamples,
        collect_choice_examples,
        fit_iou_head,
        with_head_inputs,
    )

    for name in ("views", "epochs", "threads"):
        _positive(f"--{name}", getattr(args, name))
    if args.rule not in CHOICE_RULES:
        raise ValueError(f"--rule must be one of {', '.join(CHOICE_RULES)}, got {args.rule!r}")
    if args.head_inputs is not None and args.head_inputs not in IOU_HEAD_INPUTS:
        raise ValueError(f"--head-inputs must be one of {', '.join(IOU_HEAD_INPUTS)}, got {args.head_inputs!r}")
    model_dir, out = Path(args.model), Path(args.out)
    if not (model_dir / "model.safetensors").is_file():
        raise ValueError(f"--model {model_dir}: no model.safetensors there (a save_pretrained folder is expected)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not an empty folder")
    example_paths = [Path(p) for p in args.examples or []]
    missing = [p for p in example_paths if not p.is_file()]
    if len(example_paths) > 1 and missing:
        raise ValueError(f"--examples {missing[0]} does not exist: several --examples files are read and joined, "
                         "so each must exist (collect a new file with a single --examples)")
    examples_path = example_paths[0] if len(example_paths) == 1 else None
    if not example_paths or missing:
        if not (Path(args.cache) / CACHE_INFO).is_file():
            raise ValueError(f"--cache {args.cache}: no {CACHE_INFO} there (build it with `train_decoder.py cache`)")
    torch.set_num_threads(args.threads)
    model = SignedClickModel.from_pretrained(str(model_dir)).eval()
    if model.decoder.iou_head is None:
        raise ValueError(f"--model {model_dir} has one map: there is no IoU head to train")
    torch.manual_seed(args.seed)
    if args.head_inputs is not None and args.head_inputs != model.config.iou_head_inputs:
        model = with_head_inputs(model, args.head_inputs)
    # the stored inputs belong to these maps and this kind of head input
    maps_sha = file_sha256(model_dir / "model.safetensors") + ":" + model.config.iou_head_inputs
    if example_paths and not missing:
        parts = []
        for path in example_paths:
            stored = load_file(str(path))
            recorded = bytes(stored.pop("model_sha256").tolist()).decode()
            if recorded != maps_sha:
                raise ValueError(f"--examples {path} were computed with another model or head inputs "
                                 f"({recorded[:12]}…{recorded[64:]}, {model_dir} gives "
                                 f"{maps_sha[:12]}…{maps_sha[64:]})")
            parts.append(stored)
        examples = ChoiceExamples(**{k: torch.cat([p[k] for p in parts]) for k in parts[0]})
    else:
        examples = collect_choice_examples(model, args.cache, args.views, seed=args.seed)
        if examples_path is not None:
            examples_path.parent.mkdir(parents=True, exist_ok=True)
            tensors = {k: v.contiguous() for k, v in examples.state().items()}
            tensors["model_sha256"] = torch.tensor(list(maps_sha.encode()), dtype=torch.uint8)
            save_file(tensors, str(examples_path))
    torch.manual_seed(args.seed)
    result = fit_iou_head(model.decoder.iou_head, examples, args.rule, epochs=args.epochs, seed=args.seed,
                          standardize=args.standardize)
    model.save_pretrained(out)
    SignedClickImageProcessor.from_pretrained(str(model_dir)).save_pretrained(out)
    print(f"wrote {out}: IoU head fitted under rule {args.rule!r} on {result['examples']} first clicks, "
          f"loss {result['loss']:.4f}; its top map is the rule's on {100 * result['top_agreement']:.1f} % of them "
          f"and on {100 * result['held_out_agreement']:.1f} % of {result['held_out']} held-out ones, where the "
          f"chosen map's expected IoU under the rule is {result['held_out_chosen']:.4f} (best map "
          f"{result['held_out_oracle']:.4f}, always map 1 {result['held_out_first_map']:.4f})")
    return 0


def _train(args) -> int:
    from hf_iis.training.decoder_training import load_run_config, train_decoder

    cfg = load_run_config(args.config, args.set)
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} is a file; give a folder")
    result = train_decoder(cfg, progress=not args.no_progress)
    print(f"step {result['step']} ({result['stopped']}), {result['click_sets_per_second']:.1f} click sets/s; "
          f"model in {out / 'final'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"cache": _cache, "grow": _grow, "head": _head, "train": _train}[args.command](args)
    except (FileNotFoundError, ValueError) as error:
        print(f"train_decoder.py: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
