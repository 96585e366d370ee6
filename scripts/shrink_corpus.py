"""Re-encode a parquet mask corpus smaller (longest side, JPEG quality), keeping its schema, splits and README.

Used to move the training corpus to a GPU machine under a transfer limit: stage 2 of the default model trained on
`data_cache/corpus` re-encoded with `--max-side 448 --quality 85` (39 MB instead of 140 MB). Training crops and
resizes to 320 px, so the smaller source costs little. Masks are resized with nearest-neighbour sampling.

    python scripts/shrink_corpus.py data_cache/corpus data_cache/corpus_448 --max-side 448 --quality 85
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm.auto import tqdm


def _new_size(size: tuple[int, int], max_side: int) -> tuple[int, int] | None:
    scale = max_side / max(size)
    return (round(size[0] * scale), round(size[1] * scale)) if scale < 1 else None


def _shrink(data: bytes, max_side: int, mode: str, resample: Image.Resampling, fmt: str, **save) -> bytes:
    image = Image.open(io.BytesIO(data))
    size = _new_size(image.size, max_side)
    if size is None:
        return data
    out = io.BytesIO()
    image.convert(mode).resize(size, resample).save(out, fmt, **save)
    return out.getvalue()


def shrink_image(data: bytes, max_side: int, quality: int) -> bytes:
    return _shrink(data, max_side, "RGB", Image.Resampling.BICUBIC, "JPEG", quality=quality)


def shrink_mask(data: bytes | None, max_side: int) -> bytes | None:
    if data is None:
        return None
    return _shrink(data, max_side, "L", Image.Resampling.NEAREST, "PNG", optimize=True)


def shrink_corpus(src: Path, dst: Path, max_side: int, quality: int) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for shard in tqdm(sorted(src.glob("*.parquet")), desc="shards"):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            row["image"] = {"bytes": shrink_image(row["image"]["bytes"], max_side, quality), "path": None}
            row["masks"] = [{"bytes": shrink_mask(m["bytes"], max_side), "path": None} for m in row["masks"]]
            if row.get("ignore") is not None:
                row["ignore"] = {"bytes": shrink_mask(row["ignore"]["bytes"], max_side), "path": None}
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), dst / shard.name)
    for name in ("README.md", "dataset_info.json"):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--max-side", type=int, default=448)
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()
    if not any(args.src.glob("*.parquet")):
        parser.error(f"no parquet shards in {args.src}")
    shrink_corpus(args.src, args.dst, args.max_side, args.quality)


if __name__ == "__main__":
    main()
