"""A JSONL tracker for accelerate: one JSON object per `accelerator.log(...)` call, appended to a file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker


class JSONLTracker(GeneralTracker):
    """Writes `{"step": ..., "time": ..., **values}` lines to `path` (the run config as a `{"config": ...}` line)."""

    name = "jsonl"
    requires_logging_directory = False
    main_process_only = True

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def tracker(self) -> Path:
        return self.path

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def store_init_configuration(self, values: dict) -> None:
        self._append({"time": time.time(), "config": values})

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self._append({"step": step, "time": time.time(), **values})


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
