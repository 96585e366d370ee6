"""Command line: `hf-iis segment`, `hf-iis demo`, `hf-iis export`, `hf-iis label`.

    hf-iis segment IMAGE --click X,Y[,+|-] [--click ...] [--tta N] [--triangulation K] --out mask.png
                   [--triangulation-mode independent|conditioned] [--zoom-in off|on|auto]
                   [--overlay overlay.png] [--model FOLDER] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
    hf-iis label --dataset FOLDER_OR_PARQUET --out FOLDER [--clicks-column clicks | --mask-column mask | --point X,Y]

Every argument and output path is checked before a model is loaded (`hf_iis.cli_checks`); a refusal is one line
`hf-iis: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli_checks import USAGE_ERRORS, ArgumentParser, check_output_dir, check_output_file, report

PROG = "hf-iis"
# The Space's sliders (hf_iis/space/handlers.py MAX_TTA, MAX_TRIANGULATION) cap these too, so both front ends take
# the same settings: beyond 8 views (all of D4) and 64 pixels the measured gains stop (scripts/analyze_scaling.py)
# while the time grows linearly.
MAX_TTA, MAX_TRIANGULATION = 8, 64
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")  # lossless: the mask stays exactly 0 / 255
OVERLAY_SUFFIXES = (*MASK_SUFFIXES, ".jpg", ".jpeg", ".webp")
ZOOM_IN = {"off": False, "on": True, "auto": "auto"}  # --zoom-in's words -> the pipeline's zoom_in
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def parse_click(text: str) -> tuple[float, float, int]:
    """'X,Y' or 'X,Y,+' / 'X,Y,-' (also +1 / -1 / pos / neg) -> (x, y, sign)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"click {text!r} must be X,Y or X,Y,+ or X,Y,- (x = column, y = row)")
    signs = {"+": 1, "+1": 1, "1": 1, "pos": 1, "-": -1, "-1": -1, "neg": -1}
    sign_text = parts[2] if len(parts) == 3 else "+"
    if sign_text not in signs:
        raise argparse.ArgumentTypeError(f"click {text!r}: sign must be + or - (got {sign_text!r})")
    try:
        return float(parts[0]), float(parts[1]), signs[sign_text]
    except ValueError:
        raise argparse.ArgumentTypeError(f"click {text!r}: X and Y must be numbers") from None


def _add_scaling_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="checkpoint folder or hub repo id (default: embedded model)")
    parser.add_argument("--tta", default="1", help=f"number of TTA views (1..{MAX_TTA}, as the Space's slider) or "
                        "comma-separated view names")
    parser.add_argument("--triangulation", type=int, default=0,
                        help=f"auxiliary pixels per view (0 = off .. {MAX_TRIANGULATION}, as the Space's slider)")
    parser.add_argument("--sampling", default="stratified", choices=["uniform", "stratified", "foreground"])
    # hf_iis.scaling.conditioned_triangulation.TRIANGULATION_MODES, spelled here so that --help loads no torch
    parser.add_argument("--triangulation-mode", default="independent", choices=["independent", "conditioned"],
                        help="independent: the seed's form, single clicks at the auxiliary pixels; conditioned: the "
                        "clicks plus each auxiliary pixel (same number of decodes)")
    parser.add_argument("--zoom-in", default="auto", choices=sorted(ZOOM_IN),
                        help="refine on a crop of the photo around the mask: off, on, or auto (from the second click "
                        "on, or a small object's first click; the default, chosen on validation: docs/results_zoom.md)")
    parser.add_argument("--blend", type=float, default=None,
                        help="weight of the direct estimate in triangulation (default: the checkpoint's)")
    parser.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES),
                        help="weights' precision (default: float32); bfloat16 runs on CPU and recent GPUs, float16 "
                        "on GPUs")


def _tta_value(text: str):
    """'4' -> 4 (checked against the Space's range), 'identity,hflip' -> view names (checked by the pipeline)."""
    text = text.strip()
    if text.lstrip("+-").isdigit():
        value = int(text)
        if not 1 <= value <= MAX_TTA:
            raise ValueError(f"--tta {value}: give 1..{MAX_TTA} views (the Space's range) or view names")
        return value
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--tta {text!r}: give 1..{MAX_TTA} views or comma-separated view names")
    return names


def _check_scaling(args: argparse.Namespace) -> dict:
    """The pipeline keywords of the scaling flags, checked (before any model is loaded)."""
    if not 0 <= args.triangulation <= MAX_TRIANGULATION:
        raise ValueError(f"--triangulation {args.triangulation}: give 0 (off) .. {MAX_TRIANGULATION} "
                         "(the Space's range)")
    return {"tta": _tta_value(args.tta), "triangulation": args.triangulation,
            "triangulation_sampling": args.sampling, "triangulation_blend": args.blend,
            "triangulation_mode": args.triangulation_mode, "zoom_in": ZOOM_IN[args.zoom_in]}


