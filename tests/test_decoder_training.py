"""The decoder trained from cached frozen embeddings: the cache (views, resume, refusal of another model or corpus),
the run (legs equal one run, refusal of other settings or another cache) and the script's one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from hf_iis import SignedClickConfig, SignedClickImageProcessor, SignedClickModel
from hf_iis.training.embedding_cache import (
    CacheInfo,
    check_cache_info,
    list_shards,
    load_shards,
)
from hf_iis.training.toy import write_corpus
from tests.conftest import load_script, perturbed_copy, tiny_saliency_model


def _synthetic_rows(n: int = 4) -> list[dict]:
    """Images with a bright rectangle (the object) holding a smaller square (a part): two nested masks each."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        image = (rng.random((48, 64, 3)) * 60).astype(np.uint8)
        obj = np.zeros((48, 64), bool)
        obj[8 + k:40, 10:50 - k] = True
        part = np.zeros_like(obj)
        part[12 + k:24, 14:30] = True
        image[obj] = (200, 180, 40)
        image[part] = (40, 80, 220)
        rows.append({"image": Image.fromarray(image), "masks": [Image.fromarray(obj.astype(np.uint8) * 255),
                                                                Image.fromarray(part.astype(np.uint8) * 255)],
                     "ignore": None, "id": f"syn{k}", "source": "synthetic"})
    return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder")
    corpus = write_corpus(root / "corpus", {"train": _synthetic_rows(4), "validation": _synthetic_rows(1)})
    teacher = root / "teacher"
    tiny_saliency_model().save_pretrained(teacher)
    SignedClickImageProcessor(size=64).save_pretrained(teacher)
    cache = root / "cache"
    script = load_script("train_decoder")
    assert script.main(["cache", "--teacher", str(teacher), "--corpus", str(corpus), "--out", str(cache),
                        "--views", "2", "--images-per-shard", "2", "--threads", "1"]) == 0
    return {"root": root, "corpus": corpus, "teacher": teacher, "cache": cache, "script": script}


def test_cache_holds_every_view_with_its_masks(setup):
    shards = list_shards(setup["cache"])
    assert len(shards) == 2  # 4 images, 2 per shard
    views = load_shards(shards, 64)
    assert len(views) == 8  # 4 images x 2 views
    assert views.embeddings.features.dtype == torch.float16 and views.embeddings.saliency.shape == (8, 1, 32, 32)
    assert all(m.shape[1:] == (64, 64) and 1 <= m.shape[0] <= 2 for m in views.masks)
    plain = views.masks[0]  # view 0 of the first image: no augmentation, the object as the corpus has it
    assert plain.dtype == torch.bool and plain.any() and bool(views.valid[0].any())
    info = json.loads((setup["cache"] / "cache_info.json").read_text())
    assert info["views_per_image"] == 2 and info["image_size"] == 64 and len(info["teacher_sha256"]) == 64


def test_cache_build_resumes_without_rewriting_shards(setup, capsys):
    before = {p: p.stat().st_mtime_ns for p in list_shards(setup["cache"])}
    assert setup["script"].main(["cache", "--teacher", str(setup["teacher"]), "--corpus", str(setup["corpus"]),
                                 "--out", str(setup["cache"]), "--views", "2", "--images-per-shard", "2",
                                 "--threads", "1"]) == 0
    assert "wrote 0 new shard(s)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in list_shards(setup["cache"])} == before


def test_a_cache_of_other_settings_is_refused_naming_the_file_and_key(setup, capsys):
    config = SignedClickConfig.from_pretrained(setup["teacher"])
    other = CacheInfo.for_run(setup["teacher"], config, setup["corpus"], "train", 3, 0,
                              __import__("hf_iis.training.config", fromlist=["AugmentParams"]).AugmentParams())
    with pytest.raises(ValueError, match=r"cache_info.json: views_per_image is 2, expected 3"):
        check_cache_info(setup["cache"], other)
    code = setup["script"].main(["cache", "--teacher", str(setup["teacher"]), "--corpus", str(setup["corpus"]),
                                 "--out", str(setup["cache"]), "--views", "3", "--images-per-shard", "2"])
    err = _error_lines(capsys)
    assert code == 2 and len(err) == 1 and "views_per_image is 2, expected 3" in err[0]


def _error_lines(capsys) -> list[str]:
    """stderr's lines other than transformers' weight-loading progress bar."""
    return [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("Loading weights")]


def _train(setup, out, *overrides):
    return setup["script"].main(["train", "--config", "configs/decoder_multimask.yaml", "--no-progress",
                                 "--set", f"teacher={setup['teacher']}", "--set", f"cache={setup['cache']}",
                                 "--set", f"output_dir={out}", "--set", "batch_size=3", "--set", "max_steps=4",
                                 "--set", "warmup_steps=1", "--set", "shards_in_memory=1", "--set", "log_every=1",
                                 "--set", "num_threads=1", "--set", "corrective_prob=0.5", *overrides])


