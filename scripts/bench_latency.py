r"""Latency of the predictor on a real 480p image: encode, first click, extra batched decodes, TTA x triangulation.

    python scripts/bench_latency.py                       # the embedded default model
    python scripts/bench_latency.py --model runs/x/final  # any checkpoint folder
    python scripts/bench_latency.py --random-init         # default architecture, random weights (same cost)
    python scripts/bench_latency.py --device cuda         # on a GPU (timings synchronise the device)

Prints a markdown table and writes JSON (default outputs/bench/latency.json). Each number is the median of
--repeats runs after a warm-up. "first click" = set_image + encode + one decode (what a user waits for after
loading an image); "extra decode" = the per-click-set cost inside one batched decoder call.
Targets for the default model on 2 CPU cores at 640x480: first click <= 250 ms, an extra click on a cached image
<= 15 ms, peak RSS <= 1.5 GB (the U²-Net-p default; the first, EfficientNet-only model had first click <= 80 ms).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from PIL import Image

from hf_iis import SignedClickConfig, SignedClickImageProcessor, SignedClickModel, SignedClickPredictor
from hf_iis.data.layouts import default_data_root
from hf_iis.inference.predictor_views import decode_probabilities
from hf_iis.inference.predictors import is_student, load_predictor
from hf_iis.models.signed_click.decode_memo import forget_last_decode

REPO_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository


def decode_sets(predictor, emb, points, labels):
    """N click sets decoded on one cached view: the teacher's decoder passes or the student's dot products."""
    if is_student(predictor.model):
        return predictor._decode_batched(emb, points, labels)
    return decode_probabilities(predictor.model, emb, points, labels, points_per_batch=predictor.points_per_batch)


def _no_sync() -> None:
    pass


def _median_ms(fn, repeats: int, sync=_no_sync, before=lambda: None) -> float:
    """Median wall time of `fn` after a warm-up; `sync` (torch.cuda.synchronize on a GPU, whose kernels run
    asynchronously) brackets every call; `before` runs untimed before each call."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        before()
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _load_480p(data_root: Path) -> np.ndarray:
    """A real photo resized to 640x480 (the first GrabCut image that is at least that large)."""
    for path in sorted((data_root / "GrabCut" / "data_GT").glob("*")):
        image = Image.open(path).convert("RGB")
        if image.width >= 640 and image.height >= 480:
            return np.asarray(image.resize((640, 480), Image.BILINEAR))
    raise FileNotFoundError(f"no GrabCut image of at least 640x480 under {data_root}")


