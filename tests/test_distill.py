"""Distillation end to end on tiny data: unlabelled sources (and what they refuse), the teacher-target cache (and its
resumption), a few training steps lowering the loss, exact resumption, and a final folder the pipeline loads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import pipeline

from hf_iis.distillation.batches import CacheBatches, row_to_sample
from hf_iis.distillation.cache import decode_maps, read_cache
from hf_iis.distillation.config import load_distill_config
from hf_iis.distillation.sources import corpus_images, folder_images, open_corpus
from hf_iis.distillation.trainer import distill
from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor
from hf_iis.scaling.tta import VIEWS_BY_NAME
from hf_iis.training.toy import write_corpus
from hf_iis.training.tracking import read_jsonl
from tests.conftest import load_script


def synthetic_image(rng: np.random.Generator, height: int = 80, width: int = 96) -> np.ndarray:
    image = np.full((height, width, 3), rng.integers(0, 255, 3), dtype=np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, height - 20), rng.integers(0, width - 20)
        image[y : y + rng.integers(10, 40), x : x + rng.integers(10, 40)] = rng.integers(0, 255, 3)
    return image


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("sources")
    mask = Image.fromarray(np.full((80, 96), 255, np.uint8))
    rows = [{"image": Image.fromarray(synthetic_image(rng)), "masks": [mask], "ignore": None, "id": f"img{i}",
             "source": "synthetic"} for i in range(8)]
    corpus = write_corpus(root / "corpus", {"train": rows[:6], "validation": rows[6:]})
    photos = root / "CCP" / "photos"  # a Clothing Co-Parsing layout: 0001-1004 are annotated, later ones are not
    photos.mkdir(parents=True)
    for name in ("0005", "0950", "1200", "2001"):
        Image.fromarray(synthetic_image(rng, 90, 60)).save(photos / f"{name}.jpg")
    return {"corpus": corpus, "photos": photos}


@pytest.fixture(scope="module")
def cache(sources, tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "distill"
    argv = ["cache", "--teacher", str(tiny_checkpoint), "--corpus", str(sources["corpus"]), "--image-dir",
            str(sources["photos"]), "--out", str(out), "--clicks", "6", "--sequences", "2", "--tta", "2",
            "--shard-size", "3", "--no-progress"]
    assert load_script("distill").main(argv) == 0
    return out


def test_sources_keep_benchmarks_and_validation_out(sources, tmp_path):
    assert [r.id for r in folder_images(sources["photos"])] == ["1200", "2001"]  # CCP 0001-1004 skipped
    assert len(corpus_images(sources["corpus"])) == 6  # the train split only
    with pytest.raises(ValueError, match="train split only"):
        open_corpus(sources["corpus"], "validation")
    benchmark = tmp_path / "GrabCut" / "images"
    benchmark.mkdir(parents=True)
    with pytest.raises(ValueError, match="benchmark folder"):
        folder_images(benchmark)


def test_cache_rows_hold_teacher_maps_on_the_grid(cache, tiny_checkpoint, sources):
    dataset, info = read_cache(cache)
    assert len(dataset) == 8 and info["stride"] == 4 and info["image_size"] == 64
    assert info["spec"]["tta"] == 2 and info["teacher"] == str(tiny_checkpoint)
    row = dataset[0]
    assert max(row["image"].size) == 64 and row["grid"] == [16, 16]
    single = decode_maps(row["single_targets"], row["grid"])
    assert single.shape == (6, 16, 16) and 0 <= single.min() <= single.max() <= 1
    assert len(row["sequences"]) == 2 and all(2 <= len(s) <= 3 for s in row["sequences"])
    assert len(row["points"]) == len(row["labels"]) == 6 + sum(len(s) - 1 for s in row["sequences"])
    assert row["labels"][:6] == [1, 1, 1, -1, -1, -1]
    # the teacher's own single-click map at tta=2, averaged over 4 x 4 cells, is the target
    from hf_iis.inference.predictors import load_predictor

    teacher = load_predictor(tiny_checkpoint)
    teacher.set_image(np.asarray(row["image"]))
    direct = teacher.predict_single_clicks(np.array([row["points"][0]]), sign=1, tta=2)[0]
    h, w = direct.shape
    padded = np.zeros((64, 64), np.float32)
    padded[:h, :w] = direct
    expected = padded.reshape(16, 4, 16, 4).mean((1, 3))
    assert np.abs(single[0] - expected).max() <= 1 / 255 + 1e-6


def test_cache_build_resumes_and_refuses_other_settings(cache, sources, tiny_checkpoint, capsys):
    shards = sorted(cache.glob("train-*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in shards]
    argv = ["cache", "--teacher", str(tiny_checkpoint), "--corpus", str(sources["corpus"]), "--image-dir",
            str(sources["photos"]), "--out", str(cache), "--clicks", "6", "--sequences", "2", "--tta", "2",
            "--shard-size", "3", "--no-progress"]
    assert load_script("distill").main(argv) == 0
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # nothing recomputed
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows_written_now"] == 0
    argv[argv.index("--tta") + 1] = "4"
    assert load_script("distill").main(argv) == 2
    assert "other settings" in capsys.readouterr().err
    argv[argv.index("--tta") + 1] = "2"
    assert load_script("distill").main([*argv, "--zoom-in", "auto"]) == 2  # a setting the first build did not have
    assert "'zoom_in': True" in capsys.readouterr().err


def test_cache_refuses_to_resume_with_other_teacher_weights(cache, sources, tiny_checkpoint, tmp_path, capsys):
    """The folder name says nothing: a teacher folder retrained in place is another teacher (its sha256)."""
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    info = json.loads((copy / "cache_info.json").read_text())
    assert info["teacher_sha256"] == hashlib.sha256((tiny_checkpoint / "model.safetensors").read_bytes()).hexdigest()
    info["teacher_sha256"] = "0" * 64
    (copy / "cache_info.json").write_text(json.dumps(info))
    argv = ["cache", "--teacher", str(tiny_checkpoint), "--corpus", str(sources["corpus"]), "--image-dir",
            str(sources["photos"]), "--out", str(copy), "--clicks", "6", "--sequences", "2", "--tta", "2",
            "--shard-size", "3", "--no-progress"]
    assert load_script("distill").main(argv) == 2
    err = capsys.readouterr().err
    assert "holds targets of teacher" in err and "000000000000" in err and str(tiny_checkpoint) in err


def test_d4_views_move_image_clicks_and_maps_together(cache):
    dataset, _ = read_cache(cache)
    processor = SignedClickImageProcessor(size=64)
    row = dataset[1]
    plain = row_to_sample(row, processor, 4)
    flipped = row_to_sample(row, processor, 4, VIEWS_BY_NAME["rot90"])
    view = VIEWS_BY_NAME["rot90"]
    assert torch.equal(view.invert_map(flipped["single"], 16), plain["single"])
    assert torch.equal(view.invert_map(flipped["pixel_values"], 64), plain["pixel_values"])
    assert torch.allclose(view.invert_points(flipped["points"], 64), plain["points"])
    batches = CacheBatches(dataset, processor, 4, batch_size=3, seed=0)
    batch = next(batches)
    assert batch["pixel_values"].shape == (3, 3, 64, 64) and batch["valid"].shape == (3, 1, 16, 16)
    assert batches.state() == {"epoch": 0, "position": 1}


def _cfg(out: Path, cache: Path, *overrides: str):
    return load_distill_config(None, [f"cache={cache}", f"output_dir={out}", "preset=tiny", "batch_size=4",
                                      "warmup_steps=2", "lr=1e-2", "backbone_lr=1e-2", "log_every=5",
                                      "save_every_minutes=0", "num_threads=1", *overrides])


def test_a_few_steps_lower_the_distillation_loss_and_the_student_loads(cache, tiny_checkpoint, tmp_path):
    summary = distill(_cfg(tmp_path / "run", cache, "max_steps=30"), progress=False)
    log = [r for r in read_jsonl(tmp_path / "run" / "log.jsonl") if "train/loss" in r]
    first, last = log[0], log[-1]
    assert last["train/loss"] < 0.8 * first["train/loss"], (first, last)
    assert last["train/single_kl"] < first["train/single_kl"]
    final = Path(summary["final"])
    seg = pipeline("interactive-segmentation", model=str(final))
    image = synthetic_image(np.random.default_rng(5))
    out = seg(image, clicks=[(20, 30, 1), (70, 10, -1)], tta=2)
    assert out["probabilities"].shape == image.shape[:2]
    assert seg.model.config.teacher_scaling == {"tta": 2, "triangulation": 0, "zoom_in": False}
    weights = (tiny_checkpoint / "model.safetensors").read_bytes()
    assert seg.model.config.teacher_sha256 == hashlib.sha256(weights).hexdigest()  # what the cache recorded


def test_resume_continues_exactly(cache, tmp_path):
    distill(_cfg(tmp_path / "straight", cache, "max_steps=8"), progress=False)
    crashed = _cfg(tmp_path / "resumed", cache, "max_steps=8", "save_every=4")
    assert distill(crashed, progress=False, crash_at_step=5)["crashed"]
    assert (tmp_path / "resumed" / "checkpoints" / "step_00000004").is_dir()
    assert distill(crashed, resume=True, progress=False)["steps_run"] == 4  # steps 5..8 from the step-4 checkpoint
    straight = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_backbone_from_a_teacher_seeds_the_student_and_refuses_other_architectures(cache, tiny_checkpoint, tmp_path):
    from hf_iis.distillation.cache import read_cache
    from hf_iis.distillation.trainer import build_student

    _, info = read_cache(cache)
    teacher = load_file(tiny_checkpoint / "model.safetensors")
    student = build_student(_cfg(tmp_path, cache, f"backbone_from={tiny_checkpoint}"), info)
    own = student.backbone.state_dict()
    assert own and all(torch.equal(own[k], teacher[f"backbone.{k}"]) for k in own)
    fresh = build_student(_cfg(tmp_path, cache), info).backbone.state_dict()
    assert not all(torch.equal(own[k], fresh[k]) for k in own if own[k].is_floating_point())

    with pytest.raises(ValueError, match="not both"):
        build_student(_cfg(tmp_path, cache, f"backbone_from={tiny_checkpoint}", f"init_from={tiny_checkpoint}"), info)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        build_student(_cfg(tmp_path, cache, f"backbone_from={tmp_path / 'nowhere'}"), info)
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes((tiny_checkpoint / "model.safetensors").read_bytes())
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "backbone": "resnet18"}))
    with pytest.raises(ValueError, match="same architecture"):
        build_student(_cfg(tmp_path, cache, f"backbone_from={other}"), info)


def test_a_student_step_exports_to_a_loadable_folder(cache, tmp_path):
    from hf_iis.inference.predictors import load_predictor

    run = tmp_path / "run"
    distill(_cfg(run, cache, "max_steps=4", "save_every=2", "keep_checkpoints=3"), progress=False)
    out = tmp_path / "step2"
    argv = [str(run / "checkpoints" / "step_00000002"), "--like", str(run / "final"), "--out", str(out)]
    assert load_script("export_checkpoint").main(argv) == 0
    assert type(load_predictor(out)).__name__ == "SignedClickStudentPredictor"
    step2, final = load_file(out / "model.safetensors"), load_file(run / "final" / "model.safetensors")
    assert step2.keys() == final.keys() and not all(torch.equal(step2[k], final[k]) for k in final)


@pytest.mark.parametrize("zoom_in, expected", [(False, False), (True, "auto")])
def test_zoom_in_reaches_the_teachers_sequence_predictions_only(zoom_in, expected):
    from types import SimpleNamespace

    from hf_iis.distillation.teacher_targets import TargetSpec, TeacherTargets

    calls = []

    class Teacher:
        processor, original_size = SimpleNamespace(size=8), (8, 8)

        def set_image(self, image):
            pass

        def predict_single_clicks(self, points, sign, tta):
            return np.full((len(points), 8, 8), 0.25 if sign > 0 else 0.75, np.float32)

        def predict(self, clicks, **kwargs):
            calls.append(kwargs["zoom_in"])
            return SimpleNamespace(probabilities=np.full((8, 8), 0.5, np.float32))

    spec = TargetSpec(clicks=2, sequences=2, sequence_clicks=2, tta=1, zoom_in=zoom_in)
    out = TeacherTargets(Teacher(), spec, stride=4)(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0))
    assert calls == [expected, expected]  # one corrective click per sequence, each answered with the spec's zoom
    assert out["sequence_targets"].shape == (2, 2, 2) and (out["sequence_targets"] == 128).all()


def test_two_parts_build_the_same_cache_as_one_builder(cache, sources, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "parts"
    argv = ["cache", "--teacher", str(tiny_checkpoint), "--corpus", str(sources["corpus"]), "--image-dir",
            str(sources["photos"]), "--out", str(out), "--clicks", "6", "--sequences", "2", "--tta", "2",
            "--shard-size", "3", "--no-progress"]
    assert load_script("distill").main([*argv, "--part", "1/2"]) == 0
    assert [p.name for p in sorted(out.glob("train-*.parquet"))] == ["train-00001.parquet"]  # shards 1, 3, ... of 3
    assert load_script("distill").main([*argv, "--part", "0/2"]) == 0
    capsys.readouterr()
    whole, _ = read_cache(cache)
    parts, _ = read_cache(out)
    assert list(parts["id"]) == list(whole["id"]) and list(parts["points"]) == list(whole["points"])
    for key in ("single_targets", "sequence_targets"):  # equal up to the uint8 rounding of float sums (thread count)
        for a, b in zip(parts[key], whole[key], strict=True):
            assert np.abs(np.frombuffer(a, np.uint8).astype(int) - np.frombuffer(b, np.uint8).astype(int)).max() <= 1
