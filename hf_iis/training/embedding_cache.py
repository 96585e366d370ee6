"""Frozen image embeddings, cached once per augmented view, so the decoder and heads train without an image pass.

The image side (EfficientNet-Lite + the frozen U²-Net-p branch) is most of a training step's cost and, once frozen,
gives the same embedding for the same view every time. `build_embedding_cache` runs it once for `views_per_image`
augmented views of every corpus image (view 0: the plain image; views ≥ 1: the training augmentation — random crop,
D4 / rescale view, photometric jitter — drawn from a generator seeded by (seed, view, image id), so a rebuild gives
the same views) and writes, per shard of images, one safetensors file:

    features (n, D, S/8, S/8), low_level (n, d, S/4, S/4), fine (n, 8, S/2, S/2), saliency (n, 1, S/2, S/2): float16
    masks (sum M_i, S·S/8) uint8: each view's masks in the model-input frame, bit-packed; mask_count (n,) int64
    valid (n, S·S/8) uint8: inside the image and not an ignore pixel, bit-packed

`cache_info.json` records what the cache was built from (teacher weights' sha256, backbone, saliency encoder, input
size, the saliency branch's frame and input size, corpus fingerprint, split, views, seed, augmentation);
`check_cache_info` refuses a cache whose record differs from what a run expects, naming the file and the first
differing key. Shards already written are skipped, so an interrupted build resumes where it stopped. Rows are visited
in a random order drawn from `seed` (the corpus lists its sources one after the other), so the shards written so far
are always a uniform sample of the corpus and training can start before the build ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..data.rows import BadRow, decode_row
from ..models.signed_click.embeddings import SignedClickImageEmbeddings
from .augment import AugmentParams, InputFormat, augment, saliency_frame_inputs

CACHE_INFO = "cache_info.json"
EMBEDDING_FIELDS = ("features", "low_level", "fine", "saliency")
FORMAT_VERSION = 2  # 2: rows in a seeded random order, so any prefix of shards is a uniform sample


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def corpus_fingerprint(corpus: str | Path) -> str:
    """sha256 over the corpus's parquet file names and sizes and its dataset_info.json: changes with any rebuild
    that changes the data, without reading gigabytes."""
    root = Path(corpus)
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.parquet")) + sorted(root.glob("*.json")):
        digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
    info = root / "dataset_info.json"
    if info.is_file():
        digest.update(info.read_bytes())
    return digest.hexdigest()


@dataclass
class CacheInfo:
    """What a cache was built from; two caches (or a cache and a run) agree when these fields are equal."""

    teacher_sha256: str
    backbone: str
    saliency_encoder: str | None
    image_size: int
    corpus_fingerprint: str
    split: str
    views_per_image: int
    seed: int
    augment: dict[str, Any] = field(default_factory=dict)
    max_masks_per_view: int = 8
    format_version: int = FORMAT_VERSION
    first_view: int = 0  # 1: no plain view (a cache of augmented views only, e.g. object-box crops)
    # what the saliency branch saw (config.saliency_frame): "stretched" caches hold outputs of each augmented view's
    # photo stretched before padding; caches built before the option read as the padded frame at 256
    saliency_frame: str = "padded"
    saliency_input_size: int = 256
    # True: every row's masks are [answer, click region] (self-training's pseudo-labels with their own clicks,
    # `self_training_photos.write_corpus(anchored=True)`); a view keeps both or is left out
    anchored: bool = False

    @classmethod
    def for_run(cls, teacher: str | Path, config, corpus: str | Path, split: str, views_per_image: int, seed: int,
                augment_params: AugmentParams, max_masks_per_view: int = 8, first_view: int = 0,
                anchored: bool = False) -> CacheInfo:
        augment = _augment_record(augment_params)
        return cls(teacher_sha256=file_sha256(Path(teacher) / "model.safetensors"), backbone=config.backbone,
                   saliency_encoder=config.saliency_encoder, image_size=int(config.image_size),
                   corpus_fingerprint=corpus_fingerprint(corpus), split=split, views_per_image=views_per_image,
                   seed=seed, augment=augment, max_masks_per_view=max_masks_per_view, first_view=first_view,
                   saliency_frame=getattr(config, "saliency_frame", "padded"),
                   saliency_input_size=int(getattr(config, "saliency_input_size", 256)), anchored=anchored)


def read_cache_info(folder: str | Path) -> dict[str, Any]:
    """`folder/cache_info.json` as a dict; ValueError naming the file when it is missing or not JSON."""
    path = Path(folder) / CACHE_INFO
    if not path.is_file():
        raise ValueError(f"{path} not found: {folder} is not an embedding cache (build it with "
                         "scripts/train_decoder.py cache)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not readable JSON ({error})") from None


def check_cache_teacher(folder: str | Path, teacher: str | Path, teacher_sha: str) -> dict[str, Any]:
    """The cache's record (`folder/cache_info.json`), refused when it was built from another model than `teacher`
    (whose model.safetensors hashes to `teacher_sha`): embeddings of one model are no input for another."""
    path = Path(folder) / CACHE_INFO
    info = read_cache_info(folder)
    built = str(info.get("teacher_sha256"))
    if built != teacher_sha:
        raise ValueError(f"{path}: the cache was built from another model (teacher_sha256 {built[:12]}…), not from "
                         f"{teacher} ({teacher_sha[:12]}…): rebuild it from that model")
    return info


def check_cache_info(folder: str | Path, expected: CacheInfo, keys: tuple[str, ...] | None = None) -> None:
    """Raise `ValueError` naming `folder/cache_info.json` and the first key (of `keys`, default all) whose recorded
    value differs from `expected`."""
    path = Path(folder) / CACHE_INFO
    recorded = read_cache_info(folder)
    wanted = asdict(expected)
    # keys added after a cache was built read as their defaults (a cache built before object crops existed had none)
    defaults = {f.name: f.default for f in fields(CacheInfo) if f.default is not MISSING}
    augment = {**_augment_record(AugmentParams()), **(recorded.get("augment") or {})}
    recorded = {**defaults, **recorded, "augment": augment}
    for key in keys or tuple(wanted):
        if recorded.get(key) != wanted[key]:
            raise ValueError(f"{path}: {key} is {recorded.get(key)!r}, expected {wanted[key]!r} (the cache was built "
                             f"from another {key.replace('_', ' ')}; rebuild it into a new folder)")


def _augment_record(params: AugmentParams) -> dict[str, Any]:
    """The augmentation as a cache record holds it (JSON has no tuples)."""
    record = asdict(params)
    record["object_crop_margin"] = list(record["object_crop_margin"])
    return record


def _pack(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits.reshape(bits.shape[0], -1).astype(bool), axis=1)


def _unpack(packed: torch.Tensor, size: int) -> torch.Tensor:
    bits = np.unpackbits(packed.numpy(), axis=1, count=size * size)
    return torch.from_numpy(bits.reshape(-1, size, size).astype(bool))


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.safetensors"


def view_sample(row: dict[str, Any], view: int, info: CacheInfo, input_format: InputFormat):
    """The augmented view `view` of one corpus row (view 0: no augmentation): (pixel_values, masks, valid) or None
    when the row is bad or the view kept no mask; with `info.saliency_frame="stretched"` also the saliency branch's
    input (the view's crop of the original photo stretched, with the view's jitter) and the photo's box in the view's
    frame."""
    key = f"{row.get('source', '')}/{row.get('id', '')}".encode()
    rng = np.random.default_rng([info.seed, view, zlib.crc32(key)])
    try:
        image, masks, ignore, _ = decode_row(row, info.max_masks_per_view, rng)
    except BadRow:
        return None
    if masks.shape[0] == 0:
        return None
    params = AugmentParams.no_augmentation() if view == 0 else AugmentParams(**info.augment)
    stretched_size = info.saliency_input_size if info.saliency_frame == "stretched" else None
    aug = augment(image, masks, ignore, params, input_format, rng, min_mask_pixels=16, stretched_size=stretched_size)
    counts = (aug.masks & aug.valid[None]).reshape(aug.masks.shape[0], -1).sum(1)
    keep = counts >= 16
    if info.anchored:  # [answer, click region]: the region needs one clickable pixel; a view without it is left out
        if counts.shape[0] != 2 or counts[0] < 16 or counts[1] < 1:
            return None
        keep = np.ones(2, dtype=bool)
    if not keep.any():
        return None
    if info.saliency_frame != "stretched":
        return aug.pixel_values, aug.masks[keep], aug.valid
    stretched, box = saliency_frame_inputs(aug, info.saliency_input_size)
    return aug.pixel_values, aug.masks[keep], aug.valid, stretched, box


@torch.inference_mode()
def build_embedding_cache(model, rows, folder: str | Path, info: CacheInfo, input_format: InputFormat,
                          images_per_shard: int = 32, batch_size: int = 4, progress=None) -> int:
    """Encode every view of every row of `rows` (a sequence of corpus rows) into shards under `folder`; returns the
    number of shards written now (shards already there are kept: the build resumes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / CACHE_INFO
    if info_path.is_file():
        check_cache_info(folder, info)
    else:
        info_path.write_text(json.dumps(asdict(info), indent=2, sort_keys=True) + "\n")
    model.eval()
    written = 0
    n_shards = (len(rows) + images_per_shard - 1) // images_per_shard
    order = np.random.default_rng(info.seed).permutation(len(rows))
    for shard in range(n_shards):
        target = shard_path(folder, shard)
        if target.is_file():
            if progress is not None:
                progress.update(min(images_per_shard, len(rows) - shard * images_per_shard))
            continue
        samples = []
        for i in order[shard * images_per_shard:(shard + 1) * images_per_shard]:
            row = rows[int(i)]
            for view in range(info.first_view, info.first_view + info.views_per_image):
                sample = view_sample(row, view, info, input_format)
                if sample is not None:
                    samples.append(sample)
            if progress is not None:
                progress.update(1)
        if samples:
            _write_shard(model, samples, target, batch_size)
            written += 1
    return written


def _write_shard(model, samples, target: Path, batch_size: int) -> None:
    fields: dict[str, list[torch.Tensor]] = {name: [] for name in EMBEDDING_FIELDS}
    for start in range(0, len(samples), batch_size):
        batch = samples[start:start + batch_size]
        pixels = torch.stack([s[0] for s in batch])
        frame = {}
        if len(batch[0]) > 3:  # the stretched saliency frame: the branch's own input and the photo's box
            frame = {"saliency_pixel_values": torch.stack([s[3] for s in batch]).to(model.device, model.dtype),
                     "saliency_boxes": torch.stack([s[4] for s in batch])}
        embeddings = model.encode_image(pixels.to(model.device, model.dtype), **frame)
        for name in EMBEDDING_FIELDS:
            value = getattr(embeddings, name)
            if value is None:
                raise ValueError(f"the model's embeddings have no {name!r}: the cache needs a saliency branch")
            fields[name].append(value.to("cpu", torch.float16))
    tensors = {name: torch.cat(parts) for name, parts in fields.items()}
    tensors["masks"] = torch.from_numpy(np.concatenate([_pack(s[1]) for s in samples]))
    tensors["mask_count"] = torch.tensor([s[1].shape[0] for s in samples], dtype=torch.int64)
    tensors["valid"] = torch.from_numpy(np.concatenate([_pack(s[2][None]) for s in samples]))
    tmp = target.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, target)  # a killed build leaves no half-written shard


@dataclass
class CachedViews:
    """The views of one or more shards in memory: embeddings (float16), masks and valid maps (bool, S x S)."""

    embeddings: SignedClickImageEmbeddings
    masks: list[torch.Tensor]
    valid: torch.Tensor
    shard_sizes: list[int] = field(default_factory=list)  # views per loaded shard, in the order of the paths

    def __len__(self) -> int:
        return self.valid.shape[0]


def load_shards(paths: list[Path], size: int) -> CachedViews:
    parts = [load_file(str(p)) for p in paths]
    fields = {name: torch.cat([p[name] for p in parts]) for name in EMBEDDING_FIELDS}
    masks: list[torch.Tensor] = []
    for part in parts:
        unpacked = _unpack(part["masks"], size)
        offsets = np.concatenate([[0], np.cumsum(part["mask_count"].numpy())])
        masks += [unpacked[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    valid = torch.cat([_unpack(p["valid"], size) for p in parts])
    sizes = [int(p["mask_count"].shape[0]) for p in parts]
    return CachedViews(SignedClickImageEmbeddings(**fields), masks, valid, sizes)


def list_shards(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("shard-*.safetensors"))
