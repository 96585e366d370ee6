"""`hf_iis.training.teardown.finish_run`: barrier, then a GIL-releasing pause, then end_training (multi-process)."""

from __future__ import annotations

import pytest

from hf_iis.training import teardown


class _Accelerator:
    def __init__(self, num_processes: int, events: list[str]) -> None:
        self.num_processes, self.events = num_processes, events

    def wait_for_everyone(self) -> None:
        self.events.append("barrier")

    def end_training(self) -> None:
        self.events.append("end_training")


@pytest.mark.parametrize("processes, expected", [(2, ["barrier", "sleep 0.5", "end_training"]),
                                                 (1, ["end_training"])])
def test_ranks_meet_and_settle_before_the_process_group_is_destroyed(monkeypatch, processes, expected):
    events: list[str] = []
    monkeypatch.setattr(teardown.time, "sleep", lambda seconds: events.append(f"sleep {seconds}"))
    teardown.finish_run(_Accelerator(processes, events))
    assert events == expected
