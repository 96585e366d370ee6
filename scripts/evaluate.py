r"""Evaluate interactive segmenters on the click benchmarks (NoC / mIoU@k / random-click mIoU@1 / scaling /
zero-shot proposals), with OpenCV GrabCut, the scikit-image random walker and the U²-Net(-p) saliency baselines
(u2netp_zero, u2netp_component, u2net_zero, u2net_component) as peers on the same clicks.

    python scripts/evaluate.py --model hf_iis/checkpoints/default --datasets GrabCut,Berkeley \
        --protocols noc,miou1,random --out outputs/eval/default

    python scripts/evaluate.py --model none --datasets GrabCut --protocols noc,random   # peers only

    python scripts/evaluate.py --model none --peers u2netp_zero,u2netp_component,grabcut \
        --datasets CCP-parts,CamVid-regions --noc-limit 200      # saliency baselines, region-level benchmarks

    python scripts/evaluate.py --model hf_iis/checkpoints/default --datasets validation:data_cache/corpus_v2 \
        --protocols noc --zoom-in off,auto --noc-limit 200       # choose click-loop settings on validation

    python scripts/evaluate.py --datasets GrabCut,Berkeley --protocols miou1 --peers none --overlays 0 \
        --triangulation 0,4,16 --triangulation-modes independent,conditioned    # the seed's form vs the condition kept

Writes <out>/results.json, instances.{json,csv}, table.md and plots/*.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, non_negative_int, positive_int, report
from hf_iis.data.layouts import default_data_root
from hf_iis.evaluation.results import ResultRow
from hf_iis.evaluation.runner import PROTOCOLS, EvalConfig, check_config, run_evaluation

# the benchmark folder when neither --data-root nor $HF_IIS_DATA_ROOT names one: ../shared/data beside the repository
REPO_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
PROG = "evaluate.py"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str, flag: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; anything else is an error naming the flag."""
    try:
        return [int(v) for v in _csv(text)]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give a comma list of whole numbers, e.g. 1,2,4") from None


ZOOM_WORDS = {"off": False, "on": True, "auto": "auto"}


def _zoom_settings(text: str) -> list:
    """'off,auto' -> [False, 'auto'] (the predictor's zoom_in values)."""
    words = _csv(text)
    if not words or any(w not in ZOOM_WORDS for w in words):
        raise ValueError(f"--zoom-in {text!r}: give a comma list of off, on, auto")
    return [ZOOM_WORDS[w] for w in words]


# hf_iis.scaling.conditioned_triangulation.TRIANGULATION_MODES, spelled here so that parsing loads no torch
TRIANGULATION_MODES = ("independent", "conditioned")


def _modes(text: str, flag: str) -> list[str]:
    """'independent,conditioned' -> ['independent', 'conditioned'] (the predictor's triangulation_mode values)."""
    words = _csv(text)
    if not words or any(w not in TRIANGULATION_MODES for w in words):
        raise ValueError(f"{flag} {text!r}: give a comma list of {', '.join(TRIANGULATION_MODES)}")
    return list(dict.fromkeys(words))


# hf_iis.inference.multimask_prediction.MAP_CHOICES, spelled here so that parsing loads no torch
MAP_CHOICES = ("first_click", "click_set")


def _map_choice(text: str) -> str:
    if text not in MAP_CHOICES:
        raise ValueError(f"--map-choice {text!r}: give one of {', '.join(MAP_CHOICES)}")
    return text


