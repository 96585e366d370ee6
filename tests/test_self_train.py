"""Self-training on a folder of unlabelled photos (`scripts/self_train.py`, `hf_iis/training/self_training.py`): the
command runs end to end and writes a loadable model; corrupt files are skipped and counted; a rerun skips what is
done; other settings, another teacher or bad input are one-line refusals before any work; step 0 is the teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from hf_iis import SignedClickImageProcessor
from tests.conftest import load_script, perturbed_copy, tiny_saliency_model

FAST = ["--min-score", "0", "--max-area", "1", "--clicks-per-photo", "3", "--views", "1", "--steps", "3",
        "--batch-size", "2", "--threads", "1", "--no-progress"]


def _teacher(folder, num_masks: int = 1):
    """A tiny click model with the saliency branch the embedding cache needs (`tiny_checkpoint` has none)."""
    model = tiny_saliency_model()
    if num_masks > 1:
        from hf_iis.models.signed_click.grow_outputs import grow_outputs

        model = grow_outputs(model, num_masks, True)
    model.save_pretrained(folder)
    SignedClickImageProcessor(size=64).save_pretrained(folder)
    return folder


def _photos(folder, n: int = 2):
    """`n` synthetic photos (a bright rectangle on dark noise) and one corrupt .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        image = (rng.random((48, 64, 3)) * 60).astype(np.uint8)
        image[8 + k:40, 10:50 - k] = (200, 180, 40)
        Image.fromarray(image).save(folder / f"photo{k}.png")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("self_train")
    return {"root": root, "teacher": _teacher(root / "teacher"), "photos": _photos(root / "photos"),
            "script": load_script("self_train")}


@pytest.fixture(scope="module")
def run(inputs):
    """The command run once end to end (about 7 s of a 2-core CPU)."""
    out = inputs["root"] / "out"
    argv = ["--photos", str(inputs["photos"]), "--model", str(inputs["teacher"]), "--out", str(out), *FAST]
    assert inputs["script"].main(argv) == 0
    return {**inputs, "out": out, "argv": argv}


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("self_train.py: error:")
    return err[0]


def test_the_command_writes_a_loadable_model_and_counts_the_corrupt_file(run):
    from transformers import pipeline

    import hf_iis  # noqa: F401 - registers the task

    out = run["out"]
    record = json.loads((out / "self_train_info.json").read_text())
    labels = record["stages"]["pseudo_labels"]
    assert labels["photos_read"] == 2 and labels["photos_skipped"] == 1
    assert labels["skipped"][0]["file"].endswith("broken.jpg")
    assert labels["clicks"] == 6 and sum(labels["labels"].values()) == 6 and labels["labels"]["kept"] >= 2
    low, *_, high = labels["score_quantiles"]
    assert 0 <= low <= high <= 1
    assert record["teacher"]["sha256"] and record["settings"]["tta"] == 2 and record["settings"]["zoom_in"] == "auto"
    assert record["stages"]["train"] == {"step": 3, "stopped": "max_steps", "steps": 3}
    # the corpus is the format `train_decoder.py cache` reads: by default (--anchored) one row per kept answer, its
    # masks [answer, click region]
    from hf_iis.data.hf_datasets import load_corpus

    corpus = load_corpus(out / "corpus", "train")
    assert len(corpus) == labels["corpus_rows"] == labels["labels"]["kept"]
    assert all(len(m) == 2 for m in corpus["masks"]) and record["settings"]["anchored"] is True
    seg = pipeline("interactive-segmentation", model=str(out / "final"))
    result = seg(np.asarray(Image.open(run["photos"] / "photo0.png")), clicks=[(30, 24, 1)])
    assert result["mask"].size == (64, 48)
    tuned, teacher = load_file(str(out / "final" / "model.safetensors")), load_file(
        str(run["teacher"] / "model.safetensors"))
    moved = [k for k in teacher if not torch.equal(teacher[k], tuned[k])]
    assert moved and all(k.startswith("decoder.") for k in moved)


