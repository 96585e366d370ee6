"""Zero-shot proposals from the feature space: a known partition comes back region by region, scored by the
proposal protocol; scripts/evaluate_student.py puts them next to click sampling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import hf_iis
from hf_iis.data.sample import Sample
from hf_iis.evaluation.feature_proposals import feature_proposals, run_feature_proposals
from hf_iis.inference.predictors import predictor_for
from hf_iis.models.student.modeling_signed_click_student import SignedClickStudentModel, StudentImageEmbeddings
from hf_iis.training.toy import write_corpus
from tests.conftest import load_script

GRID = np.zeros((16, 16), dtype=int)  # the 16 x 16 grid of a 64 px input: three regions of different sizes
GRID[:, 10:] = 1
GRID[11:, :10] = 2


@pytest.fixture(scope="module")
def partition_predictor():
    """A tiny student whose embedding of the (64 x 64) image is set to α·onehot(region): f+ is block-diagonal."""
    torch.manual_seed(0)
    model = SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny")).eval()
    alpha, d = 4.0, 8
    with torch.no_grad():
        model.head.positive_bias.fill_(-alpha**2 / (2 * math.sqrt(d)))
    predictor = predictor_for(model)
    image = np.zeros((64, 64, 3), np.uint8)
    predictor.set_image(image)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(GRID), d).permute(2, 0, 1).float()[None]
    predictor._embeddings["identity"] = StudentImageEmbeddings(alpha * onehot, torch.zeros(1, 1, 16, 16))
    return predictor, image


def region_masks() -> list[np.ndarray]:
    full = np.kron(GRID, np.ones((4, 4), dtype=int))
    return [full == k for k in range(3)]


def test_a_known_partition_comes_back_region_by_region(partition_predictor):
    predictor, image = partition_predictor
    proposals = feature_proposals(predictor, image)
    assert len(proposals) == 3
    for proposal in proposals:
        best = max(float((proposal.mask & gt).sum() / (proposal.mask | gt).sum()) for gt in region_masks())
        assert best > 0.99  # bilinear logits: a pixel may differ where three regions meet
        x, y = (int(v) for v in proposal.point)
        assert proposal.mask[y, x]  # the seed pixel lies in its own mask
    assert [p.score for p in proposals] == sorted((p.score for p in proposals), reverse=True)


def test_recall_is_complete_on_that_partition(partition_predictor):
    predictor, image = partition_predictor
    sample = Sample(id="synthetic", image=image, masks=region_masks(), ignore=None, source="synthetic")
    (run,) = run_feature_proposals(predictor, [sample], max_proposals=10, progress=False)
    assert run.num_gt == 3 and run.num_proposals == 3 and run.headline > 0.99
    assert len(run.curve) == 10 and run.curve[-1] == run.headline


def test_evaluate_student_script(tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3):
        image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        halves = [np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint8)]
        halves[0][:, :32], halves[1][:, 32:] = 255, 255
        rows.append({"image": Image.fromarray(image), "masks": [Image.fromarray(m) for m in halves], "ignore": None,
                     "id": f"v{i}", "source": "synthetic"})
    corpus = write_corpus(tmp_path / "corpus", {"train": rows[:1], "validation": rows})
    torch.manual_seed(0)
    student = tmp_path / "student"
    SignedClickStudentModel(hf_iis.SignedClickStudentConfig.from_preset("tiny")).save_pretrained(student)
    hf_iis.SignedClickImageProcessor(size=64).save_pretrained(student)
    out = tmp_path / "eval"
    argv = ["--student", str(student), "--teacher", str(tiny_checkpoint), "--corpus", str(corpus), "--limit", "2",
            "--out", str(out), "--no-progress"]
    assert load_script("evaluate_student").main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["model"] for r in results["proposals"]]
    assert names == ["teacher, click sampling", "student, click sampling", "student, feature partition"]
    assert all(r["images"] == 2 and 0 <= r["AR@#gt"] <= 100 for r in results["proposals"])
    assert (out / "table.md").is_file() and (out / "plots" / "proposals_ar.png").is_file()
    assert load_script("evaluate_student").main(["--student", str(tiny_checkpoint), "--corpus", str(corpus)]) == 2
