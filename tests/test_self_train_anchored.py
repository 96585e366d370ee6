"""Self-training on the pseudo-labels' own clicks (`--anchored`) with labelled replay (`--replay`): the click region is
the disk around the click inside the answer (checked by hand); each label is a corpus row [answer, click region]; the
decoder training clicks only inside the region, positive, and keeps the replay cache's usual pairs; a replay cache
of another model, or a folder that is no cache, is a one-line refusal before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hf_iis.training.self_training_photos import LabelFilter, click_region, disk_area
from tests.conftest import load_script
from tests.test_self_train import FAST, _error, _photos, _teacher


def test_click_region_is_the_disk_around_the_click_inside_the_answer():
    mask = np.ones((10, 10), dtype=bool)
    region = click_region(mask, (5, 5), radius=0.2)  # r = 0.2 x 10 = 2 pixels
    # the lattice points with dx^2 + dy^2 <= 4: 1 + 4 (axis, 1) + 4 (axis, 2) + 4 (diagonal, 1) = 13
    assert region.sum() == 13 and region[5, 5] and region[5, 7] and region[3, 5] and not region[7, 7]
    mask[:, 6:] = False  # the answer stops right of the click: the region stops with it
    region = click_region(mask, (5, 5), radius=0.2)
    assert region.sum() == 13 - 4 and not region[:, 6:].any()
    assert not click_region(np.zeros((10, 10), dtype=bool), (5, 5), radius=0.2).any()


def test_select_indices_keeps_the_order_and_reasons_of_select():
    a = np.zeros((10, 10), dtype=bool)
    a[:5] = True
    b = a.copy()  # a near copy of a
    c = np.zeros((10, 10), dtype=bool)
    c[6:, :3] = True
    answers = [(a, 0.9), (b, 0.95), (c, 0.5), (c, 0.8)]
    kept, counts = LabelFilter(min_score=0.75).select_indices(answers)
    assert kept == [0, 3] and counts == {"kept": 2, "low_score": 1, "area": 0, "duplicate": 1}
    masks, _ = LabelFilter(min_score=0.75).select(answers)
    assert [m is answers[i][0] for m, i in zip(masks, kept)] == [True, True]


def _labelled_cache(root, teacher, photos):
    """The replay: an embedding cache of the teacher over a labelled corpus (the photos' bright rectangles)."""
    from PIL import Image

    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
    from hf_iis.models.signed_click.modeling_signed_click import SignedClickModel
    from hf_iis.training.augment import InputFormat
    from hf_iis.training.config import AugmentParams
    from hf_iis.training.data import load_split
    from hf_iis.training.embedding_cache import CacheInfo, build_embedding_cache
    from hf_iis.training.self_training_photos import read_photo, write_corpus

    rows = []
    for k, path in enumerate(sorted(photos.glob("photo*.png"))):
        image = np.asarray(Image.open(path))
        rows.append((read_photo(path, k), [(image[..., 0] > 150)]))  # the rectangle: red 200 on noise below 60
    write_corpus(rows, root / "labelled")
    model = SignedClickModel.from_pretrained(str(teacher)).eval()
    info = CacheInfo.for_run(teacher, model.config, root / "labelled", "train", 1, 0, AugmentParams())
    fmt = InputFormat.of_processor(SignedClickImageProcessor.from_pretrained(str(teacher)))
    build_embedding_cache(model, load_split(str(root / "labelled"), "train"), root / "replay", info, fmt)
    return root / "replay"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An anchored run with a labelled replay cache of the same teacher."""
    root = tmp_path_factory.mktemp("anchored")
    teacher, photos, script = _teacher(root / "teacher"), _photos(root / "photos"), load_script("self_train")
    replay = _labelled_cache(root, teacher, photos)
    base = ["--photos", str(photos), "--model", str(teacher), *FAST]
    argv = [*base, "--out", str(root / "anchored"), "--anchored", "--replay", str(replay)]
    assert script.main(argv) == 0
    return {"root": root, "teacher": teacher, "photos": photos, "script": script, "base": base, "replay": replay}


def test_anchored_corpus_holds_each_label_with_its_click_region(runs):
    from hf_iis.data.hf_datasets import load_corpus
    from hf_iis.data.rows import decode_row

    out = runs["root"] / "anchored"
    record = json.loads((out / "self_train_info.json").read_text())
    labels = record["stages"]["pseudo_labels"]
    assert record["settings"]["anchored"] is True
    assert record["settings"]["replay"] == [str(runs["replay"].resolve())]
    assert sum(labels["labels"].values()) == labels["clicks"] == 6 and "click_outside" in labels["labels"]
    corpus = load_corpus(out / "corpus", "train")
    assert len(corpus) == labels["corpus_rows"] == labels["labels"]["kept"] >= 1
    for row in corpus:
        _, masks, _, _ = decode_row(row)
        answer, region = masks
        assert row["source"] == "self_train_anchored" and not (region & ~answer).any()
        assert region.sum() >= 0.5 * disk_area(region)  # the answer covers at least half its click's disk
    assert json.loads((out / "cache" / "cache_info.json").read_text())["anchored"] is True


def test_anchored_views_get_one_positive_click_and_replay_keeps_its_pairs(runs):
    from hf_iis.training.decoder_training import CachedBatches, DecoderRunConfig

    anchored, plain = runs["root"] / "anchored" / "cache", runs["replay"]
    cfg = DecoderRunConfig(batch_size=6, shards_in_memory=8)

    def labels(caches):
        batches = CachedBatches(caches, 64, cfg, np.random.default_rng(0))
        batch = batches.next()
        points = batch["points"][:, 0].long()
        targets = batch["target_masks"][:, 0]
        inside = targets[range(len(points)), points[:, 1], points[:, 0]]
        assert (inside == (batch["labels"][:, 0] == 1)).all()  # positives in the answer, negatives outside it
        return batch["labels"][:, 0].tolist(), batches.anchored

    only, flags = labels([anchored])
    assert only == [1] * 6 and flags.all()  # one positive per view: no question the teacher did not answer
    replayed, flags = labels([plain])
    assert replayed.count(-1) >= 1 and not flags.any()  # the replay keeps the seed's positive + negative pairs
    both, flags = labels([anchored, plain])
    assert flags.any() and not flags.all() and set(both) <= {1, -1}


def test_anchored_positives_lie_in_the_click_region():
    """By hand on a two-mask anchored view: every drawn click is in the region (the answer's other pixels never)."""
    from hf_iis.training.decoder_training import CachedBatches, DecoderRunConfig

    batches = CachedBatches.__new__(CachedBatches)
    answer = np.zeros((8, 8), dtype=bool)
    answer[1:7, 1:7] = True
    region = np.zeros((8, 8), dtype=bool)
    region[2, 2] = True
    batches.cfg, batches.rng = DecoderRunConfig(batch_size=4), np.random.default_rng(1)
    batches.anchored = np.array([True])
    batches.order = [0, 0, 0, 0]
    batches.views = _one_view(answer, region)
    batch = batches.next()
    assert batch["points"][:, 0].tolist() == [[2.0, 2.0]] * 4 and batch["labels"].flatten().tolist() == [1] * 4
    assert bool((batch["target_masks"][:, 0] == torch.from_numpy(answer)).all())


def _one_view(answer, region):
    from hf_iis.models.signed_click.embeddings import SignedClickImageEmbeddings
    from hf_iis.training.embedding_cache import CachedViews

    embeddings = SignedClickImageEmbeddings(features=torch.zeros(1, 2, 1, 1), low_level=torch.zeros(1, 2, 2, 2),
                                            fine=torch.zeros(1, 2, 4, 4), saliency=torch.zeros(1, 1, 4, 4))
    return CachedViews(embeddings, [torch.from_numpy(np.stack([answer, region]))], torch.ones(1, 8, 8, dtype=bool),
                       [1])


@pytest.mark.parametrize("case, message", [
    ("not_a_cache", "not an embedding cache"),
    ("other_teacher", "built from another model"),
])
def test_a_bad_replay_is_one_line_before_any_output(runs, tmp_path, capsys, case, message):
    replay = tmp_path / "replay"
    replay.mkdir()
    if case == "other_teacher":
        (replay / "cache_info.json").write_text(json.dumps({"teacher_sha256": "0" * 64}))
        (replay / "shard-00000.safetensors").write_bytes(b"")
    out = tmp_path / "out"
    assert runs["script"].main([*runs["base"], "--out", str(out), "--replay", str(replay)]) == 2
    assert message in _error(capsys)
    assert not out.exists()


def test_no_anchored_writes_one_row_per_photo_and_a_plain_cache(runs):
    from hf_iis.data.hf_datasets import load_corpus

    out = runs["root"] / "plain"
    assert runs["script"].main([*runs["base"], "--out", str(out), "--no-anchored"]) == 0
    record = json.loads((out / "self_train_info.json").read_text())
    labels = record["stages"]["pseudo_labels"]["labels"]
    assert record["settings"]["anchored"] is False and "click_outside" not in labels
    corpus = load_corpus(out / "corpus", "train")
    assert len(corpus) == 2 and set(corpus["source"]) == {"self_train"}  # the 2 readable photos, their answers
    assert json.loads((out / "cache" / "cache_info.json").read_text())["anchored"] is False
    # the same folder rerun with the default (anchored) is another run: refused naming both
    assert runs["script"].main([*runs["base"], "--out", str(out)]) == 2
