"""Load test for the Space: N concurrent `gradio_client` clients, each sending M requests to `/segment`.

    python scripts/load_space.py --tiny                      # serve the app in-process with a tiny random model
    python scripts/load_space.py --model FOLDER --clients 8 --requests 10
    python scripts/load_space.py --url http://127.0.0.1:7860/  # an app already running on this machine

Every request must succeed and return a mask of the image's size; the script prints p50 / p95 / max latency, the
throughput and every error, and exits 1 if any request failed. Loopback only: other hosts are refused. Bounded:
at most 32 clients x 100 requests, and a wall-clock deadline after which unfinished requests count as errors.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_CLIENTS, MAX_REQUESTS = 32, 100


def tiny_checkpoint(folder: Path) -> Path:
    """A randomly initialised tiny model (64 px input): exercises the serving path, not segmentation quality."""
    import torch

    import hf_iis

    torch.manual_seed(0)
    config = hf_iis.SignedClickConfig.from_preset("tiny", image_size=64, use_pretrained_backbone=False)
    hf_iis.SignedClickModel(config).eval().save_pretrained(folder)
    hf_iis.SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_client(url: str, index: int, args, image_path: str, size: tuple[int, int], stop: threading.Event) -> list:
    """One client's requests; returns [(latency seconds or None, error or None), ...]."""
    from gradio_client import Client, handle_file

    rng = np.random.default_rng(index)
    results = []
    try:
        client = Client(url, verbose=False)
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return [(None, f"client {index}: connect failed: {type(error).__name__}: {error}")] * args.requests
    for request in range(args.requests):
        if stop.is_set():
            results.append((None, f"client {index} request {request}: not started before the deadline"))
            continue
        count = int(rng.integers(1, 4))
        signs = [1] + [int(rng.choice([1, -1])) for _ in range(count - 1)]  # the first click is positive
        clicks = [[int(rng.integers(0, size[0])), int(rng.integers(0, size[1])), sign] for sign in signs]
        start = time.perf_counter()
        try:
            mask_path, score = client.predict(handle_file(image_path), json.dumps(clicks), args.tta,
                                              args.triangulation, api_name="/segment")
            latency = time.perf_counter() - start
            with Image.open(mask_path) as mask:
                if mask.size != size:
                    raise ValueError(f"mask is {mask.size}, expected {size}")
            if not 0.0 <= float(score) <= 1.0:
                raise ValueError(f"score {score} outside [0, 1]")
            results.append((latency, None))
        except Exception as error:  # noqa: BLE001 - every failure is counted and printed
            results.append((None, f"client {index} request {request}: {type(error).__name__}: {error}"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="an app already running on this machine (loopback only)")
    source.add_argument("--model", help="serve the app in-process with this checkpoint folder")
    source.add_argument("--tiny", action="store_true", help="serve the app in-process with a tiny random model")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--image", help="image to send (default: scikit-image's astronaut, 512 x 512)")
    parser.add_argument("--tta", type=int, default=2)
    parser.add_argument("--triangulation", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= MAX_CLIENTS and 1 <= args.requests <= MAX_REQUESTS):
        parser.error(f"--clients must be in 1..{MAX_CLIENTS} and --requests in 1..{MAX_REQUESTS}")

    with tempfile.TemporaryDirectory(prefix="load_space_") as tmp:
        image_path = args.image
        if image_path is None:
            import skimage.data

            image_path = str(Path(tmp) / "astronaut.png")
            Image.fromarray(skimage.data.astronaut()).save(image_path)
        with Image.open(image_path) as image:
            size = image.size

        demo = None
        if args.url:
            url = args.url
            if urlparse(url).hostname not in LOOPBACK:
                parser.error(f"--url must point at this machine ({', '.join(sorted(LOOPBACK))}), got {url}")
            model = url
        else:
            import torch

            torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
            from hf_iis import space as app

            model = str(tiny_checkpoint(Path(tmp) / "tiny")) if args.tiny else app.resolve_model(args.model)
            demo = app.build_demo(model=model)
            demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                        **app.launch_kwargs())
            url = demo.local_url
            model = "tiny random checkpoint" if args.tiny else model

        print(f"load test: {args.clients} clients x {args.requests} requests -> {url} ({model}); image "
              f"{Path(image_path).name} {size[0]}x{size[1]}, tta={args.tta}, triangulation={args.triangulation}")
        stop = threading.Event()
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                futures = [pool.submit(run_client, url, i, args, image_path, size, stop) for i in range(args.clients)]
                done, pending = wait(futures, timeout=args.deadline)
                stop.set()  # clients still running finish their current request and start no new one
                results = [r for future in futures for r in future.result()]
        finally:
            if demo is not None:
                demo.close()
        wall = time.perf_counter() - start

    latencies = np.array([latency for latency, error in results if error is None])
    errors = [error for _, error in results if error is not None]
    print(f"requests: {len(results)}, ok: {len(latencies)}, errors: {len(errors)}"
          + (f" (deadline of {args.deadline:.0f} s reached)" if pending else ""))
    if len(latencies):
        p50, p95 = np.percentile(latencies, [50, 95])
        print(f"latency: p50 {p50:.3f} s, p95 {p95:.3f} s, max {latencies.max():.3f} s, mean {latencies.mean():.3f} s")
    print(f"wall: {wall:.1f} s, throughput: {len(latencies) / wall:.2f} requests/s")
    for error in errors[:20]:
        print(f"  error: {error}")
    if len(errors) > 20:
        print(f"  ... and {len(errors) - 20} more")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