def _check_device(device: str | None, dtype: str | None) -> tuple[str | None, str | None]:
    """The device and precision, checked before any model loads (`hf_iis.inference.devices`: a device this machine
    lacks is one line naming the ones it has)."""
    from .inference.devices import check_device, check_dtype

    check_device(device)
    check_dtype(dtype)
    return device, (DTYPES[dtype] if dtype else None)


def _describe(scaling: dict, clicks: int) -> str:
    tta, tri = scaling["tta"], scaling["triangulation"]
    views = f"{tta} TTA views" if isinstance(tta, int) else f"TTA views {','.join(tta)}"
    mode = "" if scaling.get("triangulation_mode", "independent") == "independent" else ", conditioned"
    extra = f" x {tri} triangulation pixels ({scaling['triangulation_sampling']}{mode})" if tri else ""
    zoom = {False: "", True: ", zoom-in on", "auto": ", zoom-in auto"}[scaling.get("zoom_in", False)]
    return f"{clicks} click(s), {views}{extra}{zoom}"


def _segment(args: argparse.Namespace) -> int:
    import numpy as np

    from .checkpoint_paths import load_pipeline
    from .utils.image_io import load_image
    from .utils.visualize import overlay_mask

    # everything the run needs is checked before the model loads, and every output path before the mask is written
    scaling = _check_scaling(args)
    check_output_file(args.out, "--out", MASK_SUFFIXES)
    if args.overlay:
        check_output_file(args.overlay, "--overlay", OVERLAY_SUFFIXES)
    device, dtype = _check_device(args.device, args.dtype)
    image = load_image(args.image)  # a bad image is reported without loading a model
    seg = load_pipeline(args.model, device=device, dtype=dtype)
    height, width = image.shape[:2]
    print(f"segmenting {args.image} ({width}x{height}): {_describe(scaling, len(args.click))} ...", flush=True)
    out = seg(image, clicks=args.click, multimask_output=args.multimask, map_index=args.map_index,
              map_choice=args.map_choice, **scaling)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out["mask"].save(args.out)
    iou = f", predicted IoU {out['iou_score']:.3f}, map {out['map_index']}" if "iou_score" in out else ""
    print(f"mask: {args.out}  ({int(np.asarray(out['mask']).astype(bool).sum())} px, score {out['score']:.3f}"
          f"{iou}, {out['seconds'] * 1000:.0f} ms, views {out['views']})")
    for rank, (mask, predicted) in enumerate(zip(out.get("masks", [])[1:], out.get("iou_scores", [])[1:]), 2):
        path = Path(args.out).with_name(f"{Path(args.out).stem}_{rank}{Path(args.out).suffix}")
        mask.save(path)
        print(f"alternative {rank}: {path}  ({int(np.asarray(mask).astype(bool).sum())} px, predicted IoU "
              f"{predicted:.3f})")
    if not any(sign > 0 for _, _, sign in args.click):
        print("note: no positive click, so nothing is selected (the mask is empty until a click X,Y,+ on the object)")
    if args.overlay:
        Path(args.overlay).parent.mkdir(parents=True, exist_ok=True)
        overlay_mask(image, np.asarray(out["mask"]) > 0, args.click).save(args.overlay)
        print(f"overlay: {args.overlay}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Segment scikit-image's astronaut photo from one click, without and with inference-time scaling."""
    import numpy as np

    try:
        import matplotlib  # noqa: F401  (probability_image's colour map)
        from skimage import data
    except ImportError as error:
        raise ValueError(f"the demo needs scikit-image and matplotlib (pip install 'hf-iis[demo]'): {error}") from None

    from .checkpoint_paths import load_pipeline
    from .utils.visualize import overlay_mask, probability_image

    out_dir = check_output_dir(args.out, "--out")
    image = data.astronaut()  # 512x512 RGB, public domain (NASA), shipped inside scikit-image
    clicks = [(255.0, 120.0, 1)]  # on the astronaut's face
    seg = load_pipeline(args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the scaled setting is the one the validation split favours (scripts/analyze_scaling.py: 4 views, +2.9 mIoU@1)
    settings = {"plain": ({}, "no scaling"), "scaled": ({"tta": 4}, "4 TTA views")}
    print(f"astronaut photo (512x512), one positive click at x={clicks[0][0]:.0f}, y={clicks[0][1]:.0f}:")
    for name, (kwargs, label) in settings.items():
        start = time.perf_counter()
        out = seg(image, clicks=clicks, return_uncertainty=True, **kwargs)
        seconds = time.perf_counter() - start
        mask = np.asarray(out["mask"]) > 0
        out["mask"].save(out_dir / f"{name}_mask.png")
        overlay_mask(image, mask, clicks).save(out_dir / f"{name}_overlay.png")
        probability_image(out["probabilities"]).save(out_dir / f"{name}_probabilities.png")
        print(f"  {name} ({label}): mask covers {mask.mean() * 100:.1f}% of the image, score {out['score']:.3f}, "
              f"{seconds * 1000:.0f} ms; overlay {out_dir / f'{name}_overlay.png'}")
    print(f"wrote masks, overlays and probability maps to {out_dir.resolve()}")
    return 0


def default_card(folder: Path) -> str:
    """The checkpoint's own card (its README.md, as the shipped models have), else a short one that says what the
    folder is and how to load it (`scripts/make_model_card.py` writes a full card from evaluation results)."""
    own = folder / "README.md"
    if own.is_file():
        return own.read_text()
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="transformers", pipeline_tag="image-segmentation",
                         tags=["interactive-segmentation", "hf_iis"])
    body = (f"# {folder.name}\n\nA signed-click interactive segmentation model exported by `hf-iis export` (hf_iis). "
            "It has no evaluation card yet: `scripts/make_model_card.py` writes one from evaluation results.\n\n"
            "```python\nfrom transformers import pipeline\n\nseg = pipeline(\"interactive-segmentation\", "
            "model=\"<this folder or repo>\", trust_remote_code=True)\n"
            "out = seg(\"photo.jpg\", clicks=[(120, 80, 1), (30, 40, -1)])  # (x, y, +1 object / -1 background)\n"
            "out[\"mask\"].save(\"mask.png\")\n```\n")
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def _export(args: argparse.Namespace) -> int:
    from .checkpoint_paths import resolve_checkpoint
    from .hub_export import export_hub_folder

    check_output_dir(args.out, "--out")
    if args.card and not Path(args.card).is_file():
        raise FileNotFoundError(f"--card {args.card}: no such file (a model card markdown file)")
    folder = Path(resolve_checkpoint(args.model))
    if args.no_card:
        card, said = None, "no model card (--no-card)"
    elif args.card:
        card, said = Path(args.card).read_text(), f"model card {args.card}"
    else:
        card = default_card(folder)
        said = "model card " + ("from the checkpoint's README.md" if (folder / "README.md").is_file() else
                                "(a short one: the checkpoint has none)")
    out = export_hub_folder(folder, args.out, model_card=card)
    print(f"hub folder written to {out} with {said}; load it with pipeline(model={str(out)!r}, "
          "trust_remote_code=True)")
    return 0


def _label(args: argparse.Namespace) -> int:
    from .labelling import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Signed-click interactive segmentation")
    sub = parser.add_subparsers(dest="command", required=True)

    segment = sub.add_parser("segment", help="segment an image from signed clicks")
    segment.add_argument("image", help="image file")
    segment.add_argument("--click", action="append", type=parse_click, required=True,
                         help="X,Y[,+|-]: column, row in image pixels; + (default) in the object, - not in it")
    _add_scaling_args(segment)
    segment.add_argument("--out", required=True, help=f"output mask ({', '.join(MASK_SUFFIXES)}; 0/255)")
    segment.add_argument("--overlay", help=f"optional overlay image ({', '.join(OVERLAY_SUFFIXES)})")
    segment.add_argument("--multimask", action="store_true",
                         help="a multi-map model's other answers too, as <out>_2.png, <out>_3.png (best first)")
    segment.add_argument("--map-index", type=int, default=None,
                         help="a multi-map model's answer map to use, 0-based (default: the one its IoU head ranks "
                              "best for the first click; the printed 'map' of an earlier answer)")
    segment.add_argument("--map-choice", default="first_click", choices=["first_click", "click_set"],
                         help="which click ranks the maps: the first (default; corrective clicks keep its map) or "
                              "the whole click set")
    segment.set_defaults(func=_segment)

    demo = sub.add_parser("demo", help="segment a shipped example photo with and without scaling")
    demo.add_argument("--model", default=None)
    demo.add_argument("--out", default="outputs/demo")
    demo.set_defaults(func=_demo)

    export = sub.add_parser("export", help="write a trust_remote_code hub folder, with its model card")
    export.add_argument("--model", default=None, help="checkpoint folder (default: embedded model)")
    export.add_argument("--out", required=True)
    export.add_argument("--card", help="model card markdown to write as README.md (default: the checkpoint's "
                        "README.md, else a short generated card)")
    export.add_argument("--no-card", action="store_true", help="write no README.md")
    export.set_defaults(func=_export)

    from .labelling import add_label_arguments

    label = sub.add_parser("label", help="segment every row of a datasets dataset; write masks as a dataset")
    add_label_arguments(label)
    label.set_defaults(func=_label)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except USAGE_ERRORS as error:
        return report(PROG, error)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars would drown the one line of output
    try:
        return args.func(args)
    except USAGE_ERRORS as error:
        return report(PROG, error)


if __name__ == "__main__":
    sys.exit(main())
