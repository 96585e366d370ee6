"""TTA views are exact inverses; an exactly equivariant model gives the same answer with 1 or 8 views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_iis.inference.predictor import SignedClickPredictor
from hf_iis.models.signed_click.modeling_signed_click import SignedClickImageEmbeddings
from hf_iis.scaling.tta import D4_VIEWS, VIEW_ORDER, combine_views, resolve_views

view_names = st.sampled_from([v.name for v in VIEW_ORDER])


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from([v.name for v in D4_VIEWS]), size=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_d4_apply_then_invert_is_identity_on_maps(name, size, seed):
    view = {v.name: v for v in D4_VIEWS}[name]
    maps = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(view.invert_map(view.apply_image(maps), size), maps)


@settings(max_examples=100, deadline=None)
@given(name=view_names, x=st.floats(-0.5, 63.4), y=st.floats(-0.5, 63.4))
def test_apply_then_invert_is_identity_on_points(name, x, y):
    view = {v.name: v for v in VIEW_ORDER}[name]
    points = torch.tensor([[x, y]], dtype=torch.float64)
    back = view.invert_points(view.apply_points(points, 64), 64)
    assert torch.allclose(back, points, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from([v.name for v in D4_VIEWS]), col=st.integers(0, 9), row=st.integers(0, 9))
def test_points_follow_the_pixels(name, col, row):
    """The pixel marked at (x=col, y=row) lands where apply_points sends (col, row)."""
    view = {v.name: v for v in D4_VIEWS}[name]
    image = torch.zeros(1, 1, 10, 10)
    image[0, 0, row, col] = 1
    moved = view.apply_image(image)[0, 0]
    x, y = view.apply_points(torch.tensor([[float(col), float(row)]]), 10)[0].round().long().tolist()
    assert moved[y, x] == 1 and moved.sum() == 1


def test_rotations_match_torch_rot90():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    by_name = {v.name: v for v in D4_VIEWS}
    assert torch.equal(by_name["rot90"].apply_image(image), torch.rot90(image, 1, (-2, -1)))
    assert torch.equal(by_name["rot180"].apply_image(image), torch.rot90(image, 2, (-2, -1)))
    assert torch.equal(by_name["rot270"].apply_image(image), torch.rot90(image, 3, (-2, -1)))


def test_resolve_views_order_and_errors():
    assert [v.name for v in resolve_views(2)] == ["identity", "hflip"]
    assert len(resolve_views(8)) == 8 and {v.name for v in resolve_views(8)} == {v.name for v in D4_VIEWS}
    assert [v.name for v in resolve_views(["rot90", "scale0.75"])] == ["rot90", "scale0.75"]
    with pytest.raises(ValueError, match="between 1 and"):
        resolve_views(0)
    with pytest.raises(ValueError, match="unknown TTA view"):
        resolve_views(["spin"])


def test_combine_views_mean_and_spread():
    maps = torch.tensor([[[0.2]], [[0.6]]])
    mean, spread = combine_views(maps)
    assert mean.item() == pytest.approx(0.4) and spread.item() == pytest.approx(0.2)
    logit_mean, _ = combine_views(maps, "logit")
    expected = torch.sigmoid((torch.logit(torch.tensor(0.2)) + torch.logit(torch.tensor(0.6))) / 2)
    assert logit_mean.item() == pytest.approx(expected.item())


class _EquivariantModel(torch.nn.Module):
    """Pointwise in the image plus a radial function of the click: exactly D4-equivariant."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.config = type("Config", (), {"image_size": size})()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def encode_image(self, pixel_values):
        return SignedClickImageEmbeddings(features=pixel_values, low_level=pixel_values)

    def decode(self, embeddings, points, labels, prev_masks=None, image_index=None):
        pixels = embeddings.features.mean(1, keepdim=True)  # (B, 1, S, S)
        size = pixels.shape[-1]
        coords = torch.arange(size, dtype=torch.float32)
        d2 = (coords[None, None, :] - points[:, 0, 0, None, None]) ** 2 + (
            coords[None, :, None] - points[:, 0, 1, None, None]
        ) ** 2
        logits = 3.0 * pixels.expand(points.shape[0], -1, -1, -1)[:, 0] - d2 / 50.0 + 1.0
        return (logits * labels[:, :1, None].float())[:, None]


def test_equivariant_model_gives_same_result_for_tta_1_and_8(photo):
    predictor = SignedClickPredictor(_EquivariantModel(64))
    predictor.set_image(photo)
    clicks = [(300.0, 200.0, 1)]
    one = predictor.predict(clicks, tta=1).probabilities
    eight = predictor.predict(clicks, tta=8).probabilities
    assert np.abs(one - eight).max() < 1e-5
    assert eight.std() > 0.01  # a non-trivial map
