"""Crash-safe checkpoints: `save_state` into a temporary folder, then one atomic rename.

A run killed at any moment leaves either the previous complete checkpoints or a `.tmp-*` folder that `latest`
ignores (and `save_checkpoint` removes). Checkpoints are `<run>/checkpoints/step_<8 digits>/` with
`trainer_state.json` (step, best validation score, skip counts) and `data_state_<rank>.json` (each rank's data
position) beside accelerate's model / optimizer / scheduler / RNG files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

_STEP_DIR = re.compile(r"^step_(\d{8})$")


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"step_{step:08d}"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / "trainer_state.json").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def save_checkpoint(
    accelerator, root: Path, step: int, trainer_state: dict[str, Any], data_state: dict[str, Any], keep: int = 2
) -> Path:
    """Collective: every process must call it. Returns the final checkpoint folder."""
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-step_{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    (tmp / f"data_state_{accelerator.process_index}.json").write_text(json.dumps(data_state))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def atomic_save_pretrained(target: Path, *objects) -> None:
    """`save_pretrained` every object (model, image processor) into `target`, replacing it atomically."""
    tmp = target.parent / f".tmp-{target.name}"
    old = target.parent / f".old-{target.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    for obj in objects:
        obj.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
