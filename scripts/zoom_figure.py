r"""Before / after figure of zoom-in: the same standard clicks on one benchmark instance, without and with zoom.

    python scripts/zoom_figure.py --results outputs/eval/zoom_benchmarks/instances.json --dataset Berkeley \
        --clicks 5 --out docs/figures/zoom_thin_object.jpg

The instance is picked from an `evaluate.py` run that had both rows (`--zoom-in off,auto`): the one whose IoU after
`--clicks` clicks gains most from zoom (the figure illustrates what zoom does to a thin or small part; it is the
best case by construction, and its title says so), or the one named by `--id`. Each row of the figure is a setting;
its columns are the first click and click `--clicks`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROG = "zoom_figure.py"


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def pick_instance(records: list[dict], dataset: str, clicks: int, off: str, on: str) -> tuple[str, float, float]:
    """(id, IoU without zoom, IoU with zoom) at `clicks` clicks of the instance whose IoU gains most."""
    by_method: dict[str, dict[str, float]] = {}
    for r in records:
        if r.get("dataset") == dataset and r.get("ious") and len(r["ious"]) >= clicks:
            by_method.setdefault(r["method"], {})[r["id"]] = r["ious"][clicks - 1]
    if off not in by_method or on not in by_method:
        raise ValueError(f"no NoC records of both {off!r} and {on!r} on {dataset}; methods there: "
                         f"{sorted(by_method)}")
    common = sorted(set(by_method[off]) & set(by_method[on]))
    best = max(common, key=lambda i: by_method[on][i] - by_method[off][i])
    return best, by_method[off][best], by_method[on][best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--results", required=True, help="instances.json of an evaluate.py run with zoom off and on")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="hf_iis/checkpoints/default")
    parser.add_argument("--off", default="default [tta=1]", help="method name of the row without zoom")
    parser.add_argument("--on", default="default [tta=1, zoom=auto]", help="method name of the row with zoom")
    parser.add_argument("--zoom-in", default="auto", choices=["on", "auto"])
    parser.add_argument("--id", default=None, help="instance id (default: the one zoom helps most)")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--out", required=True, help="image file to write (.jpg or .png)")
    parser.add_argument("--data-root", default=None,
                        help="folder holding GrabCut/ and Berkeley/ (default: $HF_IIS_DATA_ROOT, else ../shared/data "
                             "beside the repository)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    results, out = Path(args.results), Path(args.out)
    if not results.is_file():
        return _error(f"--results {results}: no such file (run scripts/evaluate.py --zoom-in off,auto first)")
    if args.clicks < 1:
        return _error(f"--clicks must be >= 1, got {args.clicks}")
    if out.suffix.lower() not in (".jpg", ".jpeg", ".png") or out.is_dir():
        return _error(f"--out {out}: give a .jpg or .png file name")
    if not out.parent.is_dir():
        return _error(f"--out {out}: folder {out.parent} does not exist")
    try:
        records = json.loads(results.read_text())
        records = records["instances"] if isinstance(records, dict) else records
        if args.id is None:
            chosen, before, after = pick_instance(records, args.dataset, args.clicks, args.off, args.on)
        else:
            chosen = args.id
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        return _error(f"--results {results}: {error}")

    import torch

    from hf_iis.evaluation.benchmarks import load_benchmark
    from hf_iis.evaluation.metrics import binarize
    from hf_iis.evaluation.plots import plot_overlays
    from hf_iis.evaluation.protocols import run_click_loop
    from hf_iis.evaluation.segmenters import ModelSegmenter
    from hf_iis.inference.predictors import load_predictor

    torch.set_num_threads(args.threads)
    try:
        from hf_iis.data.layouts import default_data_root

        root = args.data_root or default_data_root(Path(__file__).resolve().parents[2] / "shared" / "data")
        instances = {inst.id: inst for inst in load_benchmark(args.dataset, root)}
    except (FileNotFoundError, KeyError) as error:
        return _error(str(error))
    if chosen not in instances:
        return _error(f"no instance {chosen!r} in {args.dataset}")
    inst = instances[chosen]
    items = []
    for zoom in (False, True if args.zoom_in == "on" else "auto"):
        segmenter = ModelSegmenter(load_predictor(args.model), zoom_in=zoom)
        run = run_click_loop(segmenter, inst, args.clicks, keep_maps=True)
        label = "no zoom" if zoom is False else f"zoom_in={zoom!r}"
        for k in sorted({0, args.clicks - 1}):
            items.append((inst.image, inst.gt, binarize(run.probabilities[k]), run.clicks[: k + 1],
                          f"{label}\n{args.dataset} {inst.id}: {k + 1} click(s), IoU {100 * run.ious[k]:.1f}"))
    columns = len({0, args.clicks - 1})
    tmp = out.with_suffix(".tmp.png")
    plot_overlays(items, tmp, columns=columns)
    from PIL import Image

    Image.open(tmp).convert("RGB").save(out, quality=85)
    tmp.unlink()
    how = "named by --id" if args.id else (f"the largest gain at click {args.clicks} in {results} "
                                           f"({100 * before:.1f} -> {100 * after:.1f})")
    print(f"wrote {out}: {args.dataset} {chosen}, {how}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
