"""The triangulation formula on cases small enough to check by hand, and on an oracle model."""

from __future__ import annotations

import pytest
import torch

from hf_iis.scaling.triangulation import sample_auxiliary_pixels, triangulate


def test_hand_computed_two_pixel_case():
    # Two auxiliary pixels with P(y|x) = 0.8 and 0.25 and weights 1/2 each; one pixel z.
    direct = torch.tensor([[0.8, 0.25]])
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    weights = torch.tensor([0.5, 0.5])
    positive = torch.tensor([[[0.9, 0.1]], [[0.6, 0.3]]])  # σ f+(y_i)(z)
    negative = torch.tensor([[[0.2, 0.7]], [[0.4, 0.5]]])  # σ f−(y_i)(z)
    estimate, _ = triangulate(direct, points, weights, positive, negative)
    # z=0: 0.5*(0.9*0.8 + 0.2*0.2) + 0.5*(0.6*0.25 + 0.4*0.75) = 0.5*0.76 + 0.5*0.45 = 0.605
    # z=1: 0.5*(0.1*0.8 + 0.7*0.2) + 0.5*(0.3*0.25 + 0.5*0.75) = 0.5*0.22 + 0.5*0.45 = 0.335
    assert estimate[0, 0].item() == pytest.approx(0.605)
    assert estimate[0, 1].item() == pytest.approx(0.335)


def _oracle(labels: torch.Tensor, points: torch.Tensor):
    """P(z | y ∈ m) = [L(z) = L(y)], P(z | y ∉ m) = [L(z) ≠ L(y)] for a two-region label map."""
    at = labels[points[:, 1].long(), points[:, 0].long()]
    same = (labels[None] == at[:, None, None]).float()
    return same, 1.0 - same


@pytest.mark.parametrize("sampling", ["uniform", "stratified", "foreground"])
def test_oracle_model_triangulates_to_the_true_mask(sampling):
    labels = torch.zeros(12, 16, dtype=torch.long)
    labels[3:8, 4:11] = 1  # the object
    x = (6, 5)  # a click inside the object
    truth = (labels == labels[x[1], x[0]]).float()
    direct = truth * 0.7 + 0.15  # an imperfect but right-sided direct estimate
    valid = torch.ones_like(labels, dtype=torch.bool)
    points, weights = sample_auxiliary_pixels(direct, valid, 16, sampling, torch.Generator().manual_seed(0))
    positive, negative = _oracle(labels, points)
    estimate, _ = triangulate(truth, points, weights, positive, negative)
    assert torch.allclose(estimate, truth, atol=1e-6)


def test_weights_sum_to_one_and_points_stay_valid():
    direct = torch.rand(9, 9, generator=torch.Generator().manual_seed(1))
    valid = torch.zeros(9, 9, dtype=torch.bool)
    valid[:6, :7] = True
    for sampling in ("uniform", "stratified", "foreground"):
        points, weights = sample_auxiliary_pixels(direct, valid, 10, sampling, torch.Generator().manual_seed(2))
        assert weights.sum().item() == pytest.approx(1.0)
        assert valid[points[:, 1].long(), points[:, 0].long()].all()


def test_foreground_sampling_stays_in_the_estimate_and_falls_back_when_it_is_empty():
    direct = torch.zeros(6, 6)
    direct[1:3, 2:5] = 0.8  # 6 foreground pixels
    valid = torch.ones(6, 6, dtype=torch.bool)
    points, weights = sample_auxiliary_pixels(direct, valid, 5, "foreground", torch.Generator().manual_seed(4))
    assert (direct[points[:, 1].long(), points[:, 0].long()] >= 0.5).all()
    assert torch.allclose(weights, torch.full((5,), 0.2))
    points, weights = sample_auxiliary_pixels(torch.zeros(6, 6), valid, 7, "foreground", torch.Generator())
    assert points.shape == (7, 2) and torch.allclose(weights, torch.full((7,), 1 / 7))  # no foreground: uniform


def test_uniform_and_stratified_agree_in_expectation():
    gen = torch.Generator().manual_seed(3)
    h, w, k = 5, 6, 4
    direct = torch.rand(h, w, generator=gen)
    direct[0, :] = 0.9  # a foreground stratum of 6 of 30 pixels...
    direct[1:, :] = direct[1:, :] * 0.4  # ...and a background stratum of 24
    positive = torch.rand(h * w, h, w, generator=gen)
    negative = torch.rand(h * w, h, w, generator=gen)
    valid = torch.ones(h, w, dtype=torch.bool)
    # The exact uniform mean over all 30 auxiliary pixels.
    p_y = direct.reshape(-1)
    exact = (positive * p_y[:, None, None] + negative * (1 - p_y)[:, None, None]).mean(0)
    for sampling in ("uniform", "stratified"):
        total = torch.zeros(h, w)
        draws = 3000
        for _ in range(draws):
            points, weights = sample_auxiliary_pixels(direct, valid, k, sampling, gen)
            idx = (points[:, 1] * w + points[:, 0]).long()
            estimate, _ = triangulate(direct, points, weights, positive[idx], negative[idx])
            total += estimate
        assert torch.allclose(total / draws, exact, atol=0.02), sampling


def test_bad_arguments():
    direct, valid = torch.rand(4, 4), torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="unknown triangulation sampling"):
        sample_auxiliary_pixels(direct, valid, 4, "importance")
    with pytest.raises(ValueError, match="at least 1"):
        sample_auxiliary_pixels(direct, valid, 0)


def test_running_sums_over_chunks_equal_the_one_shot_formula():
    """Folding the K auxiliary pixels in chunks (what the predictor does) gives the same estimate and
    spread as the formula written out."""
    from hf_iis.scaling.triangulation import RunningTriangulation

    g = torch.Generator().manual_seed(0)
    direct = torch.rand(6, 5, generator=g)
    points = torch.tensor([[0, 0], [4, 5], [2, 3], [1, 1], [3, 2]], dtype=torch.float32)  # (x, y) in a 5-wide map
    weights = torch.softmax(torch.rand(5, generator=g), 0)
    pos, neg = torch.rand(5, 6, 5, generator=g), torch.rand(5, 6, 5, generator=g)
    p_y = torch.stack([direct[int(y), int(x)] for x, y in points.tolist()])
    terms = pos * p_y[:, None, None] + neg * (1 - p_y)[:, None, None]
    estimate = (weights[:, None, None] * terms).sum(0)
    spread = (weights[:, None, None] * (terms - estimate) ** 2).sum(0).sqrt()  # the weighted std, written out
    whole = (estimate, spread)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, triangulate(direct, points, weights, pos, neg)))
    running = RunningTriangulation(direct)
    for start in (0, 2, 4):
        sl = slice(start, start + 2)
        running.add(points[sl], weights[sl], pos[sl], neg[sl])
    for a, b in zip(whole, running.result()):
        assert torch.allclose(a, b, atol=1e-6)