def _combo(text: str) -> tuple[int, int, str]:
    """'4x16' or '4x16:foreground' -> (tta, triangulation, sampling)."""
    counts, _, sampling = text.partition(":")
    tta, _, k = counts.partition("x")
    try:
        return int(tta), int(k), sampling or "stratified"
    except ValueError:
        raise ValueError(f"--scaling-combos {text!r}: give TTAxK[:SAMPLING], e.g. 4x16 or 4x16:foreground") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=None,
                   help="checkpoint folder or hub id; repeatable or a comma list; 'none' = peers only "
                        "(default: the embedded default model)")
    p.add_argument("--datasets", default="GrabCut,Berkeley",
                   help="comma list of benchmarks, or validation:<corpus folder> for a training corpus's "
                        "validation split, where settings are chosen (default: %(default)s)")
    p.add_argument("--data-root", default=None,
                   help="folder holding GrabCut/, Berkeley/, ... (default: $HF_IIS_DATA_ROOT, else ../shared/data "
                        "beside the repository)")
    p.add_argument("--protocols", default="noc,miou1,random", help=f"comma list of {','.join(PROTOCOLS)}")
    p.add_argument("--tta", default="1", help="TTA view counts for the model rows, comma list (default: 1)")
    p.add_argument("--triangulation", default="0", help="auxiliary-pixel counts, comma list (default: 0 = off)")
    p.add_argument("--sampling", default="uniform", help="triangulation sampling: uniform,stratified,foreground")
    p.add_argument("--triangulation-modes", default="independent",
                   help="triangulation modes, comma list of independent (the seed's form: single clicks at the "
                        "auxiliary pixels), conditioned (the clicks plus each auxiliary pixel); a row each for every "
                        "triangulation count > 0 (default: %(default)s)")
    p.add_argument("--zoom-in", default="off", help="zoom-in crop views for the model rows, comma list of off, on, "
                   "auto (a row each; default: off)")
    p.add_argument("--map-choice", default="first_click",
                   help="a multi-map model's map for corrective clicks: first_click (default: the map the first "
                        "click's predicted IoU ranks best, kept) or click_set (each click set's best-predicted map); "
                        "named in the row labels (', maps=click_set') and in results.json")
    p.add_argument("--upsample", default="bilinear",
                   help="how model maps reach the photo's size, comma list of bilinear,guided (one model row each; "
                        "default: %(default)s)")
    p.add_argument("--peers", default="grabcut,random_walker",
                   help="comma list of peers (grabcut, random_walker, u2netp_zero, u2netp_component, u2net_zero, "
                        "u2net_component), or 'none' (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None, help="at most N instances per dataset (the first ones)")
    p.add_argument("--noc-limit", type=positive_int, default=None,
                   help="run the NoC loop (NoC / NoF / mIoU@k) on at most N instances per dataset, a fixed evenly "
                        "spaced subset; mIoU@1 center stays on every instance (default: all)")
    p.add_argument("--random-limit", type=positive_int, default=None,
                   help="the random-click protocol on at most N instances per dataset, the same kind of subset")
    p.add_argument("--seeds", type=positive_int, default=3, help="random-click seeds (default: %(default)s)")
    p.add_argument("--max-clicks", type=positive_int, default=20)
    p.add_argument("--scaling-tta", default="1,2,4,8", help="scaling study: TTA view counts alone")
    p.add_argument("--scaling-triangulation", default="4,16,64", help="scaling study: triangulation counts alone")
    p.add_argument("--scaling-sampling", default="uniform,stratified,foreground", help="scaling study: samplings")
    p.add_argument("--scaling-triangulation-modes", default="independent",
                   help="scaling study: triangulation modes, comma list of independent, conditioned (default: "
                        "%(default)s)")
    p.add_argument("--scaling-combos", default="2x4,4x16,8x64",
                   help="scaling study: TTAxK[:SAMPLING] combinations (sampling: stratified unless named); 'none'")
    p.add_argument("--scaling-limit", type=non_negative_int, default=10,
                   help="instances per dataset for the scaling study and the multi-click comparison; 0 = all")
    p.add_argument("--proposal-data", default="data_cache/corpus:corpus",
                   help="multi-mask images for the proposal protocol: CORPUS_DIR:corpus = the validation split of "
                        "a parquet training corpus (default: %(default)s), or FOLDER:LAYOUT under the data root "
                        "(e.g. BSDS500:bsds500, whose test split is training data here)")
    p.add_argument("--proposal-limit", type=positive_int, default=20, help="images for the proposal protocol")
    p.add_argument("--proposal-min-masks", type=positive_int, default=2, help="skip images with fewer gt masks")
    p.add_argument("--overlays", type=non_negative_int, default=3,
                   help="instances per method in the qualitative overlays")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="outputs/eval/run")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace, command: str) -> EvalConfig:
    from hf_iis.checkpoint_paths import DEFAULT_CHECKPOINT

    specs = args.model if args.model else [str(DEFAULT_CHECKPOINT)]
    models = [m for spec in specs for m in _csv(spec) if m.lower() != "none"]
    folder, _, layout = args.proposal_data.partition(":")
    return EvalConfig(
        models=models,
        datasets=_csv(args.datasets),
        data_root=args.data_root or str(default_data_root(REPO_DATA_ROOT)),
        protocols=_csv(args.protocols),
        tta=_ints(args.tta, "--tta"),
        triangulation=_ints(args.triangulation, "--triangulation"),
        sampling=_csv(args.sampling),
        triangulation_modes=_modes(args.triangulation_modes, "--triangulation-modes"),
        zoom_in=_zoom_settings(args.zoom_in),
        upsample=_csv(args.upsample),
        map_choice=_map_choice(args.map_choice),
        peers=[] if args.peers.lower() == "none" else _csv(args.peers),
        limit=args.limit,
        noc_limit=args.noc_limit,
        random_limit=args.random_limit,
        seeds=args.seeds,
        max_clicks=args.max_clicks,
        out=args.out,
        scaling_tta=_ints(args.scaling_tta, "--scaling-tta"),
        scaling_triangulation=_ints(args.scaling_triangulation, "--scaling-triangulation"),
        scaling_sampling=_csv(args.scaling_sampling),
        scaling_triangulation_modes=_modes(args.scaling_triangulation_modes, "--scaling-triangulation-modes"),
        scaling_combos=[] if args.scaling_combos.lower() == "none" else [
            _combo(c) for c in _csv(args.scaling_combos)
        ],
        scaling_limit=args.scaling_limit or None,
        proposal_folder=folder,
        proposal_layout=layout or folder.lower(),
        proposal_limit=args.proposal_limit,
        proposal_min_masks=args.proposal_min_masks,
        overlays=args.overlays,
        progress=not args.no_progress,
        command=command,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:  # the arguments and the output folder are checked before any model loads (run_evaluation's check_config)
        args = parse_args(argv)
        cfg = config_from_args(args, "python scripts/evaluate.py " + shlex.join(argv))
        check_config(cfg)
    except USAGE_ERRORS as error:
        return report(PROG, error)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        results = run_evaluation(cfg)
    except (FileNotFoundError, KeyError, ValueError) as error:  # missing data, unknown benchmark / peer / corpus
        return report(PROG, error)
    for row in map(ResultRow.from_dict, results["results"]):
        m = row.metrics
        last = len(m.biou_curve or [])  # boundary IoU after the center click and after the NoC loop's last click
        shown = (("NoC90", m.noc.get(90), 2), ("mIoU@1", m.miou1_center, 2), ("bIoU@1", m.biou1_center, 2),
                 (f"mIoU@{last}", m.miou_at(last) if last else None, 2),
                 (f"bIoU@{last}", m.biou_curve[-1] if last else None, 2),
                 ("mIoU@1 random", m.miou1_random, 2), ("s/click", m.seconds_per_click, 3))
        values = " ".join(f"{label}={value:.{digits}f}" for label, value, digits in shown if value is not None)
        print(f"{row.dataset:14s} {row.method:32s} N={row.num_instances} {values}")
    for skipped in results.get("skipped", []):
        print(f"skipped {skipped['method']}: {skipped['reason']}")
    print(f"wrote {args.out}/results.json, table.md, instances.csv, plots/ in {results['seconds total']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