def _small_object_480p(data_root: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The GrabCut or Berkeley photo whose object's box is the smallest share of the frame's side, resized to 640x480,
    its object mask, and the centre of the object's box: where a corrective click is refined on a crop (`zoom_in`).
    GrabCut's objects fill at least 3/4 of the frame's side, so the zoom crop would be the whole photo there."""
    from hf_iis.evaluation.benchmarks import load_benchmark

    best = None
    for name in ("GrabCut", "Berkeley"):
        for instance in load_benchmark(name, data_root):
            rows, cols = np.nonzero(instance.gt)
            if rows.size == 0:
                continue
            side = max((np.ptp(rows) + 1) / instance.gt.shape[0], (np.ptp(cols) + 1) / instance.gt.shape[1])
            if best is None or side < best[0]:
                best = (side, instance)
    if best is None:
        raise FileNotFoundError(f"no GrabCut or Berkeley instance with a mask under {data_root}")
    instance = best[1]
    image = np.asarray(Image.fromarray(instance.image).resize((640, 480), Image.BILINEAR))
    gt = np.asarray(Image.fromarray(instance.gt).resize((640, 480), Image.NEAREST))
    rows, cols = np.nonzero(gt)
    return image, gt, (float(cols.min() + cols.max()) / 2, float(rows.min() + rows.max()) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: embedded model)")
    parser.add_argument("--random-init", action="store_true", help="default architecture with random weights")
    parser.add_argument("--data-root", type=Path, default=default_data_root(REPO_DATA_ROOT),
                        help="folder holding GrabCut/ (default: $HF_IIS_DATA_ROOT, else ../shared/data beside the "
                             "repository: %(default)s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/latency.json"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = parser.parse_args()
    median_ms = _median_ms
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available")
        median_ms = functools.partial(_median_ms, sync=torch.cuda.synchronize)

    torch.set_num_threads(args.threads)
    if args.random_init:
        config = SignedClickConfig()
        predictor = SignedClickPredictor(SignedClickModel(config), SignedClickImageProcessor(size=config.image_size))
        model_name = "random-init default architecture"
    else:
        predictor = load_predictor(args.model)  # teacher or student (hf_iis/inference/predictors.py)
        model_name = args.model or "embedded default"
    predictor.model.to(args.device)
    # every timed call is a new click: the model's kept last decode (decode_memo.py) is dropped before each repeat
    median_ms = functools.partial(median_ms, before=lambda: forget_last_decode(predictor.model))
    image = _load_480p(args.data_root)
    height, width = image.shape[:2]
    click = [(width * 0.5, height * 0.5, 1)]
    results: dict[str, float] = {}

    def first_click() -> None:
        predictor._image_key = None  # force a re-encode, as for a newly loaded image
        predictor.set_image(image)
        predictor.predict(click)

    results["first_click_ms"] = median_ms(first_click, args.repeats)

    def encode_only() -> None:
        predictor._embeddings = {}
        predictor.view_embeddings(predictor_views(1))

    from hf_iis.scaling.tta import resolve_views as predictor_views

    predictor.set_image(image)
    results["encode_ms"] = median_ms(encode_only, args.repeats)
    predictor.view_embeddings(predictor_views(8))
    emb = predictor.view_embeddings(predictor_views(1))["identity"]
    gen = torch.Generator().manual_seed(0)
    for n in (1, 16, 64):
        points = (torch.rand(n, 1, 2, generator=gen) * (predictor.processor.size - 1)).to(predictor.device)
        labels = torch.ones(n, 1, dtype=torch.long, device=predictor.device)
        with torch.inference_mode():
            ms = median_ms(lambda p=points, lab=labels: decode_sets(predictor, emb, p, lab), args.repeats)
        results[f"decode_batch{n}_ms"] = ms
    results["extra_decode_ms"] = (results["decode_batch64_ms"] - results["decode_batch1_ms"]) / 63

    # cold: a newly loaded image (encode every view, then decode); warm: another click on a cached image
    grids: dict[str, dict[str, float]] = {"cold": {}, "warm": {}}
    for tta in (1, 2, 4, 8):
        for tri in (0, 4, 16, 64):
            key = f"tta={tta},triangulation={tri}"

            def cold(t=tta, k=tri) -> None:
                predictor._image_key = None
                predictor.set_image(image)
                predictor.predict(click, tta=t, triangulation=k)

            grids["cold"][key] = median_ms(cold, max(3, args.repeats // 2))
            grids["warm"][key] = median_ms(lambda t=tta, k=tri: predictor.predict(click, tta=t, triangulation=k),
                                            max(3, args.repeats // 2))
    plain_key = "tta=1,triangulation=0"

    # a corrective click on a cached image (docs/results_zoom.md), on the benchmark photo with the smallest object (on
    # the photo above the object fills the frame and zoom does not apply): the first click's map fed back, a second
    # positive click beside the first; without zoom, with zoom (a new crop to encode / the crop cached), and with the
    # guided upsampling
    small_image, object_mask, (cx, cy) = _small_object_480p(args.data_root)
    predictor.set_image(small_image)
    # the previous mask is the object's own: zoom crops around the current estimate, and the model's first map on
    # this photo spills over most of the frame, so with its own map the crop would be the whole photo and zoom would
    # not apply (what happens after a few corrective clicks, once the estimate is close, is what is timed)
    first = object_mask.astype(np.float32)
    second = [(cx, cy, 1), (cx + 8.0, cy + 8.0, 1)]

    def corrective(zoom, upsample="bilinear", fresh_crop=False):
        def run() -> None:
            if fresh_crop:
                predictor.zoom_state = None  # forget the crop: it is encoded again
            predictor.predict(second, prev_mask=first, zoom_in=zoom, upsample=upsample)
        return run

    zoomed = predictor.predict(second, prev_mask=first, zoom_in="auto").zoom_box is not None
    corrective_ms = {
        "no zoom": median_ms(corrective(False), args.repeats),
        "no zoom, guided": median_ms(corrective(False, "guided"), args.repeats),
        "zoom auto, new crop": median_ms(corrective("auto", fresh_crop=True), args.repeats),
        "zoom auto, crop cached": median_ms(corrective("auto"), args.repeats),
        "zoom auto, crop cached, guided": median_ms(corrective("auto", "guided"), args.repeats),
    }
    results["corrective_click_zoomed"] = zoomed
    results["corrective_click_ms"] = corrective_ms
    results["peak_rss_mb"] = psutil.Process().memory_info().rss / 2**20
    try:
        import resource

        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except ImportError:
        pass

    hardware = f"{platform.processor() or platform.machine()}, {psutil.cpu_count(logical=True)} logical CPUs, " \
               f"torch {torch.__version__} with {args.threads} threads"
    if args.device.startswith("cuda"):
        hardware = f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}"
        results["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(args.device) / 2**20
    print(f"model: {model_name}; image {width}x{height}; input {predictor.processor.size}px; {hardware}")
    print("| measure | ms |\n|---|---|")
    for key in ("encode_ms", "first_click_ms", "decode_batch1_ms", "extra_decode_ms"):
        print(f"| {key[:-3].replace('_', ' ')} | {results[key]:.1f} |")
    print(f"| peak RSS (MB) | {results['peak_rss_mb']:.0f} |")
    if "corrective_click_ms" in results:
        print(f"\n| a second click on a cached image (the smallest benchmark object; zoom applied: "
              f"{results['corrective_click_zoomed']}) | ms |"
              "\n|---|---|")
        for key, ms in results["corrective_click_ms"].items():
            print(f"| {key} | {ms:.1f} |")
    print("\n| setting | new image: ms | x plain | cached image: ms | x plain |\n|---|---|---|---|---|")
    for key in grids["cold"]:
        cold_ms, warm_ms = grids["cold"][key], grids["warm"][key]
        print(f"| {key} | {cold_ms:.0f} | {cold_ms / grids['cold'][plain_key]:.2f} | {warm_ms:.0f} | "
              f"{warm_ms / grids['warm'][plain_key]:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": model_name, "hardware": hardware, "image": [width, height],
                                    "input_size": predictor.processor.size, **results, "grid_ms": grids}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
