"""The generic folder reader: real subsets of each shared layout, synthetic DAVIS / COCO-JSON fixtures, validation."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from hf_iis.data import LAYOUTS, Sample, SampleError, check_training_source, default_data_root, list_ids, read_folder
from hf_iis.data.layouts import default_extra_root
from tests.conftest import DATA_ROOT, ON_SAMPLES

# the real folders' counts and files: the real data folder, not the shipped samples
needs_data = pytest.mark.skipif(ON_SAMPLES, reason="checks the real benchmark folders, which are missing "
                                "(set HF_IIS_DATA_ROOT; README, Data)")


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _check_sample(sample: Sample) -> None:
    h, w = sample.image.shape[:2]
    assert sample.image.shape == (h, w, 3) and sample.image.dtype == np.uint8
    assert sample.masks and all(m.shape == (h, w) and m.dtype == bool and m.any() for m in sample.masks)
    assert sample.ignore is None or (sample.ignore.shape == (h, w) and sample.ignore.dtype == bool)


@needs_data
def test_grabcut_masks_and_ignore_band_match_files() -> None:
    root = DATA_ROOT / "GrabCut"
    ids = ["106024", "music", "banana1"]  # .jpg, .JPG, .bmp images
    samples = list(read_folder(root, "grabcut", ids=ids))
    assert [s.id for s in samples] == ids and len(list_ids(root, "grabcut")) == 50
    for sample in samples:
        _check_sample(sample)
        image_file = next(p for p in (root / "data_GT").iterdir() if p.stem == sample.id)
        raw = np.asarray(Image.open(root / "boundary_GT" / f"{sample.id}.bmp"))
        assert len(sample.masks) == 1 and sample.source == "grabcut"
        np.testing.assert_array_equal(sample.image, _rgb(image_file))
        np.testing.assert_array_equal(sample.masks[0], raw == 255)
        expected_ignore = raw == 128
        if expected_ignore.any():
            np.testing.assert_array_equal(sample.ignore, expected_ignore)
        else:
            assert sample.ignore is None
    assert any(s.ignore is not None for s in samples)


@needs_data
def test_berkeley_instances_and_thresholded_masks() -> None:
    root = DATA_ROOT / "Berkeley"
    ids = list_ids(root, "berkeley")
    assert len(ids) == 100 and {"189011a", "189011b"} <= set(ids)
    samples = {s.id: s for s in read_folder(root, "berkeley", ids=["189011a", "189011b", "8023"])}
    for sample in samples.values():
        _check_sample(sample)
        raw = np.asarray(Image.open(root / "masks" / f"{sample.id}.png")).astype(int)
        assert len(sample.masks) == 1 and sample.ignore is None
        np.testing.assert_array_equal(sample.masks[0], raw[..., :3].max(axis=2) >= 128)
    # two instances of one image: same pixels, different objects
    np.testing.assert_array_equal(samples["189011a"].image, samples["189011b"].image)
    assert not np.array_equal(samples["189011a"].masks[0], samples["189011b"].masks[0])


@needs_data
def test_coco_mval_instances_and_grayscale_image() -> None:
    root = DATA_ROOT / "COCO_MVal"
    ids = ["airplane00_000000281693", "skateboard02_000000431848"]  # the second image is grayscale
    assert len(list_ids(root, "coco_mval")) == 800
    for sample in read_folder(root, "coco_mval", ids=ids):
        _check_sample(sample)
        raw = np.asarray(Image.open(root / "gt" / f"{sample.id}.png"))
        np.testing.assert_array_equal(sample.masks[0], raw >= 128)
        np.testing.assert_array_equal(sample.image, _rgb(root / "img" / f"{sample.id}.jpg"))
    gray = read_folder(root, "coco_mval", ids=ids[1:])
    assert next(gray).image_file is None  # converted to RGB, so its bytes are not reusable


@needs_data
def test_bsds500_every_region_of_every_annotator() -> None:
    root = DATA_ROOT / "BSDS500"
    assert len(list_ids(root, "bsds500")) == 200
    for sample in read_folder(root, "bsds500", limit=2):
        _check_sample(sample)
        mat = scipy.io.loadmat(root / "groundTruth" / "test" / f"{sample.id}.mat")["groundTruth"]
        h, w = sample.image.shape[:2]
        expected: dict[bytes, np.ndarray] = {}
        for k in range(mat.shape[1]):
            seg = mat[0, k]["Segmentation"][0, 0]
            for label in np.unique(seg):
                region = seg == label
                if region.sum() >= 0.001 * h * w:
                    expected.setdefault(np.packbits(region).tobytes(), region)
        got = [np.packbits(m).tobytes() for m in sample.masks]
        assert len(got) == len(set(got)) == len(expected) > 5
        assert set(got) == set(expected)


def _write_jpg(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return np.asarray(Image.open(path).convert("RGB"))


def test_davis_palette_objects_and_void(tmp_path: Path) -> None:
    image = _write_jpg(tmp_path / "img" / "bear.jpg", 20, 30)
    label = np.zeros((20, 30), np.uint8)
    label[2:8, 3:10] = 1
    label[10:18, 12:25] = 2
    label[0, :] = 255
    palette = Image.fromarray(label, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192])
    (tmp_path / "gt").mkdir()
    palette.save(tmp_path / "gt" / "bear.png")
    # a RITM-style 0/255 grayscale mask is one object
    Image.fromarray(np.where(label == 2, 255, 0).astype(np.uint8)).save(tmp_path / "gt" / "gray.png")
    Image.fromarray(image).save(tmp_path / "img" / "gray.png")
    samples = {s.id: s for s in read_folder(tmp_path, "davis")}
    bear = samples["bear"]
    _check_sample(bear)
    assert len(bear.masks) == 2 and bear.source == "davis"
    np.testing.assert_array_equal(bear.masks[0], label == 1)
    np.testing.assert_array_equal(bear.masks[1], label == 2)
    np.testing.assert_array_equal(bear.ignore, label == 255)
    np.testing.assert_array_equal(bear.image, image)
    assert len(samples["gray"].masks) == 1 and samples["gray"].ignore is None
    np.testing.assert_array_equal(samples["gray"].masks[0], label == 2)


def _rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major runs, starting with background)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"counts": np.diff(np.concatenate([[0], change])).tolist(), "size": list(mask.shape)}


def test_coco_json_polygons_and_crowd_ignore(tmp_path: Path) -> None:
    image = _write_jpg(tmp_path / "images" / "a.jpg", 24, 32)
    _write_jpg(tmp_path / "images" / "b.jpg", 10, 10, seed=1)
    crowd = np.zeros((24, 32), bool)
    crowd[15:20, 20:30] = True
    anns = [
        {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 3, 10, 3, 10, 8, 2, 8]]},
        {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 0, "segmentation": [[12, 10, 18, 10, 18, 20, 12, 20]]},
        {"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 1, "segmentation": _rle(crowd)},
    ]
    coco = {"images": [{"id": 7, "file_name": "a.jpg", "height": 24, "width": 32},
                       {"id": 9, "file_name": "b.jpg", "height": 10, "width": 10}],
            "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    assert list_ids(tmp_path, "coco_json") == ["7"]  # image 9 has no annotation
    (sample,) = read_folder(tmp_path, "coco_json")
    _check_sample(sample)
    first, second = np.zeros((24, 32), bool), np.zeros((24, 32), bool)
    first[3:8, 2:10] = True
    second[10:20, 12:18] = True
    assert len(sample.masks) == 2 and sample.source == "coco_json"
    np.testing.assert_array_equal(sample.masks[0], first)
    np.testing.assert_array_equal(sample.masks[1], second)
    np.testing.assert_array_equal(sample.ignore, crowd)
    np.testing.assert_array_equal(sample.image, image)
    # explicit annotation / image paths work too
    (again,) = read_folder(tmp_path / "elsewhere", "coco_json", annotations=tmp_path / "annotations.json",
                           images=tmp_path / "images")
    np.testing.assert_array_equal(again.masks[1], second)


def _coco_mval_folder(root: Path) -> Path:
    """A tiny coco_mval-layout folder: good, size mismatch, corrupt image, empty mask, grayscale image."""
    (root / "gt").mkdir(parents=True)
    mask = np.zeros((16, 20), np.uint8)
    mask[4:9, 5:12] = 255
    for name in ("good00_000000000001", "mismatch00_000000000002", "corrupt00_000000000003", "empty00_000000000004"):
        _write_jpg(root / "img" / f"{name}.jpg", 16, 20)
        Image.fromarray(mask).save(root / "gt" / f"{name}.png")
    Image.fromarray(np.zeros((16, 21), np.uint8)).save(root / "gt" / "mismatch00_000000000002.png")
    (root / "img" / "corrupt00_000000000003.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(root / "gt" / "empty00_000000000004.png")
    Image.fromarray(np.full((16, 20), 77, np.uint8)).save(root / "img" / "gray00_000000000005.jpg")
    Image.fromarray(mask).save(root / "gt" / "gray00_000000000005.png")
    return root


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    root = _coco_mval_folder(tmp_path)
    with pytest.raises(ValueError, match="mismatch00_000000000002.png") as err:
        list(read_folder(root, "coco_mval", ids=["mismatch00_000000000002"]))
    assert isinstance(err.value, SampleError) and err.value.reason == "size_mismatch"
    with pytest.raises(ValueError, match="corrupt00_000000000003.jpg") as err:
        list(read_folder(root, "coco_mval", ids=["corrupt00_000000000003"]))
    assert err.value.reason == "corrupt_image"
    (empty,) = read_folder(root, "coco_mval", ids=["empty00_000000000004"])
    assert empty.masks == []  # never an all-False mask
    (gray,) = read_folder(root, "coco_mval", ids=["gray00_000000000005"])
    assert gray.image.shape == (16, 20, 3) and (gray.image == gray.image[..., :1]).all()


def test_unknown_layout_raises_keyerror_listing_known() -> None:
    with pytest.raises(KeyError, match="grabcut"):
        LAYOUTS["pascal"]
    with pytest.raises(KeyError, match="bsds500"):
        read_folder(".", "pascal")
    assert {"grabcut", "berkeley", "davis", "coco_mval", "bsds500", "coco_json"} <= set(LAYOUTS)


def test_benchmark_leakage_guard(tmp_path: Path) -> None:
    for layout in ("grabcut", "berkeley", "davis"):
        with pytest.raises(ValueError, match="benchmark"):
            check_training_source(tmp_path, layout)
    with pytest.raises(ValueError, match="benchmark folder"):
        check_training_source(tmp_path / "GrabCut", "coco_mval")
    with pytest.raises(ValueError, match="test split"):
        check_training_source(tmp_path, "bsds500", split="train")
    check_training_source(tmp_path / "COCO_MVal", "coco_mval")
    check_training_source(tmp_path / "BSDS500", "bsds500")


def test_default_data_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_IIS_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    assert default_data_root(fallback=tmp_path / "other") == tmp_path  # the variable wins over a caller's default
    monkeypatch.delenv("HF_IIS_DATA_ROOT")
    assert default_data_root(fallback=tmp_path / "other") == tmp_path / "other"


def test_no_data_root_is_derived_from_the_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $HF_IIS_DATA_ROOT or an explicit folder the library names what to pass instead of guessing a path
    next to where it is installed."""
    monkeypatch.delenv("HF_IIS_DATA_ROOT", raising=False)
    monkeypatch.delenv("HF_IIS_EXTRA_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="HF_IIS_DATA_ROOT"):
        default_data_root()
    with pytest.raises(FileNotFoundError, match="HF_IIS_EXTRA_ROOT"):
        default_extra_root()
    from hf_iis.evaluation.benchmarks import load_benchmark, load_multimask

    with pytest.raises(FileNotFoundError, match="--data-root"):
        load_benchmark("GrabCut")
    with pytest.raises(FileNotFoundError, match="HF_IIS_DATA_ROOT"):
        load_multimask("BSDS500", "bsds500")
    package = Path(__file__).resolve().parents[1] / "hf_iis"
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        assert "shared/data" not in text and '"shared"' not in text, path


def test_reader_modules_import_no_heavy_optional_packages() -> None:
    """`hf_iis.data` must import without datasets / pycocotools / gradio / accelerate (checked on the source)."""
    package = Path(__file__).resolve().parents[1] / "hf_iis" / "data"
    lazy = {"datasets", "pycocotools", "gradio", "accelerate"}
    for path in sorted(package.glob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module level only: function-local imports are lazy
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & lazy, f"{path.name} imports {names & lazy} at module level"
