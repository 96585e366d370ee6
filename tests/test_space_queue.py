"""The Space's events that change a visitor's session are queued, one at a time and in order, and a click made while
a prediction runs is queued, not dropped (the browser test `test_clicks_made_while_a_prediction_runs_are_all_applied_
in_order` drives the same through chromium)."""

from __future__ import annotations

import pytest
from test_space_handlers import DiskSegmenter

from hf_iis import space


@pytest.fixture(scope="module")
def events() -> dict:
    demo = space.build_demo(segmenter=DiskSegmenter())
    return {fn.name: fn for fn in demo.fns.values()}


def test_session_events_share_one_queue_group_of_one(events):
    for name in ("load", "select", "rerun", "undo", "reset", "choose"):
        assert events[name].concurrency_id == space.ui.SESSION_QUEUE, name
        assert events[name].concurrency_limit == 1, name


def test_clicks_undo_and_reset_are_queued_not_dropped_while_one_runs(events):
    # Gradio's default "once" ignores an event that comes while the previous one of its kind runs
    for name in ("select", "undo", "reset", "choose"):
        assert events[name].trigger_mode == "multiple", name


def test_no_progress_overlay_covers_the_canvas(events):
    # the "full" progress overlay lies over the output images, the canvas included, and swallows clicks on it
    for name in ("select", "rerun", "undo", "reset", "choose"):
        assert events[name].show_progress == "minimal", name


def test_a_pick_reaches_the_handler_unchecked_against_the_current_choices(events):
    # Gradio's radio preprocessing refuses a value not among the current choices: a pick made on the previous
    # click's list must reach `Handlers.choose`, which says to pick again
    assert events["choose"].preprocess is False
