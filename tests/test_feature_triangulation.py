"""Feature-space triangulation equals a brute-force double loop over (y, z), cached or in blocks, subsampled or not,
and agrees with the teacher's triangulation formula fed every pixel with its exact weight."""

from __future__ import annotations

import math

import pytest
import torch

from hf_iis.models.student.configuration_signed_click_student import SignedClickStudentConfig
from hf_iis.models.student.feature_triangulation import FEATURE_SAMPLINGS, FeatureTriangulator, triangulation_weights
from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel, StudentImageEmbeddings
from hf_iis.scaling.triangulation import triangulate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = SignedClickStudentModel(SignedClickStudentConfig.from_preset("tiny")).eval()
    with torch.no_grad():  # a head that is not the identity, so a transposed A or B would show
        model.head.positive.weight.copy_(torch.randn(8, 8))
        model.head.negative.weight.copy_(torch.randn(8, 8))
        model.head.positive_bias.fill_(0.3)
        model.head.negative_bias.fill_(-0.2)
    return model


@pytest.fixture(scope="module")
def embeddings():
    torch.manual_seed(1)
    return StudentImageEmbeddings(embeddings=torch.randn(1, 8, 3, 4), prior_logits=torch.randn(1, 1, 3, 4))


def brute_force(model, emb, valid, direct, sampling, aux):
    """Σ_y w(y) [σf−(y)(z)(1 − p(y)) + σf+(y)(z) p(y)] / Σ_y w(y), one (y, z) pair at a time, from the head's
    parameters (not from pairwise_logits)."""
    phi = emb.embeddings[0].reshape(8, -1).T  # (N, D)
    u = emb.prior_logits.reshape(-1)
    a, b = model.head.positive.weight, model.head.negative.weight
    bp, bn = float(model.head.positive_bias), float(model.head.negative_bias)
    scale = 1 / math.sqrt(8)
    p = direct.reshape(-1)
    ys = [y for y in aux if valid.reshape(-1)[y]]
    if sampling in ("uniform", "stratified"):
        w = {y: 1.0 for y in ys}
    elif sampling == "foreground":
        w = {y: float(p[y] >= 0.5) for y in ys}
    else:
        w = {y: float(p[y]) for y in ys}
    if sum(w.values()) == 0:
        w = {y: 1.0 for y in ys}
    out = torch.zeros(phi.shape[0])
    for z in range(phi.shape[0]):
        total = 0.0
        for y in ys:
            pos = torch.sigmoid((a @ phi[y]) @ phi[z] * scale + bp)
            neg = torch.sigmoid((b @ phi[y]) @ phi[z] * scale + u[z] + bn)
            total += w[y] * (neg * (1 - p[y]) + pos * p[y])
        out[z] = total / sum(w.values())
    return out.reshape(direct.shape)


@pytest.mark.parametrize("sampling", FEATURE_SAMPLINGS)
@pytest.mark.parametrize("cached", [True, False])
def test_exact_triangulation_equals_brute_force(model, embeddings, sampling, cached):
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[2, 3] = False  # a padding pixel: never an auxiliary pixel
    torch.manual_seed(2)
    direct = torch.rand(2, 3, 4)
    triangulator = FeatureTriangulator(model, embeddings, valid, step=1, max_cache_bytes=2**30 if cached else 0,
                                       block_bytes=1)  # uncached: one row of F± at a time
    assert triangulator.cached == cached
    with torch.no_grad():
        estimate, spread = triangulator(direct, sampling, return_spread=True)
        for i in range(2):
            expected = brute_force(model, embeddings, valid, direct[i], sampling, range(12))
            assert torch.allclose(estimate[i], expected, atol=1e-5)
    assert spread.shape == (2, 3, 4) and bool((spread >= 0).all())


def test_subsampled_auxiliary_grid(model, embeddings):
    valid = torch.ones(3, 4, dtype=torch.bool)
    direct = torch.rand(1, 3, 4)
    triangulator = FeatureTriangulator(model, embeddings, valid, step=2)
    assert triangulator.aux_index.tolist() == [5, 7]  # rows 1, columns 1 and 3: step // 2 onwards
    with torch.no_grad():
        estimate, _ = triangulator(direct, "uniform")
        assert torch.allclose(estimate[0], brute_force(model, embeddings, valid, direct[0], "uniform", [5, 7]),
                              atol=1e-5)


def test_matches_the_teachers_formula_with_every_pixel_and_exact_weights(model, embeddings):
    valid = torch.ones(3, 4, dtype=torch.bool)
    direct = torch.rand(1, 3, 4)
    with torch.no_grad():
        estimate, spread = FeatureTriangulator(model, embeddings, valid)(direct, "foreground", return_spread=True)
        everything = torch.arange(12)
        positive = torch.sigmoid(model.pairwise_logits(embeddings, everything, everything, 1)).reshape(12, 3, 4)
        negative = torch.sigmoid(model.pairwise_logits(embeddings, everything, everything, -1)).reshape(12, 3, 4)
    points = torch.stack([everything % 4, everything // 4], dim=1).float()
    weights = triangulation_weights(direct.reshape(1, -1), valid.reshape(-1), "foreground")[0]
    expected, expected_spread = triangulate(direct[0], points, weights, positive, negative)
    assert torch.allclose(estimate[0], expected, atol=1e-5)
    assert torch.allclose(spread[0], expected_spread, atol=1e-4)


def test_weights_and_bad_input():
    p = torch.tensor([[0.9, 0.1, 0.6, 0.2]])
    valid = torch.tensor([True, True, False, True])
    assert torch.allclose(triangulation_weights(p, valid, "uniform"), torch.tensor([[1 / 3, 1 / 3, 0.0, 1 / 3]]))
    assert triangulation_weights(p, valid, "foreground").tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert torch.allclose(triangulation_weights(p, valid, "soft"), torch.tensor([[0.75, 1 / 12, 0.0, 1 / 6]]))
    none_in = triangulation_weights(torch.zeros(1, 4), valid, "foreground")
    assert torch.allclose(none_in, triangulation_weights(p, valid, "uniform"))
    with pytest.raises(ValueError, match="unknown triangulation sampling"):
        triangulation_weights(p, valid, "sideways")
    with pytest.raises(ValueError, match="no valid auxiliary pixel"):
        triangulation_weights(p, torch.zeros(4, dtype=torch.bool), "uniform")
