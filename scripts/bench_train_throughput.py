"""Training throughput on this machine: images/second for a training config, data loading included, and the
data pipeline alone beside it (it must not be the bottleneck).

    python scripts/bench_train_throughput.py --config configs/default.yaml --steps 10 --out runs/bench_train.json
    python scripts/bench_train_throughput.py --config configs/default.yaml --processes 2   # + 2 gloo processes
    # today's end-to-end step against the decoder trained from cached embeddings, in one run:
    python scripts/bench_train_throughput.py --config configs/u2netp_prior.yaml \
        --set model.init_from=hf_iis/checkpoints/default --decoder-config configs/decoder_multimask.yaml

With `--processes 2` the script re-launches itself with the checked 2-process CPU launch line and reports the
per-process and total rates next to the single-process ones. With `--decoder-config` it also times steps of
`scripts/train_decoder.py train` (no image pass: embeddings read from the cache) and prints the ratio of click sets
per second, decoder-from-cache over end-to-end; a click set is one training sample (one signed click, its target,
its corrective clicks). Results are printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see scripts/train.py: before torch loads OpenMP
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hf_iis.training.config import load_config


def _stream(cfg, rank: int = 0, world: int = 1, model_config=None):
    from hf_iis.models.signed_click.configuration_signed_click import SignedClickConfig
    from hf_iis.training.data import BatchStream, load_split
    from hf_iis.training.loop import build_transform, input_format_for

    if model_config is None:  # the loader alone: the input format of the config's model size
        if cfg.model.init_from:
            model_config = SignedClickConfig.from_pretrained(cfg.model.init_from)
            model_config.image_size = cfg.model.image_size
        else:
            model_config = SignedClickConfig(image_size=cfg.model.image_size)
    transform = build_transform(cfg, input_format_for(model_config), model_config)
    data = load_split(cfg.data.path, cfg.data.train_split, streaming=cfg.data.streaming)
    return BatchStream(data, transform, cfg.data.batch_size, cfg.data.num_workers, cfg.seed, rank, world,
                       cfg.data.shuffle_buffer)


def loader_throughput(cfg, batches: int) -> dict[str, float]:
    stream = _stream(cfg)
    next(stream)  # worker start-up
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        images += int(next(stream)["pixel_values"].shape[0])
    seconds = time.perf_counter() - start
    return {"loader_images_per_s": images / seconds, "loader_sec_per_batch": seconds / batches}


def train_throughput(cfg, steps: int, warmup: int) -> dict[str, float]:
    """Full optimizer steps (data, forward incl. iterative clicks, backward, step) under accelerate."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from hf_iis.training.loop import build_model, build_optimizer
    from hf_iis.training.objective import SignedClickObjective
    from hf_iis.training.trainer import FRAME_INPUTS, MODEL_INPUTS

    accelerator = Accelerator(mixed_precision=cfg.optim.mixed_precision)
    set_seed(cfg.seed)
    model = build_model(cfg)
    objective = SignedClickObjective(model)
    optimizer = build_optimizer(model, cfg)
    objective, optimizer = accelerator.prepare(objective, optimizer)
    objective.train()
    stream = _stream(cfg, accelerator.process_index, accelerator.num_processes, model.config)
    it = cfg.iterative
    times, data_wait, images, click_sets = [], [], 0, 0
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = next(stream)
        t1 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, step, accelerator.process_index])
        rounds = int(rng.integers(it.min_clicks, it.max_clicks + 1)) if it and rng.random() < it.prob else 0
        inputs = {k: batch[k].to(accelerator.device) for k in MODEL_INPUTS + FRAME_INPUTS if k in batch}
        out = objective(**inputs, corrective_clicks=rounds)
        accelerator.backward(out["loss"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
            data_wait.append(t1 - t0)
            images += int(batch["pixel_values"].shape[0])
            click_sets += int(batch["labels"].shape[0])
    total = float(np.sum(times))
    result = {
        "sec_per_step": total / steps,
        "sec_per_step_median": float(np.median(times)),
        "data_wait_sec_per_step": float(np.mean(data_wait)),
        "images_per_s_per_process": images / total,
        "click_sets_per_s_per_process": click_sets / total,
        "torch_threads": torch.get_num_threads(),
    }
    gathered = accelerator.gather(torch.tensor([result["images_per_s_per_process"]], dtype=torch.float64))
    result["images_per_s_total"] = float(gathered.sum())
    result["processes"] = accelerator.num_processes
    return result


def decoder_throughput(decoder_config: str, overrides: list[str], steps: int, warmup: int) -> dict[str, float]:
    """Steps of the decoder trained from cached embeddings (`hf_iis.training.decoder_training`): batch from the
    cache, first-click loss over the S maps, corrective clicks with the run's probability, backward, step."""
    from hf_iis.training.decoder_training import CachedBatches, build_decoder_model, load_run_config
    from hf_iis.training.objective import SignedClickObjective

    cfg = load_run_config(decoder_config, overrides)
    model = build_decoder_model(cfg).train()
    objective = SignedClickObjective(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    batches = CachedBatches(cfg.cache, model.config.image_size, cfg, rng)
    times, data_wait, click_sets = [], [], 0
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = batches.next()
        t1 = time.perf_counter()
        rounds = int(rng.integers(1, cfg.max_corrective_clicks + 1)) if rng.random() < cfg.corrective_prob else 0
        out = objective.loss_on_embeddings(**batch, corrective_clicks=rounds)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - t0)
            data_wait.append(t1 - t0)
            click_sets += int(batch["labels"].shape[0])
    total = float(np.sum(times))
    return {"sec_per_step": total / steps, "sec_per_step_median": float(np.median(times)),
            "data_wait_sec_per_step": float(np.mean(data_wait)), "click_sets_per_s": click_sets / total,
            "views_per_step": cfg.batch_size, "num_mask_outputs": cfg.num_mask_outputs,
            "torch_threads": torch.get_num_threads()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", help="= data.path")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--loader-batches", type=int, default=10)
    parser.add_argument("--processes", type=int, default=1, help="also measure with this many gloo processes")
    parser.add_argument("--out", default="runs/bench_train_throughput.json")
    parser.add_argument("--decoder-config", help="also time the decoder trained from cached embeddings (its YAML)")
    parser.add_argument("--decoder-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of --decoder-config")
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)  # internal: one launched multi-process measurement
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + ([f"data.path={args.data}"] if args.data else [])
    cfg = load_config(args.config, overrides)
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))

    if args.worker_out:
        result = train_throughput(cfg, args.steps, args.warmup)
        if int(os.environ.get("RANK", "0")) == 0:
            Path(args.worker_out).write_text(json.dumps(result))
        return 0

    report = {
        "config": args.config,
        "overrides": overrides,
        "batch_size": cfg.data.batch_size,
        "image_size": cfg.model.image_size,
        "num_workers": cfg.data.num_workers,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "load_avg_1min": os.getloadavg()[0]},
    }
    report["loader"] = loader_throughput(cfg, args.loader_batches)
    print(json.dumps({"loader": report["loader"]}), flush=True)
    report["single_process"] = train_throughput(cfg, args.steps, args.warmup)
    print(json.dumps({"single_process": report["single_process"]}), flush=True)
    if args.processes > 1:
        worker_out = Path(args.out).with_suffix(f".{args.processes}proc.json")
        worker_out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(args.processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), __file__, "--config", args.config,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--worker-out", str(worker_out)]
        for item in overrides:
            cmd += ["--set", item]
        threads = max(1, (os.cpu_count() or 1) // args.processes)
        env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env)
        report[f"{args.processes}_processes"] = json.loads(worker_out.read_text())
        worker_out.unlink()
        print(json.dumps({f"{args.processes}_processes": report[f"{args.processes}_processes"]}), flush=True)
    if args.decoder_config:
        report["decoder_from_cache"] = decoder_throughput(args.decoder_config, args.decoder_set, args.steps,
                                                          args.warmup)
        ratio = report["decoder_from_cache"]["click_sets_per_s"] / report["single_process"][
            "click_sets_per_s_per_process"]
        report["decoder_from_cache"]["ratio_to_end_to_end"] = ratio
        print(json.dumps({"decoder_from_cache": report["decoder_from_cache"]}), flush=True)
    report["machine"]["load_avg_1min_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
