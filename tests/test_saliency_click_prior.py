"""The saliency click prior's component labelling (torch, so the exported hub code needs no OpenCV) equals
OpenCV's and scipy's 8-connected labelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from hf_iis.models.signed_click.saliency_click_prior import click_components, click_prior, connected_components


def same_partition(ours: np.ndarray, reference: np.ndarray) -> bool:
    """Both label the same pixels as background (0) and group the others alike (a bijection between labels)."""
    pairs = set(zip(ours.ravel().tolist(), reference.ravel().tolist()))
    return ((ours == 0) == (reference == 0)).all() and len(pairs) == len(np.unique(ours)) == len(np.unique(reference))


def random_masks():
    rng = np.random.default_rng(0)
    for trial in range(120):
        h, w = (int(v) for v in rng.integers(1, 48, 2))
        noise = rng.random((h, w))
        if trial % 3 == 0:  # blobs with holes and thin bridges, as thresholded saliency maps have
            noise = ndimage.gaussian_filter(noise, rng.uniform(0.5, 3))
            yield noise > np.median(noise)
        else:  # salt and pepper at every density: many components, diagonal-only contacts
            yield noise < rng.random()
    spiral = np.zeros((41, 41), bool)  # one long thin component
    for i in range(0, 41, 4):
        spiral[i, :40] = True
        spiral[i:i + 4, 39 if (i // 4) % 2 == 0 else 0] = True
    yield spiral


@pytest.mark.parametrize("reference", ["cv2", "scipy"])
def test_connected_components_equal_the_libraries(reference):
    if reference == "cv2":
        cv2 = pytest.importorskip("cv2")
        label = lambda m: cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[1]  # noqa: E731
    else:
        label = lambda m: ndimage.label(m, structure=np.ones((3, 3)))[0]  # noqa: E731
    for mask in random_masks():
        ours = connected_components(torch.from_numpy(mask)[None])[0].numpy()
        assert same_partition(ours, label(mask)), mask.shape


def test_connected_components_batch_equals_one_by_one():
    masks = np.stack([m for m in random_masks() if m.shape == (47, 47)][:1] * 2 +
                     [np.random.default_rng(1).random((47, 47)) < 0.6])
    batch = connected_components(torch.from_numpy(masks)).numpy()
    for mask, labels in zip(masks, batch):
        assert (labels == connected_components(torch.from_numpy(mask)[None])[0].numpy()).all()
    assert connected_components(torch.zeros(1, 0, 5, dtype=torch.bool)).shape == (1, 0, 5)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        connected_components(torch.zeros(5, 5, dtype=torch.bool))


def test_click_prior_keeps_the_clicked_components():
    salient = np.zeros((20, 20), bool)
    salient[2:6, 2:6] = salient[10:15, 10:15] = salient[2:4, 15:18] = True
    points, labels = np.array([[3, 3], [12, 12]], float), np.array([1, -1])
    expected = np.zeros_like(salient)
    expected[2:6, 2:6] = True  # the positive click's component only
    assert (click_components(salient, points, labels) == expected).all()
    # a positive click off every salient region: the salient mask minus the negative click's component
    missed = click_components(salient, np.array([[0, 19], [12, 12]], float), labels)
    assert missed.sum() == 16 + 6 and not missed[12, 12]
    saliency = torch.from_numpy(salient.astype(np.float32))[None, None].repeat(3, 1, 1, 1)
    prior = click_prior(saliency, torch.tensor([[[3.0, 3.0], [12.0, 12.0]]] * 3), torch.tensor([[1, -1]] * 3), 20)
    assert prior.shape == (3, 1, 20, 20) and (prior[:, 0] == torch.from_numpy(click_components(
        salient, points, labels)).float()).all()
