"""Mask overlays for people: the mask tinted over the image, its outline, and the clicks (green +, red −)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
POSITIVE_COLOR = (40, 200, 60)
NEGATIVE_COLOR = (230, 40, 40)


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    clicks=(),
    color: tuple[int, int, int] = (30, 144, 255),
    alpha: float = 0.45,
) -> Image.Image:
    """(H, W, 3) uint8 image + (H, W) bool mask (+ clicks [(x, y, sign)]) -> RGB PIL image."""
    mask = np.asarray(mask).astype(bool)
    out = np.asarray(image, dtype=np.float32).copy()
    tint = np.asarray(color, dtype=np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * tint
    # two erosions by the 3x3 cross, pixels outside the image counting as background (scipy's binary_erosion)
    inner = cv2.erode(mask.astype(np.uint8), _CROSS, iterations=2, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    edge = mask & ~inner.astype(bool)
    out[edge] = tint
    canvas = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    radius = max(4, round(0.012 * max(canvas.size)))
    for x, y, sign in clicks:
        fill = POSITIVE_COLOR if sign > 0 else NEGATIVE_COLOR
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill, outline=(255, 255, 255), width=2)
    return canvas


def probability_image(probabilities: np.ndarray) -> Image.Image:
    """(H, W) values in [0, 1] -> a viridis-coloured RGB image (for probability or uncertainty maps)."""
    from matplotlib import colormaps

    values = np.asarray(probabilities, dtype=np.float32)
    peak = float(values.max()) if values.size else 1.0
    scaled = values if peak <= 1.0 and values.min() >= 0 and peak > 0.5 else values / max(peak, 1e-6)
    rgba = colormaps["viridis"](np.clip(scaled, 0, 1))
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8))
