"""Ending a run, all ranks together, without the gloo deadlock at exit."""

from __future__ import annotations

import time


def finish_run(accelerator, settle_seconds: float = 0.5) -> None:
    """Barrier, then stop the trackers and destroy the process group (accelerate's `end_training`, which has no
    barrier of its own).

    The pause after the barrier avoids a deadlock at exit seen in CI (py-spy: the summary printed, then one rank hung
    for good): gloo's worker thread frees a finished collective's work after `wait()` has returned, and freeing it
    drops Python tensors, so it needs the GIL; if the main thread meanwhile deallocates DDP's Reducer, the last owner
    of the ProcessGroupGloo, that destructor joins the worker while holding the GIL. Sleeping releases the GIL, so
    the worker finishes and sits idle before anything is torn down. Single-process runs skip both.
    """
    if accelerator.num_processes > 1:
        accelerator.wait_for_everyone()
        time.sleep(settle_seconds)
    accelerator.end_training()