def test_a_rerun_skips_every_finished_stage(run, capsys):
    out = run["out"]
    watched = [*(out / "corpus").glob("*.parquet"), *(out / "cache").glob("shard-*"),
               out / "final" / "model.safetensors"]
    before = {p: p.stat().st_mtime_ns for p in watched}
    assert run["script"].main(run["argv"]) == 0
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["train"]["step"] == 3


def test_a_leg_cut_short_continues_to_the_uninterrupted_result(run, monkeypatch):
    """--max-minutes ends a leg (here before its first step); the same command without it, even typed with relative
    paths from another folder, continues the decoder from the saved state, with the labels and the cache kept, to the
    weights of the run that was never cut."""
    out = run["root"] / "legs"
    argv = [str(out) if a == str(run["out"]) else a for a in run["argv"]]
    assert run["script"].main([*argv, "--max-minutes", "1e-9"]) == 0
    record = json.loads((out / "self_train_info.json").read_text())
    assert record["stages"]["train"] == {"step": 0, "stopped": "max_minutes", "steps": 3}
    corpus = {p: p.stat().st_mtime_ns for p in (out / "corpus").glob("*.parquet")}
    monkeypatch.chdir(run["root"])
    assert run["script"].main(["--photos", "photos", "--model", "teacher", "--out", "legs", *FAST]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "corpus").glob("*.parquet")} == corpus
    assert json.loads((out / "self_train_info.json").read_text())["stages"]["train"]["step"] == 3
    legs, once = (load_file(str(folder / "final" / "model.safetensors")) for folder in (out, run["out"]))
    assert all(torch.allclose(legs[k], once[k], atol=1e-6) for k in once)


def test_a_filter_that_kept_nothing_is_retried_without_labelling_again(inputs, tmp_path, capsys):
    """No answer scores 1 (the mean probability inside a mask): refused after the labelling; the same folder then
    takes another --min-score (no corpus was written yet) and reuses the written labelling chunks."""
    out = tmp_path / "out"
    argv = ["--photos", str(inputs["photos"]), "--model", str(inputs["teacher"]), "--out", str(out), *FAST]
    assert inputs["script"].main([*argv, "--min-score", "1"]) == 2
    assert "no pseudo-label passed the filter" in _error(capsys)
    chunks = {p: p.stat().st_mtime_ns for p in (out / "pseudo_labels" / "chunks").glob("*.parquet")}
    assert chunks
    assert inputs["script"].main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "pseudo_labels" / "chunks").glob("*.parquet")} == chunks
    assert json.loads((out / "self_train_info.json").read_text())["settings"]["min_score"] == 0
    assert not (out / "pseudo_labels" / "requests").exists()  # the photos' per-click copies are gone
    assert inputs["script"].main([*argv, "--min-score", "0.5"]) == 2  # once the corpus exists, the filter is fixed
    assert "min_score: 0.0 there, 0.5 now" in _error(capsys)


def test_other_settings_are_refused_naming_both(run, capsys):
    assert run["script"].main([*run["argv"], "--tta", "1"]) == 2
    assert "other settings (tta: 2 there, 1 now)" in _error(capsys)


def test_pseudo_labels_of_another_teacher_are_refused_naming_both(run, capsys, tmp_path):
    other = perturbed_copy(run["teacher"], tmp_path / "other")
    argv = [str(other) if a == str(run["teacher"]) else a for a in run["argv"]]
    capsys.readouterr()
    assert run["script"].main(argv) == 2
    err = _error(capsys)
    assert f"teacher {run['teacher']}" in err and f"--model {other}" in err


@pytest.mark.parametrize("num_masks", [1, 3])
def test_step_zero_is_the_teacher_exactly(tmp_path, num_masks):
    """The leg keeps the teacher's maps and output prior: nothing is grown or re-initialised before step 1."""
    from hf_iis.training.decoder_training import build_decoder_model
    from hf_iis.training.self_training import SelfTrainSettings, check_teacher, decoder_run_config

    teacher = _teacher(tmp_path / "teacher", num_masks)
    settings = SelfTrainSettings(photos=("unused",), model=str(teacher))
    _, config = check_teacher(teacher)
    start = build_decoder_model(decoder_run_config(settings, tmp_path / "out", config)).state_dict()
    saved = load_file(str(teacher / "model.safetensors"))
    assert start.keys() == saved.keys()
    assert all(torch.equal(start[k], saved[k]) for k in saved)


