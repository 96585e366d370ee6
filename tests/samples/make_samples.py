"""Write the test samples: small synthetic photos-with-objects and their masks, in the benchmark folders' layouts.

    python tests/samples/make_samples.py        # rewrites GrabCut/, Berkeley/, COCO_MVal/, BSDS500/ here

Made for the tests (licence: the project's own), so the tests that read a data folder run on a fresh clone where
the real benchmarks are not beside the repository (tests/conftest.py falls back to this folder). Every picture is a
smooth random background with one to three textured shapes; each mask is exactly a shape. Deterministic (seeded), so
rerunning it rewrites the same files. Layouts as `hf_iis/data/layouts.py` reads them:

    GrabCut/data_GT/<id>.jpg, GrabCut/boundary_GT/<id>.bmp      255 object, 128 ignore band (2 px), 0 background
    Berkeley/images/<id>.jpg, Berkeley/masks/<id>.png           0/255
    COCO_MVal/img/<class><nn>_<id>.jpg, COCO_MVal/gt/<same>.png  0/255, one instance per file
    BSDS500/images/test/<id>.jpg, BSDS500/groundTruth/test/<id>.mat   groundTruth{k}.Segmentation label maps
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.io import savemat

HERE = Path(__file__).resolve().parent
SIZE = (320, 240)  # (W, H), about the size of the benchmarks' 481x321


def background(rng: np.random.Generator, size=SIZE) -> np.ndarray:
    w, h = size
    low = ndimage.zoom(rng.random((6, 8, 3)), (h / 6, w / 8, 1), order=3)[:h, :w]
    image = 60 + 120 * low + rng.normal(0, 6, (h, w, 3))
    return image


def shape_mask(rng: np.random.Generator, kind: str, size=SIZE) -> np.ndarray:
    """An object of `kind` ("ellipse", "box", "blob") of 8-30 % of the picture, inside it with a margin."""
    w, h = size
    rows, cols = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.3, 0.7) * w
    ry, rx = rng.uniform(0.15, 0.3) * h, rng.uniform(0.12, 0.28) * w
    if kind == "ellipse":
        return ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1
    if kind == "box":
        angle = rng.uniform(0, np.pi)
        u = (cols - cx) * np.cos(angle) + (rows - cy) * np.sin(angle)
        v = -(cols - cx) * np.sin(angle) + (rows - cy) * np.cos(angle)
        return (np.abs(u) <= rx) & (np.abs(v) <= ry * 0.7)
    field = ndimage.gaussian_filter(rng.random((h, w)), 6)
    field = (field - field.mean()) / field.std()
    blob = (((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.3) & (field > -0.6)
    labels, _ = ndimage.label(blob)
    return labels == labels[int(cy), int(cx)] if labels[int(cy), int(cx)] else blob


def paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> None:
    colour = rng.uniform(20, 235, 3)
    texture = ndimage.gaussian_filter(rng.normal(0, 18, mask.shape), 1.5)[..., None]
    image[mask] = (colour + texture)[mask]


def scene(seed: int, kinds: tuple[str, ...], size=SIZE) -> tuple[np.ndarray, list[np.ndarray]]:
    """A picture and one mask per visible object (later objects occlude earlier ones)."""
    rng = np.random.default_rng(seed)
    image = background(rng, size)
    masks = []
    for kind in kinds:
        mask = shape_mask(rng, kind, size)
        paint(rng, image, mask)
        masks = [m & ~mask for m in masks] + [mask]
    return np.clip(image, 0, 255).astype(np.uint8), [m for m in masks if m.sum() > 50]


def save(image: np.ndarray, path: Path, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **kwargs)


def grabcut() -> None:
    for n, (seed, kind) in enumerate([(1, "ellipse"), (2, "blob"), (3, "box")]):
        image, masks = scene(seed, (kind,))
        name = f"synth{n + 1}"
        save(image, HERE / "GrabCut" / "data_GT" / f"{name}.jpg", quality=90)
        mask = masks[-1]
        label = np.where(mask, 255, 0).astype(np.uint8)
        if n:  # the ignore band around the boundary, as 42 of GrabCut's 50 masks have it (the first has none)
            band = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_erosion(mask, iterations=2)
            label[band] = 128
        save(label, HERE / "GrabCut" / "boundary_GT" / f"{name}.bmp")


def berkeley() -> None:
    for n, (seed, kinds) in enumerate([(11, ("box", "ellipse")), (12, ("blob",))]):
        image, masks = scene(seed, kinds)
        name = f"synth{n + 1}"
        save(image, HERE / "Berkeley" / "images" / f"{name}.jpg", quality=92)
        save(np.where(masks[-1], 255, 0).astype(np.uint8), HERE / "Berkeley" / "masks" / f"{name}.png")


CLASSES = {"ellipse": "apple", "box": "book", "blob": "cloud"}


def coco_mval() -> None:
    count = 0
    for seed, kinds in [(21, ("ellipse", "box")), (22, ("blob", "ellipse")), (23, ("box", "blob", "ellipse")),
                        (24, ("ellipse",))]:
        image, masks = scene(seed, kinds)
        for kind, mask in zip(kinds, masks):
            count += 1
            name = f"{CLASSES[kind]}{count:02d}_{seed:06d}"  # sorted, an apple (a large ellipse) comes first
            save(image, HERE / "COCO_MVal" / "img" / f"{name}.jpg", quality=92)
            save(np.where(mask, 255, 0).astype(np.uint8), HERE / "COCO_MVal" / "gt" / f"{name}.png")


def bsds500() -> None:
    for seed in (31, 32):
        image, masks = scene(seed, ("ellipse", "box", "blob"))
        name = f"{seed:06d}"
        save(image, HERE / "BSDS500" / "images" / "test" / f"{name}.jpg", quality=92)
        fine = np.zeros(image.shape[:2], np.uint16)
        for k, mask in enumerate(masks, start=1):
            fine[mask] = k + 1
        fine[fine == 0] = 1
        coarse = np.where(fine > 1, 2, 1).astype(np.uint16)  # a second annotator: objects merged
        truth = np.empty((1, 2), dtype=object)
        for k, seg in enumerate((fine, coarse)):
            truth[0, k] = {"Segmentation": seg, "Boundaries": np.zeros_like(seg, dtype=np.uint8)}
        path = HERE / "BSDS500" / "groundTruth" / "test" / f"{name}.mat"
        path.parent.mkdir(parents=True, exist_ok=True)
        savemat(path, {"groundTruth": truth}, do_compression=True)


if __name__ == "__main__":
    grabcut()
    berkeley()
    coco_mval()
    bsds500()