def test_two_legs_equal_one_run_and_only_the_decoder_moves(setup):
    one, legs = setup["root"] / "one", setup["root"] / "legs"
    assert _train(setup, one) == 0
    assert _train(setup, legs, "--set", "stop_at_step=2") == 0
    assert json.loads((legs / "state" / "run.json").read_text())["step"] == 2
    assert _train(setup, legs) == 0
    a, b = load_file(str(one / "final" / "model.safetensors")), load_file(str(legs / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    teacher = load_file(str(setup["teacher"] / "model.safetensors"))
    moved = [k for k in teacher if not torch.equal(teacher[k], a[k])]
    assert moved and all(k.startswith("decoder.") for k in moved)
    grown = SignedClickModel.from_pretrained(one / "final")
    assert grown.config.num_mask_outputs == 3 and grown.config.prior_in_output
    lines = (one / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(np.isfinite(json.loads(line)["loss"]) for line in lines)


def test_resume_with_other_settings_or_another_models_cache_is_refused(setup, capsys, tmp_path):
    run = setup["root"] / "refuse"
    assert _train(setup, run, "--set", "stop_at_step=1") == 0
    capsys.readouterr()
    assert _train(setup, run, "--set", "lr=0.01") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "other settings" in err[0] and "lr" in err[0]
    # a teacher whose weights differ from the cache's: refused before any step
    other = perturbed_copy(setup["teacher"], tmp_path / "other_teacher")
    capsys.readouterr()
    assert _train(setup, tmp_path / "fresh", "--set", f"teacher={other}") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "built from another model" in err[0]


def test_a_new_run_starts_from_another_runs_decoder_and_refuses_another_image_side(setup, capsys, tmp_path):
    first = setup["root"] / "init_source"
    assert _train(setup, first) == 0
    source = first / "final"
    # lr = 0: no weight moves (batch-norm statistics do), so the new run's weights are the checkpoint it started from
    assert _train(setup, tmp_path / "from_leg", "--set", f"init_from={source}", "--set", "lr=0") == 0
    a = load_file(str(source / "model.safetensors"))
    b = load_file(str(tmp_path / "from_leg" / "final" / "model.safetensors"))
    weights = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert [k for k in weights if not torch.equal(a[k], b[k])] == []
    # the same start with the image side changed: the cache no longer holds its embeddings
    model = SignedClickModel.from_pretrained(source)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if not n.startswith("decoder.")).add_(1.0)
    model.save_pretrained(tmp_path / "other_side")
    capsys.readouterr()
    assert _train(setup, tmp_path / "refused", "--set", f"init_from={tmp_path / 'other_side'}") == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and "its image side differs from the teacher" in err[0]
    assert _train(setup, tmp_path / "refused", "--set", f"init_from={setup['teacher']}") == 2  # one map, not three
    err = _error_lines(capsys)
    assert len(err) == 1 and "do not match the run's model" in err[0]
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--config", "/nonexistent.yaml"], "no such file"),
    (["train", "--set", "bogus=1"], "unknown setting(s) ['bogus']"),
    (["train", "--set", "batch_size=0"], "batch_size must be an integer >= 1"),
    (["train", "--set", "mask_sampling=soft"], "mask_sampling must be one of"),
    (["cache", "--corpus", "/nonexistent", "--out", "/tmp/x"], "no parquet corpus"),
    (["cache", "--corpus", "/tmp", "--out", "/tmp/x", "--views", "0"], "--views must be >= 1"),
])
def test_bad_arguments_are_one_line_errors(setup, capsys, args, message):
    assert setup["script"].main(args) == 2
    err = _error_lines(capsys)
    assert len(err) == 1 and err[0].startswith("train_decoder.py: error:") and message in err[0]


def test_grow_writes_the_untrained_multi_map_model(setup, tmp_path, capsys):
    out = tmp_path / "grown"
    assert setup["script"].main(["grow", "--teacher", str(setup["teacher"]), "--out", str(out)]) == 0
    grown = SignedClickModel.from_pretrained(out)
    assert grown.config.num_mask_outputs == 3 and grown.config.prior_in_output
    assert setup["script"].main(["grow", "--teacher", str(setup["teacher"]), "--out", str(out)]) == 2
    assert "exists and is not an empty folder" in _error_lines(capsys)[-1]


