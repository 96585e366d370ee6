r"""Repeat the 2-process CPU launch of `tests/test_training_loop.py::test_two_process_cpu_run` until one hangs.

    python scripts/loop_two_process_launch.py --runs 40 --out /tmp/ddp_loop     # best beside a CPU-heavy job

The exit hang it hunts (a gloo deadlock at teardown, fixed by `hf_iis.training.teardown.finish_run`) showed only
under load, once in 1-7 runs. A run that has not exited after `--timeout` seconds is reported with
`py-spy dump --native` of the launcher and its ranks (when py-spy is installed: `pip install py-spy`), then killed,
and the loop stops. Prints one line per run and the count of clean runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hf_iis.training.toy import coco_mval_rows, write_corpus  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dump(pid: int) -> str:
    """py-spy's native stacks of the launcher and its children, or why there are none."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "(py-spy not installed: no stacks)"
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return "\n".join(subprocess.run([spy, "dump", "--native", "--pid", p], capture_output=True, text=True).stdout
                     for p in [str(pid), *children])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before a run counts as hung")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ddp_loop"))
    args = parser.parse_args()
    corpus = args.out / "corpus"
    if not corpus.exists():
        rows = coco_mval_rows(args.data_root, n=6, max_side=128)
        write_corpus(corpus, {"train": rows[:4], "validation": rows[4:]})
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               ACCELERATE_USE_CPU="1")
    for run in range(args.runs):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(_free_port()), "scripts/train.py", "--config", "configs/tiny.yaml", "--data", str(corpus),
               "--output-dir", str(args.out / f"run{run}"), "--no-progress", "--set", "optim.max_steps=4",
               "--set", "save_every=2", "--set", "eval_every=2"]
        with open(args.out / f"run{run}.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"run {run}: HUNG after {args.timeout:.0f} s\n{_dump(proc.pid)}", flush=True)
                subprocess.run(["pkill", "-9", "-P", str(proc.pid)])
                proc.kill()
                print(f"{run} clean runs before the hang")
                return 1
        print(f"run {run}: exit {proc.returncode}", flush=True)
        if proc.returncode != 0:
            print(f"run {run} failed: see {args.out / f'run{run}.log'}")
            return 1
    print(f"{args.runs} clean runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
