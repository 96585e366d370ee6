"""Pictures the Space shows: probability and uncertainty maps with a colour legend, hint cards, upsampled masks, and
the atomic write of every picture into Gradio's cache."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image, ImageDraw, ImageFont

OUTPUT_NAMES = ("state", "canvas", "probability", "uncertainty", "mask", "answers", "status", "details")
LEGEND_MIN_WIDTH = 320  # a legend narrower than this cannot hold its labels


def upsample(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) probabilities -> (H, W) at `size` = (W, H), bilinear."""
    if probabilities.shape[::-1] == tuple(size):
        return probabilities.astype(np.float32)
    resized = Image.fromarray(probabilities.astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def colour(values: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """Values in [0, vmax] -> (..., 3) uint8 viridis colours (the maps and their legend share this)."""
    from matplotlib import colormaps

    scaled = np.clip(np.asarray(values, dtype=np.float32) / max(float(vmax), 1e-6), 0.0, 1.0)
    return (np.asarray(colormaps["viridis"](scaled))[..., :3] * 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def legend_strip(width: int, vmax: float, title: str, low: str, high: str) -> Image.Image:
    """A colour bar from 0 to `vmax` with its end values, what they mean (`low`, `high`) and a title."""
    width = max(int(width), LEGEND_MIN_WIDTH)
    size = int(np.clip(width / 45, 13, 28))
    pad, bar = size // 2, int(size * 1.2)
    strip = Image.new("RGB", (width, pad + size + pad // 2 + bar + pad // 2 + size + pad), "white")
    draw = ImageDraw.Draw(strip)
    font = _font(size)
    draw.text((width // 2, pad), title, fill="black", font=font, anchor="mt")
    top = pad + size + pad // 2
    ramp = colour(np.linspace(0.0, vmax, width - 2 * pad)[None].repeat(bar, axis=0), vmax)
    strip.paste(Image.fromarray(ramp), (pad, top))
    draw.rectangle([pad - 1, top - 1, width - pad, top + bar], outline=(90, 90, 90))
    labels_top = top + bar + pad // 2
    draw.text((pad, labels_top), f"0 · {low}", fill="black", font=font, anchor="la")
    draw.text((width - pad, labels_top), f"{high} · {_number(vmax)}", fill="black", font=font, anchor="ra")
    return strip


def _number(value: float) -> str:
    return "1" if value == 1.0 else f"{value:.2g}"


def with_legend(image: Image.Image, legend: Image.Image) -> Image.Image:
    """`image` with `legend` below it, on white (the wider of the two sets the width)."""
    width = max(image.width, legend.width)
    out = Image.new("RGB", (width, image.height + legend.height), "white")
    out.paste(image, ((width - image.width) // 2, 0))
    out.paste(legend, ((width - legend.width) // 2, image.height))
    return out


def probability_picture(probabilities: np.ndarray) -> Image.Image:
    """The probability map on the fixed 0..1 scale, with its legend."""
    legend = legend_strip(probabilities.shape[1], 1.0, "P(object)", "background", "object")
    return with_legend(Image.fromarray(colour(probabilities, 1.0)), legend)


def uncertainty_picture(uncertainty: np.ndarray) -> Image.Image:
    """The uncertainty map scaled to its own peak (a spread is small next to 1), with a legend naming the peak."""
    peak = float(np.max(uncertainty)) if uncertainty.size else 0.0
    vmax = peak if peak > 0 else 1.0
    legend = legend_strip(uncertainty.shape[1], vmax, "uncertainty (spread of the estimates)", "agree", "disagree")
    return with_legend(Image.fromarray(colour(uncertainty, vmax)), legend)


def hint_card(text: str, width: int = 480) -> Image.Image:
    """A light-grey card with `text` wrapped on it: what a map box shows instead of staying empty."""
    font = _font(18)
    words, lines, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if font.getlength(trial) > width - 40 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    card = Image.new("RGB", (width, 40 + 26 * len(lines)), (243, 244, 246))
    draw = ImageDraw.Draw(card)
    for index, text_line in enumerate(lines):
        draw.text((20, 20 + 26 * index), text_line, fill=(55, 65, 81), font=font)
    return card


def save_to_cache(image: Image.Image, name: str, format: str = "png") -> str:
    """Write `image` into Gradio's cache as <cache>/<content hash>/<name>.<format>, atomically.

    Gradio's own `save_pil_to_cache` rewrites a content-addressed file in place, so two visitors (or two API calls)
    producing the same picture at once can be served a half-written file; a staged write plus rename cannot.
    """
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    data = buffer.getvalue()
    folder = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest()[:40]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{format}"
    if not path.is_file():
        descriptor, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    return str(path)


def as_cached_files(handler: Callable, names: tuple[str, ...] = OUTPUT_NAMES) -> Callable:
    """Wrap a UI handler so that the PIL images it returns reach Gradio as files written by `save_to_cache`; the
    outputs are the last len(out) of `names` (file names, and the format: PNG for the mask, WebP otherwise)."""

    def convert(value, name):
        if isinstance(value, Image.Image):
            return save_to_cache(value, name, "png" if name == "mask" else "webp")
        if isinstance(value, dict) and isinstance(value.get("value"), Image.Image):
            return {**value, "value": convert(value["value"], name)}
        return value

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        out = handler(*args, **kwargs)
        if not isinstance(out, tuple):  # a handler with one output returns it alone
            return convert(out, names[-1])
        return tuple(convert(value, name) for value, name in zip(out, names[len(names) - len(out):]))

    return wrapper