def test_head_refits_the_iou_head_alone_and_reuses_its_examples(setup, tmp_path, capsys):
    grown = tmp_path / "grown"
    assert setup["script"].main(["grow", "--teacher", str(setup["teacher"]), "--out", str(grown)]) == 0
    examples, out = tmp_path / "examples.safetensors", tmp_path / "largest"
    args = ["head", "--model", str(grown), "--cache", str(setup["cache"]), "--views", "6", "--epochs", "3",
            "--examples", str(examples), "--threads", "1"]
    assert setup["script"].main([*args, "--rule", "largest", "--out", str(out)]) == 0
    assert examples.is_file()
    before, after = load_file(str(grown / "model.safetensors")), load_file(str(out / "model.safetensors"))
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved and all(k.startswith("decoder.iou_head.") for k in moved)
    # the stored inputs are read back (no cache needed), and refused for a model with other maps
    assert setup["script"].main([*args[:3], "--cache", "/nonexistent", *args[5:], "--rule", "area",
                                 "--out", str(tmp_path / "area")]) == 0
    capsys.readouterr()
    assert setup["script"].main(["head", "--model", str(out), "--examples", str(examples), "--rule", "area",
                                 "--out", str(tmp_path / "x")]) == 2
    assert "computed with another model" in _error_lines(capsys)[-1]
    # several files are joined when all exist; a missing one among several is refused before any work
    second = tmp_path / "examples_seed1.safetensors"
    assert setup["script"].main([*args[:10], str(second), *args[11:], "--seed", "1", "--rule", "area",
                                 "--out", str(tmp_path / "seed1")]) == 0
    capsys.readouterr()
    assert setup["script"].main([*args[:3], "--examples", str(examples), "--examples", str(second), "--rule", "area",
                                 "--epochs", "3", "--out", str(tmp_path / "joined")]) == 0
    out_lines = capsys.readouterr().out
    joined = int(out_lines.split("fitted under rule 'area' on ")[1].split()[0])
    assert joined > 6  # more first clicks than one file of 6 views holds after its held-out share
    assert setup["script"].main([*args[:3], "--examples", str(examples), "--examples", str(tmp_path / "none"),
                                 "--rule", "area", "--out", str(tmp_path / "z")]) == 2
    assert "does not exist: several --examples files" in _error_lines(capsys)[-1]
    assert setup["script"].main([*args, "--rule", "biggest", "--out", str(tmp_path / "y")]) == 2
    assert "--rule must be one of uniform, area, largest" in _error_lines(capsys)[-1]


def test_object_crop_cache_and_training_on_two_caches(setup, tmp_path):
    crops = tmp_path / "crops"
    assert setup["script"].main(["cache", "--teacher", str(setup["teacher"]), "--corpus", str(setup["corpus"]),
                                 "--out", str(crops), "--views", "1", "--object-crops", "--images-per-shard", "2",
                                 "--threads", "1"]) == 0
    info = json.loads((crops / "cache_info.json").read_text())
    assert info["first_view"] == 1 and info["augment"]["object_crop_prob"] == 1.0
    views = load_shards(list_shards(crops), 64)
    assert len(views) == 4  # one crop view per image, no plain view
    # the plain cache still resumes with its old record (no first_view, no object-crop keys): nothing rewritten
    assert setup["script"].main(["cache", "--teacher", str(setup["teacher"]), "--corpus", str(setup["corpus"]),
                                 "--out", str(setup["cache"]), "--views", "2", "--images-per-shard", "2",
                                 "--threads", "1"]) == 0
    run = tmp_path / "two"
    assert _train(setup, run, "--set", f"extra_caches=[{crops}]") == 0
    state = json.loads((run / "state" / "run.json").read_text())
    assert state["cache_info"]["extra_caches"][0]["first_view"] == 1
    assert _train(setup, tmp_path / "bad", "--set", "extra_caches=oops") == 2


def test_object_crop_widens_a_mask_box_by_the_margin_inside_the_photo():
    from hf_iis.training.augment import _object_crop
    from hf_iis.training.config import AugmentParams

    masks = np.zeros((1, 100, 200), bool)
    masks[0, 40:60, 90:110] = True  # a 20 x 20 box
    params = AugmentParams(object_crop_prob=1.0, object_crop_margin=(0.5, 0.5), object_crop_min_size=16)
    assert _object_crop((100, 200), masks, params, np.random.default_rng(0)) == (80, 30, 40, 40)
    params = AugmentParams(object_crop_prob=1.0, object_crop_margin=(0.5, 0.5), object_crop_min_size=150)
    assert _object_crop((100, 200), masks, params, np.random.default_rng(0)) == (25, 0, 150, 100)  # clipped height
    assert _object_crop((100, 200), np.zeros((1, 100, 200), bool), params, np.random.default_rng(0)) is None


def test_a_refill_in_the_middle_of_a_batch_keeps_each_views_own_embedding(setup, tmp_path):
    """Shards of 4 views (the plain cache) and of 2 (object crops): with one shard in memory and batches of 3, the
    shard in memory changes inside most batches; every row must still be the embedding of the view it was drawn
    from (it once indexed the new shard with the old shard's indices)."""
    from hf_iis.training.decoder_training import CachedBatches, DecoderRunConfig

    crops = tmp_path / "crops"
    assert setup["script"].main(["cache", "--teacher", str(setup["teacher"]), "--corpus", str(setup["corpus"]),
                                 "--out", str(crops), "--views", "1", "--object-crops", "--images-per-shard", "2",
                                 "--threads", "1"]) == 0
    cfg = DecoderRunConfig(batch_size=3, shards_in_memory=1)
    batches = CachedBatches([setup["cache"], crops], 64, cfg, np.random.default_rng(0))
    known = torch.cat([load_shards([p], 64).embeddings.features for p in batches.shards])
    for _ in range(12):
        batch = batches.next()
        features = batch["embeddings"].features
        assert features.shape[0] == 3
        for row in features:
            assert any(torch.equal(row, k.float()) for k in known)