def test_zoom_in_reaches_the_teachers_pipeline(inputs, tmp_path, monkeypatch):
    """The labelling passes its zoom setting to every pipeline call (a spy on the calls), and its labels are the
    pipeline's answers at that setting."""
    import datasets

    import hf_iis.checkpoint_paths
    from hf_iis.labelling import LabelSpec, label_dataset
    from hf_iis.training.self_training_photos import read_photo

    photo = read_photo(inputs["photos"] / "photo1.png", 0)
    image = np.asarray(Image.open(inputs["photos"] / "photo1.png"))
    clicks = [[3.0, 3.0, 1.0], [60.0, 44.0, 1.0], [30.0, 20.0, 1.0]]
    schema = datasets.Features({"image": datasets.Image(),
                                "clicks": datasets.List(datasets.List(datasets.Value("float32")))})
    rows = datasets.Dataset.from_list([{"image": {"bytes": photo.data(), "path": None}, "clicks": [c]} for c in clicks],
                                      features=schema)
    rows.to_parquet(str(tmp_path / "rows.parquet"))
    seg = hf_iis.checkpoint_paths.load_pipeline(inputs["teacher"])
    seen = []

    def spy(*args, **kwargs):
        def call(image, **options):
            seen.append(options.get("zoom_in", "not given"))
            return seg(image, **options)
        return call

    monkeypatch.setattr(hf_iis.checkpoint_paths, "load_pipeline", spy)
    for zoom in (True, False):
        seen.clear()
        out = tmp_path / f"zoom_{zoom}"
        label_dataset(tmp_path / "rows.parquet", out, LabelSpec(clicks_column="clicks", zoom_in=zoom),
                      model=str(inputs["teacher"]), progress=False)
        assert seen == [zoom] * len(clicks)
        labels = datasets.load_from_disk(str(out / "dataset"))
        for click, mask in zip(clicks, labels["mask"]):
            expected = seg(image, clicks=[tuple(click)], zoom_in=zoom)["mask"]
            assert np.array_equal(np.asarray(mask), np.asarray(expected))
        assert json.loads((out / "label_info.json").read_text())["zoom_in"] is zoom


def test_a_labelling_recorded_before_zoom_in_was_a_setting_resumes(tmp_path):
    from hf_iis.labelling import LabelSpec, _check_info

    info = {"tta": 1, "zoom_in": "auto"}
    (tmp_path / "label_info.json").write_text(json.dumps({"tta": 1}))
    assert _check_info(tmp_path, info)
    with pytest.raises(ValueError, match="other settings"):
        _check_info(tmp_path, {**info, "zoom_in": False})
    assert LabelSpec().zoom_in == "auto"  # the pipeline's own default: labellings made before keep their meaning


def test_a_rotated_phone_photo_is_stored_upright_as_the_teacher_saw_it(tmp_path):
    """A JPEG with an EXIF rotation: the pipeline reads it turned, so the corpus stores those pixels (a PNG), and its
    masks fit it; the file's own bytes would decode unturned and every mask would be refused as the wrong size."""
    import io

    from hf_iis.training.self_training_photos import read_photo
    from hf_iis.utils.image_io import load_image

    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path, exif=exif)
    photo = read_photo(path, 0)
    assert (photo.width, photo.height, photo.converted) == (48, 64, True)
    stored = np.asarray(Image.open(io.BytesIO(photo.data())).convert("RGB"))
    assert np.array_equal(stored, load_image(str(path)))
    plain = tmp_path / "plain.png"
    Image.fromarray(stored).save(plain)
    assert not read_photo(plain, 1).converted and read_photo(plain, 1).data() == plain.read_bytes()


