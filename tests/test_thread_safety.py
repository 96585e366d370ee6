"""One pipeline object shared by two threads gives each call the serial result (teacher and student), for two images
of one size and of two sizes: the predictor's current image is shared state, taken in turns under its lock."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from transformers import pipeline

import hf_iis  # noqa: F401  (registers the task)

CALLS = 16


def _tiny_student(folder):
    import torch

    from hf_iis import SignedClickImageProcessor
    from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
    from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel

    torch.manual_seed(0)
    SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).eval().save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


def _images(same_size: bool):
    rng = np.random.default_rng(0)
    first = (rng.random((48, 72, 3)) * 255).astype(np.uint8)
    second = (rng.random((48, 72, 3) if same_size else (80, 40, 3)) * 255).astype(np.uint8)
    return [first, second]


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tmp_path_factory):
    return {"teacher": tiny_checkpoint, "student": _tiny_student(tmp_path_factory.mktemp("student"))}


@pytest.mark.parametrize("kind", ["teacher", "student"])
@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "different-sizes"])
def test_two_threads_on_one_pipeline_get_the_serial_results(checkpoints, kind, same_size):
    seg = pipeline("interactive-segmentation", model=str(checkpoints[kind]))
    images = _images(same_size)
    clicks = [[(30, 20, 1), (5, 5, -1)], [(20, 30, 1)]]
    options = {"tta": 2, "triangulation": 2}
    serial = [seg(image, clicks=c, **options)["probabilities"] for image, c in zip(images, clicks)]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so that unguarded state would mix
    try:
        results: dict[int, list] = {0: [], 1: []}
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def work(index: int) -> None:
            try:
                start.wait()
                for _ in range(CALLS):
                    results[index].append(seg(images[index], clicks=clicks[index], **options)["probabilities"])
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    for index in (0, 1):
        assert len(results[index]) == CALLS
        for result in results[index]:
            assert result.shape == serial[index].shape
            assert np.array_equal(result, serial[index])
