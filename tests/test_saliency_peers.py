"""The saliency baselines: the click-component rule on hand-checkable masks, the registry, and U²-Net-p on a real
image (skipped without the ONNX file or the onnx package)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from hf_iis.evaluation.saliency_peers import (
    SALIENCY_PEERS,
    component_mask,
    label_components,
    saliency_input,
    saliency_mask_from_map,
    selected_components,
)
from hf_iis.utils.clicker import Click

# Three components of a 6×9 mask: A (rows 0-1, cols 0-1), B (rows 0-2, cols 5-6) and C (rows 4-5, cols 2-7).
#   col 012345678
BASE = np.array([
    [1, 1, 0, 0, 0, 1, 1, 0, 0],
    [1, 1, 0, 0, 0, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 1, 1, 1, 1, 0],
    [0, 0, 1, 1, 1, 1, 1, 1, 0],
], dtype=bool)
A = np.zeros_like(BASE)
A[0:2, 0:2] = True
B = np.zeros_like(BASE)
B[0:3, 5:7] = True
C = np.zeros_like(BASE)
C[4:6, 2:8] = True


def pos(x: float, y: float) -> Click:
    return Click(float(x), float(y), 1)


def neg(x: float, y: float) -> Click:
    return Click(float(x), float(y), -1)


def test_the_parts_add_up():
    assert ((A | B | C) == BASE).all() and A.sum() + B.sum() + C.sum() == BASE.sum()
    assert label_components(BASE)[1] == 3


def test_no_click_is_the_whole_mask():
    assert (component_mask(BASE, []) == BASE).all()


def test_first_positive_click_keeps_its_component():
    assert (component_mask(BASE, [pos(0, 0)]) == A).all()
    assert (component_mask(BASE, [pos(6, 2)]) == B).all()
    assert (component_mask(BASE, [pos(3.4, 4.6)]) == C).all()  # rounded to (row 5, col 3)


def test_first_click_that_misses_keeps_the_whole_mask():
    assert (component_mask(BASE, [pos(8, 3)]) == BASE).all()


def test_later_positive_click_outside_adds_its_component():
    assert (component_mask(BASE, [pos(0, 0), pos(5, 1)]) == (A | B)).all()
    assert (component_mask(BASE, [pos(0, 0), pos(5, 1), pos(7, 5)]) == BASE).all()
    # a positive click inside the current mask, or on the background, changes nothing
    assert (component_mask(BASE, [pos(0, 0), pos(1, 1)]) == A).all()
    assert (component_mask(BASE, [pos(0, 0), pos(8, 0)]) == A).all()


def test_negative_click_inside_removes_its_component():
    assert (component_mask(BASE, [pos(8, 3), neg(6, 0)]) == (A | C)).all()  # miss: whole mask, then B removed
    assert not component_mask(BASE, [pos(0, 0), neg(1, 0)]).any()
    # a negative click outside the current mask changes nothing
    assert (component_mask(BASE, [pos(0, 0), neg(6, 0)]) == A).all()
    # a negative first click starts from the whole mask
    assert (component_mask(BASE, [neg(4, 4)]) == (A | B)).all()


def test_clicks_are_read_in_order():
    assert (component_mask(BASE, [pos(0, 0), pos(5, 0), neg(5, 2)]) == A).all()
    assert (component_mask(BASE, [pos(0, 0), neg(5, 0), pos(5, 2)]) == (A | B)).all()  # neg on unselected B: no-op
    assert (component_mask(BASE, [pos(8, 3), neg(5, 0), pos(6, 2)]) == BASE).all()  # B removed, then added back


def test_connectivity_decides_whether_diagonal_pixels_join():
    diag = np.eye(3, dtype=bool)
    assert (component_mask(diag, [pos(0, 0)], connectivity=8) == diag).all()
    only_first = np.zeros_like(diag)
    only_first[0, 0] = True
    assert (component_mask(diag, [pos(0, 0)], connectivity=4) == only_first).all()


def test_clicks_off_the_image_are_clamped_and_empty_masks_stay_empty():
    assert (component_mask(BASE, [pos(-3, -3)]) == A).all()
    empty = np.zeros((4, 4), bool)
    assert not component_mask(empty, [pos(1, 1), neg(2, 2)]).any()
    labels, n = label_components(BASE)
    assert selected_components(labels, n, [pos(0, 0), pos(5, 0)]) == {labels[0, 0], labels[0, 5]}


def test_mask_from_map_normalises_and_resizes():
    d0 = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)  # min-max: 0, 1/3, 2/3, 1
    mask = saliency_mask_from_map(d0, (2, 2))
    assert mask.tolist() == [[False, False], [True, True]]
    assert saliency_mask_from_map(d0, (20, 30)).shape == (20, 30)
    assert not saliency_mask_from_map(np.full((4, 4), 0.7, np.float32), (4, 4)).any()  # flat map: nothing


def test_net_input_is_320_square_and_normalised():
    rng = np.random.default_rng(0)
    x = saliency_input(rng.integers(0, 200, (37, 51, 3), dtype=np.uint8))
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    with pytest.raises(ValueError, match="RGB"):
        saliency_input(np.zeros((4, 4), np.uint8))


def test_registry_names():
    from hf_iis.evaluation.peers import PEERS

    names = {"u2netp_zero", "u2netp_component", "u2net_zero", "u2net_component"}
    assert set(SALIENCY_PEERS) == names and names <= set(PEERS)
    assert {"grabcut", "random_walker"} <= set(PEERS)


def _onnx_or_skip(variant: str):
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the onnx package is not installed (the training extra)")
    from hf_iis.backbones.u2net_weights import find_u2net_onnx

    try:
        return find_u2net_onnx(variant)
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.mark.parametrize("variant", ["u2netp", pytest.param("u2net", marks=pytest.mark.slow)])  # U²-Net: 176 MB
def test_saliency_peers_on_a_real_image(variant, data_root):
    """The first GrabCut image: the zero-click mask covers most of the object, the component at the center click
    is at least as good, and one forward serves both peers (the mask is cached per image)."""
    _onnx_or_skip(variant)
    from hf_iis.evaluation import iou, load_benchmark
    from hf_iis.evaluation.peers import make_peer
    from hf_iis.evaluation.protocols import run_noc
    from hf_iis.evaluation.saliency_peers import _MASKS

    inst = load_benchmark("GrabCut", data_root, limit=1)
    zero, comp = make_peer(f"{variant}_zero"), make_peer(f"{variant}_component")
    cached = len(_MASKS)
    zero_runs = run_noc(zero, inst, max_clicks=3, progress=False)
    comp_runs = run_noc(comp, inst, max_clicks=3, progress=False)
    assert len(_MASKS) <= cached + 1  # the second peer reused the first one's mask
    assert zero_runs[0].ious[0] > 0.8 and zero_runs[0].ious == [zero_runs[0].ious[0]] * 3  # clicks ignored
    assert comp_runs[0].ious[0] >= zero_runs[0].ious[0] - 1e-9
    zero.set_image(inst[0].image)
    prob = zero.predict([Click(0.0, 0.0, 1)], None)
    assert prob.shape == inst[0].gt.shape and prob.dtype == np.float32 and set(np.unique(prob)) <= {0.0, 1.0}
    assert iou(prob >= 0.5, inst[0].gt, inst[0].ignore) == pytest.approx(zero_runs[0].ious[0])


def test_object_centred_table_has_a_model_placeholder_until_a_model_row_exists():
    from tests.conftest import load_script

    script = load_script("object_centred_table")

    def row(kind, dataset, name=None, **metrics):
        return {"kind": kind, "dataset": dataset, "num_instances": 10, "settings": {"peer": name} if name else {},
                "model_path": "hf_iis/checkpoints/default", "scaling": "tta=1", "metrics": metrics}

    peers = [row("peer", "CamVid-regions", "u2netp_zero", **{"mIoU@1 center": 1.71, "NoC@90": 20.0, "NoF@90": 9,
                                                            "NoC instances": 4, "center instances": 10}),
             row("peer", "CamVid-regions", "grabcut", **{"mIoU@1 center": 30.0})]
    text = script.tables(peers)
    line = next(li for li in text.splitlines() if li.startswith("| CamVid-regions | 10 |"))
    assert "| 1.7 | – | – | – | 30.0 | model: see docs/results.md |" in line
    assert "| CamVid-regions | 4 of 10 | 20.00 (9) |" in text and "GrabCut |" not in text.replace("OpenCV GrabCut", "")
    text = script.tables(peers + [row("model", "CamVid-regions", **{"mIoU@1 center": 55.54})])
    assert "click model: default [tta=1]" in text and "| 30.0 | 55.5 |" in text
