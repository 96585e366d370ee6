"""The extra datasets (ECSSD, CCP, Weizmann, CamVid) on `../shared/data/extra_samples/`: readers, benchmarks, guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy import ndimage

from hf_iis.data import SampleError, check_training_source, list_ids, read_folder, read_sample
from hf_iis.data.extra_layouts import camvid_regions, ccp_regions
from hf_iis.data.layouts import check_training_ids, default_extra_root
from hf_iis.evaluation.benchmarks import BENCHMARKS, load_benchmark
from tests.conftest import DATA_ROOT, require_data

EXCLUDE = DATA_ROOT / "ecssd_exclude.txt"
EIGHT = np.ones((3, 3), bool)


@pytest.fixture(scope="module")
def samples() -> Path:
    return require_data("extra_samples")


def _key(mask: np.ndarray) -> bytes:
    return np.packbits(mask).tobytes()


def _check(sample) -> None:
    h, w = sample.image.shape[:2]
    assert sample.image.shape == (h, w, 3) and sample.image.dtype == np.uint8
    assert sample.masks and all(m.shape == (h, w) and m.dtype == bool and m.any() for m in sample.masks)


# --- ECSSD -------------------------------------------------------------------------------------------------------

def test_ecssd_drops_excluded_ids_and_reads_binary_masks(samples: Path) -> None:
    root = samples / "ECSSD"
    ids = list_ids(root, "ecssd", exclude_file=EXCLUDE)
    assert ids == ["0036", "0040", "0200", "0500"]  # 0001 is a Berkeley image: dropped
    for sample in read_folder(root, "ecssd", exclude_file=EXCLUDE):
        _check(sample)
        raw = np.asarray(Image.open(root / "ground_truth_mask" / f"{sample.id}.png"))
        assert len(sample.masks) == 1 and sample.source == "ecssd"
        np.testing.assert_array_equal(sample.masks[0], raw >= 128)
        np.testing.assert_array_equal(sample.image, np.asarray(Image.open(root / "images" / f"{sample.id}.jpg")))
    with pytest.raises(ValueError, match="excluded"):
        read_sample(root, "ecssd", "0001", exclude_file=EXCLUDE)


def test_ecssd_refuses_without_exclusion_list_and_finds_it_next_to_the_folder(samples: Path, tmp_path: Path) -> None:
    root = samples / "ECSSD"
    assert not (samples / "ecssd_exclude.txt").exists()
    with pytest.raises(ValueError, match=r"ecssd_exclude\.txt.*exclude_file="):
        list_ids(root, "ecssd")
    with pytest.raises(ValueError, match="exclusion list"):
        read_sample(root, "ecssd", "0036")
    with pytest.raises(ValueError, match="exclusion list"):
        check_training_source(root, "ecssd")
    (tmp_path / "ECSSD").symlink_to(root)
    (tmp_path / "ecssd_exclude.txt").write_text("# one id a line\n0001\n0200  # a comment\n")
    assert list_ids(tmp_path / "ECSSD", "ecssd") == ["0036", "0040", "0500"]


# --- CCP ---------------------------------------------------------------------------------------------------------

def _expected_parts(label_map: np.ndarray) -> list[np.ndarray]:
    out = []
    for label in np.unique(label_map[label_map != 0]):
        lab, n = ndimage.label(label_map == label, structure=EIGHT)
        out += [lab == k for k in range(1, n + 1) if (lab == k).sum() >= 400]
    return out


def test_ccp_person_then_part_components(samples: Path) -> None:
    root = samples / "CCP"
    assert (root / "photos" / "1005.jpg").is_file()
    assert list_ids(root, "ccp") == ["0001", "0002", "0500", "1004"]  # 1005 has no annotation
    assert list_ids(root, "ccp", subset="train") == ["0001", "0002", "0500"]
    assert list_ids(root, "ccp", subset="reserved") == ["1004"]
    label_map = scipy.io.loadmat(root / "annotations" / "pixel-level" / "0002.mat")["groundtruth"]
    sample = read_sample(root, "ccp", "0002")
    _check(sample)
    assert sample.image.shape[:2] == label_map.shape and sample.source == "ccp"
    np.testing.assert_array_equal(sample.masks[0], label_map != 0)  # the person first
    parts = sample.masks[1:]
    expected = _expected_parts(label_map)
    assert len(parts) == len(expected) >= 5 and {_key(m) for m in parts} == {_key(m) for m in expected}
    for part in parts:
        assert part.sum() >= 400 and not (part & (label_map == 0)).any()
        assert len(np.unique(label_map[part])) == 1 and ndimage.label(part, structure=EIGHT)[1] == 1
    only_parts = read_sample(root, "ccp", "0002", masks="parts").masks
    assert [_key(m) for m in only_parts] == [_key(m) for m in parts]
    (person,) = read_sample(root, "ccp", "0002", masks="person").masks
    np.testing.assert_array_equal(person, label_map != 0)
    assert len(read_sample(root, "ccp", "0002", min_area=5000).masks) < len(sample.masks)


def test_ccp_bad_ids_and_missing_files(samples: Path) -> None:
    root = samples / "CCP"
    with pytest.raises(SampleError, match="1005.mat") as err:
        read_sample(root, "ccp", "1005")
    assert err.value.reason == "missing_file"
    with pytest.raises(ValueError, match="subset 'train'"):
        read_sample(root, "ccp", "1004", subset="train")
    with pytest.raises(ValueError, match="masks"):
        read_sample(root, "ccp", "0002", masks="garments")


# --- Weizmann ----------------------------------------------------------------------------------------------------

def test_weizmann_mask_resized_to_rgb_size(samples: Path) -> None:
    root = samples / "Weizmann"
    assert list_ids(root, "weizmann") == ["horse001", "horse002", "horse100", "horse328"]
    resized = 0
    for sample in read_folder(root, "weizmann"):
        _check(sample)
        rgb = np.asarray(Image.open(root / "rgb" / f"{sample.id}.jpg"))
        grey = Image.open(root / "figure_ground" / f"{sample.id}.jpg")
        assert grey.size == Image.open(root / "gray" / f"{sample.id}.jpg").size
        resized += grey.size != (rgb.shape[1], rgb.shape[0])
        (mask,) = sample.masks
        assert mask.shape == rgb.shape[:2]
        np.testing.assert_array_equal(sample.image, rgb)
        binary = Image.fromarray(np.where(np.asarray(grey) > 127, 255, 0).astype(np.uint8))
        expected = np.asarray(binary.resize((rgb.shape[1], rgb.shape[0]), Image.NEAREST)) > 127
        np.testing.assert_array_equal(mask, expected)
        assert abs(mask.mean() - (np.asarray(grey) > 127).mean()) < 0.02
        smooth = read_sample(root, "weizmann", sample.id, resample="bilinear").masks[0]
        assert (smooth != mask).mean() < 0.02
    assert resized >= 3


# --- CamVid ------------------------------------------------------------------------------------------------------

def test_camvid_components_and_void_ignore(samples: Path) -> None:
    root = samples / "CamVid"
    assert list_ids(root, "camvid") == list_ids(root, "camvid", split="train") and len(list_ids(root, "camvid")) == 4
    assert list_ids(root, "camvid", split="test") == ["0001TP_008550", "Seq05VD_f01710"]
    sample_id = "0016E5_01470"
    label = np.asarray(Image.open(root / "trainannot" / f"{sample_id}.png"))
    sample = read_sample(root, "camvid", sample_id)
    _check(sample)
    assert sample.image.shape == (360, 480, 3) and sample.source == "camvid"
    np.testing.assert_array_equal(sample.ignore, label == 11)
    expected = 0
    for c in range(11):
        lab, n = ndimage.label(label == c)
        expected += sum((lab == k).sum() >= 400 for k in range(1, n + 1))
    areas = [int(m.sum()) for m in sample.masks]
    assert len(sample.masks) == expected > 20 and areas == sorted(areas, reverse=True) and min(areas) >= 400
    for mask in sample.masks:
        assert len(np.unique(label[mask])) == 1 and not (mask & (label == 11)).any()
        assert ndimage.label(mask)[1] == 1
    capped = read_sample(root, "camvid", sample_id, max_instances=20).masks
    assert [_key(m) for m in capped] == [_key(m) for m in sample.masks[:20]]
    assert len(read_sample(root, "camvid", sample_id, min_area=5000).masks) < expected
    with pytest.raises(ValueError, match="split"):
        list_ids(root, "camvid", split="validation")


def test_connectivity_ccp_8_camvid_4() -> None:
    label = np.zeros((60, 60), np.uint8)
    label[:30, :30] = 5
    label[30:, 30:] = 5  # two blocks that touch only at a corner
    label[0, 59] = 7  # a region under min_area
    person, *parts = ccp_regions(label, min_area=400)
    assert person[0] == 0 and person[1].sum() == 1801
    assert [(c, int(m.sum())) for c, m in parts] == [(5, 1800)]  # 8-connectivity: one part
    regions = camvid_regions(label, min_area=400)
    assert sorted((c, int(m.sum())) for c, m in regions) == [(0, 899), (0, 900), (5, 900), (5, 900)]  # 4-connectivity
    assert [c for c, _ in camvid_regions(label, min_area=400, max_instances=1)] == [0]  # largest first


# --- images, bad input ---------------------------------------------------------------------------------------------

def test_exif_orientation_applied_and_missing_inputs(tmp_path: Path, samples: Path) -> None:
    horses = tmp_path / "horses"
    for sub in ("rgb", "figure_ground"):
        (horses / sub).mkdir(parents=True)
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise (portrait)
    Image.fromarray(pixels).save(horses / "rgb" / "horse900.jpg", exif=exif.tobytes(), quality=100)
    mask = np.zeros((40, 20), np.uint8)
    mask[:20] = 255  # drawn on the upright (portrait) picture, at twice its size
    Image.fromarray(mask).save(horses / "figure_ground" / "horse900.jpg", quality=100)
    sample = read_sample(horses, "weizmann", "horse900")
    assert sample.image.shape == (20, 10, 3) and sample.image_file is None
    assert sample.image[:5].mean() > 200 > sample.image[-5:].mean()  # the bright stored left edge is now on top
    np.testing.assert_array_equal(sample.masks[0], np.arange(20)[:, None].repeat(10, 1) < 10)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_ids(tmp_path / "nowhere", "weizmann")
    weizmann = tmp_path / "Weizmann"
    (weizmann / "figure_ground").mkdir(parents=True)
    (weizmann / "rgb").symlink_to(samples / "Weizmann" / "rgb")
    with pytest.raises(SampleError, match=r"figure_ground/horse001\.jpg"):
        read_sample(weizmann, "weizmann", "horse001")


# --- benchmarks ----------------------------------------------------------------------------------------------------

def test_region_benchmarks_on_samples(samples: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert {"GrabCut", "Berkeley", "DAVIS", "CCP-parts", "CCP-person", "CamVid-regions"} <= set(BENCHMARKS)
    parts = load_benchmark("CCP-parts", extra_root=samples)
    label_map = scipy.io.loadmat(samples / "CCP" / "annotations" / "pixel-level" / "1004.mat")["groundtruth"]
    assert {i.id.split("#")[0] for i in parts} == {"1004"}  # reserved ids only
    assert len(parts) == len(_expected_parts(label_map)) and all(i.gt.sum() >= 400 for i in parts)
    (person,) = load_benchmark("CCP-person", extra_root=samples)
    assert person.id == "1004"
    np.testing.assert_array_equal(person.gt, label_map != 0)
    regions = load_benchmark("CamVid-regions", extra_root=samples)
    by_frame = {f: [i for i in regions if i.id.split("#")[0] == f] for f in ("0001TP_008550", "Seq05VD_f01710")}
    assert all(len(v) == 20 for v in by_frame.values()) and len(regions) == 40  # both frames have > 20 regions
    first = by_frame["Seq05VD_f01710"]
    label = np.asarray(Image.open(samples / "CamVid" / "testannot" / "Seq05VD_f01710.png"))
    np.testing.assert_array_equal(first[0].ignore, label == 11)
    assert [int(i.gt.sum()) for i in first] == sorted((int(i.gt.sum()) for i in first), reverse=True)
    assert len(load_benchmark("CamVid-regions", extra_root=samples, limit=3)) == 3
    # the extra root: $HF_IIS_EXTRA_ROOT, else <data root>/extra, else a FileNotFoundError naming the variable
    monkeypatch.setenv("HF_IIS_EXTRA_ROOT", str(samples))
    assert len(load_benchmark("CCP-person", data_root=tmp_path)) == 1
    monkeypatch.delenv("HF_IIS_EXTRA_ROOT")
    with pytest.raises(FileNotFoundError, match="HF_IIS_EXTRA_ROOT"):
        load_benchmark("CCP-parts", data_root=tmp_path)
    (tmp_path / "extra").symlink_to(samples)
    assert default_extra_root(tmp_path) == tmp_path / "extra"
    assert len(load_benchmark("CCP-person", data_root=tmp_path)) == 1


# --- leakage guards and the extended corpus -----------------------------------------------------------------------

def test_training_refuses_reserved_slices(samples: Path) -> None:
    for options in ({}, {"subset": "all"}, {"subset": "reserved"}):
        with pytest.raises(ValueError, match="0901-1004"):
            check_training_source(samples / "CCP", "ccp", **options)
    check_training_source(samples / "CCP", "ccp", subset="train")
    with pytest.raises(ValueError, match="reserved"):
        check_training_ids(samples / "CCP", "ccp", ["0900", "0901"], subset="train")
    check_training_ids(samples / "CCP", "ccp", ["0001", "0900"], subset="train")
    with pytest.raises(ValueError, match="CamVid test"):
        check_training_source(samples / "CamVid", "camvid", split="test")
    check_training_source(samples / "CamVid", "camvid", split="val")
    check_training_source(samples / "ECSSD", "ecssd", exclude_file=EXCLUDE)
    with pytest.raises(ValueError, match="excluded"):
        check_training_ids(samples / "ECSSD", "ecssd", ["0001"], exclude_file=EXCLUDE)
    for layout in ("grabcut", "berkeley"):
        with pytest.raises(ValueError, match="benchmark"):
            check_training_source(samples, layout)


def test_corpus_with_extra_root(samples: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    import datasets

    from hf_iis.data.hf_datasets import EXTRA_SOURCES, build_corpus, load_corpus, split_of, validation_score

    datasets.disable_progress_bars()
    extra = tmp_path / "extra"
    for name in ("ECSSD", "CCP", "Weizmann"):
        (extra / name).parent.mkdir(parents=True, exist_ok=True)
        (extra / name).symlink_to(samples / name)
    (extra / "CamVid").mkdir()
    for sub, target in (("train", "train"), ("trainannot", "trainannot"), ("val", "train"), ("valannot", "trainannot")):
        (extra / "CamVid" / sub).symlink_to(samples / "CamVid" / target)  # the samples have no val split
    with pytest.raises(ValueError, match="0901-1004"):
        build_corpus(DATA_ROOT, tmp_path / "bad", sources=[("ccp", samples / "CCP")])
    with pytest.raises(ValueError, match="CamVid test"):
        build_corpus(DATA_ROOT, tmp_path / "bad", sources=[("camvid", samples / "CamVid", {"split": "test"})])
    stats = build_corpus(DATA_ROOT, tmp_path / "corpus", sources=list(EXTRA_SOURCES), extra_root=extra,
                         cache_dir=tmp_path / "scratch")
    assert stats.instances == {"ecssd": 4, "ccp": 3, "weizmann": 4, "camvid": 8} and not stats.skipped
    rows = {s: [(r["source"], r["id"]) for r in load_corpus(tmp_path / "corpus", s, cache_dir=tmp_path / "hf")]
            for s in ("train", "validation") if stats.rows[s]}
    every = [row for split_rows in rows.values() for row in split_rows]
    assert ("ccp", "1004") not in every and ("ecssd", "0001") not in every and len(every) == 19
    for split, split_rows in rows.items():
        for source, sample_id in split_rows:
            if source != "camvid":
                assert split == ("validation" if validation_score(f"{source}/{sample_id}") < 0.05 else "train")
    camvid_ids = list_ids(extra / "CamVid", "camvid")
    assert all(split_of("camvid", i, 0.1, {"split": "train"}) == "train" for i in camvid_ids)
    expected_val = sorted(i for i in camvid_ids if validation_score(f"camvid/{i}") < 0.1)
    assert sorted(i for s, i in rows.get("validation", []) if s == "camvid") == expected_val
    assert [split_of("camvid", i, 0.1, {"split": "val"}) == "validation" for i in camvid_ids] == [
        i in expected_val for i in camvid_ids]
    card = (tmp_path / "corpus" / "README.md").read_text()
    assert "validation_score('<layout>/<id>') < 0.05" in card and "CamVid val-split" in card