@pytest.mark.parametrize("case, message", [
    ("empty", "no photo there"),
    ("only_text", "no photo there"),
    ("file", "is a file: give a folder of photos"),
    ("missing", "no such folder"),
    ("camvid_test", "CamVid test split is reserved"),
    ("benchmark", "benchmark folder"),
    ("out_file", "is a file, not a folder"),
    ("out_foreign", "holds no self_train_info.json"),
    ("no_saliency", "has no saliency branch"),
    ("no_model", "--model /nonexistent/model: not a checkpoint folder holding model.safetensors"),
    ("student", "self-training adapts the click model"),
    ("lr", "--lr must be a number >= 0, got -1.0"),
    ("areas", "min-area (0.5) must be below max-area (0.2)"),
    ("zoom", "--zoom-in must be one of auto, on, off"),
    ("only_corrupt", "none of the 1 files of --photos could be read"),
])
def test_bad_input_is_one_line_before_any_output(inputs, tmp_path, capsys, tiny_checkpoint, case, message):
    photos, out, model = inputs["photos"], tmp_path / "out", inputs["teacher"]
    extra: list[str] = []
    if case in ("empty", "only_text", "camvid_test", "benchmark", "only_corrupt"):
        photos = tmp_path / {"empty": "empty", "only_text": "text", "camvid_test": "CamVid/test",
                             "benchmark": "GrabCut/photos", "only_corrupt": "corrupt"}[case]
        photos.mkdir(parents=True)
        if case == "only_text":
            (photos / "notes.txt").write_text("hello")
        if case in ("camvid_test", "benchmark"):
            Image.new("RGB", (64, 48)).save(photos / "a.png")
        if case == "only_corrupt":
            (photos / "bad.png").write_bytes(b"\x89PNG broken")
    elif case == "file":
        photos = photos / "photo0.png"
    elif case == "missing":
        photos = tmp_path / "nowhere"
    elif case == "out_file":
        out.write_text("x")
    elif case == "out_foreign":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    elif case == "no_saliency":
        model = tiny_checkpoint
    elif case == "no_model":
        model = "/nonexistent/model"
    elif case == "student":
        from hf_iis.checkpoint_paths import DEFAULT_CHECKPOINT

        model = DEFAULT_CHECKPOINT.parent / "student"
    elif case == "lr":
        extra = ["--lr", "-1"]
    elif case == "areas":
        extra = ["--min-area", "0.5", "--max-area", "0.2"]
    elif case == "zoom":
        extra = ["--zoom-in", "maybe"]
    argv = ["--photos", str(photos), "--model", str(model), "--out", str(out), *FAST, *extra]
    assert inputs["script"].main(argv) == 2
    assert message in _error(capsys)
    if case == "out_foreign":
        assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    elif case not in ("out_file", "only_corrupt"):
        assert not out.exists()


@pytest.mark.slow
def test_two_process_launch_shares_the_labelling(inputs, tmp_path):
    """Under `accelerate launch` (2 CPU processes) each process labels its share of the chunks (8 photos each);
    the corpus equals the one-process run's and the main process alone caches, trains and prints."""
    import os
    import socket
    import subprocess
    import sys

    from hf_iis.data.hf_datasets import load_corpus
    from tests.conftest import REPO_ROOT

    photos = _photos(tmp_path / "photos", n=10)  # 2 chunks of 8 photos
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["--photos", str(photos), "--model", str(inputs["teacher"]), *FAST]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/cpu_2proc.yaml",
           "--main_process_port", str(port), "scripts/self_train.py", "--out", str(tmp_path / "ddp"), *argv]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1")
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len([line for line in done.stdout.splitlines() if line.startswith('{"out"')]) == 1
    info = json.loads((tmp_path / "ddp" / "pseudo_labels" / "label_info.json").read_text())
    assert info["chunk_size"] == 8 * 3 and len(list((tmp_path / "ddp" / "pseudo_labels" / "chunks").glob("*"))) == 2
    assert inputs["script"].main(["--out", str(tmp_path / "one"), *argv]) == 0
    two, one = (load_corpus(tmp_path / name / "corpus", "train") for name in ("ddp", "one"))
    assert two["id"] == one["id"]
    for a, b in zip(two["masks"], one["masks"]):
        assert len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert (tmp_path / "ddp" / "final" / "model.safetensors").is_file()
