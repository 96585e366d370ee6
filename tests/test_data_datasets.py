"""Conversion to Hugging Face `datasets`: grouping, the fixed validation split, parquet round trip, bad rows, guard."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("datasets")

from hf_iis.data import Sample, read_folder  # noqa: E402
from hf_iis.data.hf_datasets import (  # noqa: E402
    ConversionStats,
    _assign_splits,
    build_corpus,
    convert_folder,
    group_key,
    load_corpus,
    row_to_sample,
    samples_to_dataset,
    split_of,
)
from tests.conftest import DATA_ROOT, ON_SAMPLES  # noqa: E402

# named COCO-MVal and BSDS500 files and their counts: the real data folder, not the shipped samples
needs_data = pytest.mark.skipif(ON_SAMPLES, reason="checks named files of the real data folder, which is missing "
                                "(set HF_IIS_DATA_ROOT; README, Data)")
VAL_GROUP = ["airplane00_000000281693", "airplane01_000000281693", "airplane03_000000281693"]
COCO_IDS = [*VAL_GROUP, "airplane09_000000208208", "baseball bat00_000000057232", "baseball bat02_000000057232",
            "airplane02_000000272136"]
BSDS_IDS = ["100007", "100039"]


@pytest.fixture(autouse=True, scope="module")
def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ConversionStats]:
    """A corpus built from symlinked real subsets: 7 COCO-MVal instances on 5 images + 2 BSDS500 images."""
    if ON_SAMPLES:
        pytest.skip("links named files of the real data folder, which is missing (set HF_IIS_DATA_ROOT; README, Data)")
    root = tmp_path_factory.mktemp("data")
    for name in COCO_IDS:
        _link(DATA_ROOT / "COCO_MVal" / "img" / f"{name}.jpg", root / "COCO_MVal" / "img" / f"{name}.jpg")
        _link(DATA_ROOT / "COCO_MVal" / "gt" / f"{name}.png", root / "COCO_MVal" / "gt" / f"{name}.png")
    for name in BSDS_IDS:
        for sub, ext in (("images", "jpg"), ("groundTruth", "mat")):
            rel = Path("BSDS500") / sub / "test" / f"{name}.{ext}"
            _link(DATA_ROOT / rel, root / rel)
    out = root / "corpus"
    stats = build_corpus(root, out, shard_size=3, cache_dir=root / "scratch")
    return root, out, stats


def test_corpus_groups_instances_of_one_coco_image(corpus: tuple[Path, Path, ConversionStats]) -> None:
    root, out, stats = corpus
    assert stats.instances == {"coco_mval": 7, "bsds500": 2} and not stats.skipped
    assert stats.rows == {"train": 2 + 2, "validation": 2}
    val = {row["id"]: row for row in load_corpus(out, "validation", cache_dir=root / "hf")}
    assert set(val) == {"000000281693", "000000208208"}
    group = row_to_sample(val["000000281693"])
    assert group.source == "coco_mval" and len(group.masks) == 3
    for mask, name in zip(group.masks, VAL_GROUP):
        np.testing.assert_array_equal(mask, np.asarray(Image.open(root / "COCO_MVal" / "gt" / f"{name}.png")) >= 128)
    assert len(sorted(out.glob("train-*.parquet"))) == 2 and (out / "README.md").is_file()
    assert (out / "dataset_info.json").is_file()


def test_parquet_round_trip_gives_identical_pixels(corpus: tuple[Path, Path, ConversionStats]) -> None:
    root, out, _ = corpus
    rows = {row["id"]: row_to_sample(row) for row in load_corpus(out, "train", cache_dir=root / "hf")}
    assert set(rows) == {"000000057232", "000000272136", *BSDS_IDS}
    for sample in read_folder(root / "BSDS500", "bsds500"):
        got = rows[sample.id]
        np.testing.assert_array_equal(got.image, sample.image)
        assert len(got.masks) == len(sample.masks) > 5
        for a, b in zip(got.masks, sample.masks):
            np.testing.assert_array_equal(a, b)
    bat = rows["000000057232"]
    assert len(bat.masks) == 2
    np.testing.assert_array_equal(bat.image, np.asarray(Image.open(root / "COCO_MVal" / "img" /
                                                                   "baseball bat00_000000057232.jpg").convert("RGB")))


def test_streaming_yields_the_same_rows(corpus: tuple[Path, Path, ConversionStats]) -> None:
    root, out, _ = corpus
    streamed = list(load_corpus(out, "train", streaming=True))
    eager = load_corpus(out, "train", cache_dir=root / "hf")
    assert [r["id"] for r in streamed] == eager["id"]
    np.testing.assert_array_equal(np.asarray(streamed[0]["masks"][0]), np.asarray(eager[0]["masks"][0]))


def test_load_dataset_on_folder_reads_readme_configs(corpus: tuple[Path, Path, ConversionStats]) -> None:
    from datasets import load_dataset

    root, out, _ = corpus
    both = load_dataset(str(out), cache_dir=str(root / "hf2"))
    assert set(both) == {"train", "validation"} and both["validation"].num_rows == 2


@needs_data
def test_validation_split_is_fixed_deterministic_and_disjoint() -> None:
    first = _assign_splits("coco_mval", DATA_ROOT / "COCO_MVal", {}, 0.1)
    assert first == _assign_splits("coco_mval", DATA_ROOT / "COCO_MVal", {}, 0.1)
    val = {group_key("coco_mval", i) for i in first["validation"]}
    train = {group_key("coco_mval", i) for i in first["train"]}
    assert not val & train and len(val | train) == 722
    assert 0.07 < len(val) / 722 < 0.13
    assert split_of("coco_mval", "000000281693", 0.1) == "validation"
    assert not _assign_splits("bsds500", DATA_ROOT / "BSDS500", {}, 0.1)["validation"]


def _bad_folder(root: Path) -> Path:
    """coco_mval layout with one good instance and one of each bad kind."""
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    mask = np.zeros((16, 20), np.uint8)
    mask[4:9, 5:12] = 255
    for name in ("good00_1", "mismatch00_2", "empty00_4"):
        Image.fromarray(np.full((16, 20, 3), 90, np.uint8)).save(root / "img" / f"{name}.jpg")
    Image.fromarray(mask).save(root / "gt" / "good00_1.png")
    Image.fromarray(mask[:, :19]).save(root / "gt" / "mismatch00_2.png")
    Image.fromarray(mask * 0).save(root / "gt" / "empty00_4.png")
    (root / "img" / "corrupt00_3.jpg").write_bytes(b"\xff\xd8\xff truncated")
    Image.fromarray(mask).save(root / "gt" / "corrupt00_3.png")
    Image.fromarray(mask).save(root / "gt" / "missing00_5.png")
    return root


def test_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path / "COCO_MVal")
    stats = convert_folder(root, "coco_mval", tmp_path / "out", cache_dir=tmp_path / "scratch")
    assert stats.rows == {"train": 1} and stats.instances == {"coco_mval": 2}
    assert stats.skipped == {"size_mismatch": 1, "corrupt_image": 1, "no_masks": 1, "missing_file": 1}
    # in-memory samples: an empty mask is dropped, a mismatched one skips the row
    image = np.zeros((8, 8, 3), np.uint8)
    full, empty = np.ones((8, 8), bool), np.zeros((8, 8), bool)
    samples = [Sample("a", image, [full, empty], None, "x"), Sample("b", image, [np.ones((8, 9), bool)], None, "x"),
               Sample("c", image, [], None, "x")]
    stats = ConversionStats()
    dataset = samples_to_dataset(samples, stats, cache_dir=tmp_path / "scratch2")
    assert dataset["id"] == ["a"] and len(dataset[0]["masks"]) == 1
    assert stats.skipped == {"size_mismatch": 1, "no_masks": 1} and stats.dropped_masks == {"empty_mask": 1}


def test_cli_converts_a_folder_and_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _bad_folder(tmp_path / "COCO_MVal")
    script = Path(__file__).resolve().parents[1] / "scripts" / "build_datasets.py"
    main = runpy.run_path(str(script), run_name="build_datasets")["main"]
    assert main(["--layout", "coco_mval", "--root", str(root), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "train: 1 images, 1 masks" in printed and "skipped: 4" in printed
    assert len(load_corpus(tmp_path / "out", "train", cache_dir=tmp_path / "hf")) == 1


def test_training_corpus_refuses_benchmarks(tmp_path: Path) -> None:
    for sources in (("grabcut",), ("berkeley",), ("coco_mval", "davis")):
        with pytest.raises(ValueError, match="benchmark"):
            build_corpus(tmp_path, tmp_path / "out", sources=sources)
    with pytest.raises(ValueError, match="benchmark folder"):
        build_corpus(tmp_path, tmp_path / "out", sources=[("coco_mval", tmp_path / "Berkeley")])
    with pytest.raises(ValueError, match="test split"):
        build_corpus(tmp_path, tmp_path / "out", sources=[("bsds500", tmp_path / "BSDS500", {"split": "train"})])
    assert not (tmp_path / "out").exists()


def test_shrunk_corpus_keeps_rows_masks_and_splits(corpus: tuple[Path, Path, ConversionStats], tmp_path) -> None:
    """scripts/shrink_corpus.py (how stage 2's corpus travelled): same rows and splits, smaller images, binary masks."""
    root, out, _ = corpus
    shrink = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "shrink_corpus.py"))
    small = tmp_path / "small"
    shrink["shrink_corpus"](out, small, max_side=200, quality=85)
    for split in ("train", "validation"):
        before = {row["id"]: row_to_sample(row) for row in load_corpus(out, split, cache_dir=root / "hf")}
        after = {row["id"]: row_to_sample(row) for row in load_corpus(small, split, cache_dir=tmp_path / "hf")}
        assert set(after) == set(before)
        for key, sample in after.items():
            assert max(sample.image.shape[:2]) <= 200 and len(sample.masks) == len(before[key].masks)
            assert all(m.shape == sample.image.shape[:2] and m.dtype == bool for m in sample.masks)
