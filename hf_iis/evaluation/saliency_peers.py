"""Saliency baselines as peers: U²-Net-p / U²-Net's own salient-object mask, with no click and with one rule.

Two peers per net (registered in :data:`hf_iis.evaluation.peers.PEERS` as ``u2netp_zero``, ``u2netp_component``,
``u2net_zero``, ``u2net_component``), both implementing :class:`~hf_iis.evaluation.segmenters.Segmenter`:

* **zero-click** (:class:`ZeroClickSaliency`): the net's mask, whatever the clicks.
* **click-component** (:class:`ClickComponentSaliency`): no learning, only connected components of that mask
  (:func:`component_mask` states the rule).

The net's mask is computed the way rembg runs these exports: the whole image resized to 320×320 (PIL Lanczos,
aspect ratio not kept), RGB scaled by ``image / image.max()``, ImageNet mean / std, one forward of
:func:`hf_iis.backbones.u2net.u2net_from_onnx`; output d0 (the fused map) is min-max normalised to ``[0, 1]``, resized
back to the image bilinearly, and thresholded ``>= 0.5`` (:func:`~hf_iis.evaluation.metrics.binarize`). The mask is
computed once per image (``set_image``) and kept in a process-wide cache keyed by the net and a hash of the pixels,
so the zero-click and click-component peers of one net, and the many instances of one image, share one forward.

Weights: the ONNX exports found by :func:`hf_iis.backbones.u2net_weights.find_u2net_onnx`; reading them needs the
``onnx``
package (the ``eval`` and ``train`` extras). Clicks are ``(x, y, sign)`` with ``x`` = column, ``y`` = row,
original pixels.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import Any

import cv2
import numpy as np

from hf_iis.evaluation.metrics import binarize
from hf_iis.utils.clicker import Click

__all__ = [
    "SALIENCY_SIZE",
    "SALIENCY_NETS",
    "SALIENCY_PEERS",
    "ZeroClickSaliency",
    "ClickComponentSaliency",
    "component_mask",
    "selected_components",
    "label_components",
    "saliency_input",
    "saliency_mask",
    "saliency_mask_from_map",
]

SALIENCY_SIZE = 320
"""Side of the square input the published exports were trained and exported at."""

SALIENCY_NETS = {"u2netp": "U²-Net-p", "u2net": "U²-Net"}
"""Variant → display name."""

_NETS: dict[str, Any] = {}
_MASKS: OrderedDict[tuple[str, str, int, int], np.ndarray] = OrderedDict()
_MAX_CACHED_MASKS = 4096  # packed bits: ~50 KB for a 960×720 image, so at most ~200 MB


def saliency_input(image: np.ndarray) -> np.ndarray:
    """``(1, 3, 320, 320)`` float32 net input from an ``(H, W, 3)`` uint8 RGB image (see the module doc)."""
    from PIL import Image

    from hf_iis.backbones.u2net import U2NET_MEAN, U2NET_STD

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    small = np.asarray(Image.fromarray(image.astype(np.uint8)).resize((SALIENCY_SIZE, SALIENCY_SIZE),
                                                                     Image.LANCZOS), dtype=np.float32)
    small = small / max(float(small.max()), 1e-6)
    small = (small - np.array(U2NET_MEAN, np.float32)) / np.array(U2NET_STD, np.float32)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None])


def saliency_mask_from_map(d0: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool mask from the net's ``(h, w)`` d0 map: min-max normalised, resized bilinearly, ``>= 0.5``."""
    d0 = np.asarray(d0, dtype=np.float32)
    lo, hi = float(d0.min()), float(d0.max())
    norm = (d0 - lo) / (hi - lo) if hi > lo else np.zeros_like(d0)
    h, w = shape
    return binarize(cv2.resize(norm, (w, h), interpolation=cv2.INTER_LINEAR))


def _net(variant: str) -> Any:
    """The torch U²-Net(-p) with the published weights, loaded once per process."""
    if variant not in SALIENCY_NETS:
        raise ValueError(f"unknown saliency net {variant!r}; choose one of {sorted(SALIENCY_NETS)}")
    if variant not in _NETS:
        from hf_iis.backbones.u2net import u2net_from_onnx
        from hf_iis.backbones.u2net_weights import find_u2net_onnx

        _NETS[variant] = u2net_from_onnx(find_u2net_onnx(variant), variant)
    return _NETS[variant]


def saliency_mask(image: np.ndarray, variant: str = "u2netp") -> np.ndarray:
    """The net's ``(H, W)`` bool salient-object mask of an ``(H, W, 3)`` uint8 RGB image (cached per image)."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    key = (variant, hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest(), h, w)
    if key in _MASKS:
        _MASKS.move_to_end(key)
        return np.unpackbits(_MASKS[key], count=h * w).reshape(h, w).astype(bool)
    import torch

    net = _net(variant)
    with torch.inference_mode():
        d0 = net(torch.from_numpy(saliency_input(image))).saliency[0, 0].numpy()
    mask = saliency_mask_from_map(d0, (h, w))
    _MASKS[key] = np.packbits(mask.ravel())
    while len(_MASKS) > _MAX_CACHED_MASKS:
        _MASKS.popitem(last=False)
    return mask


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Connected components of a bool mask: ``(H, W)`` int32 labels (0 = background, 1..n) and ``n``."""
    n, labels = cv2.connectedComponents(np.asarray(mask, dtype=np.uint8), connectivity=connectivity,
                                        ltype=cv2.CV_32S)
    return labels, n - 1


def _label_at(labels: np.ndarray, click: Click) -> int:
    h, w = labels.shape
    row = min(max(int(round(click.y)), 0), h - 1)
    col = min(max(int(round(click.x)), 0), w - 1)
    return int(labels[row, col])


def selected_components(labels: np.ndarray, n: int, clicks: Sequence[Click]) -> set[int]:
    """The component labels :func:`component_mask` keeps (see there), from ``labels`` / ``n`` of the base mask."""
    selected = set(range(1, n + 1))  # before any click: the whole (zero-click) mask
    for i, click in enumerate(clicks):
        lab = _label_at(labels, click)
        if i == 0 and click.sign > 0:
            selected = {lab} if lab else selected  # the component at the first click; the whole mask on a miss
        elif click.sign > 0 and lab and lab not in selected:
            selected.add(lab)
        elif click.sign < 0 and lab in selected:
            selected.discard(lab)
    return selected


def component_mask(mask: np.ndarray, clicks: Sequence[Click], connectivity: int = 8,
                   labels: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The click-component rule: a union of connected components of the base ``mask``, chosen by the clicks.

    Components are 8-connected by default (``connectivity=4`` for 4-connectivity). The clicks are read in order,
    each at its pixel ``(round(y), round(x))``, starting from the whole base mask:

    1. A **positive first click** selects the one component that holds it; when it falls outside the base mask
       (on no component) the whole base mask is kept.
    2. Every **later positive click** that falls on a component not currently selected adds that component; a
       positive click on the base mask's background adds nothing (there is no component under it).
    3. Every **negative click** (also a negative first click) on a currently selected component removes that
       component; a negative click outside the current mask changes nothing.

    The result depends only on the base mask and the clicks (not on a previous prediction); it is always a union
    of whole components, so a click can never split or grow a component.

    Args:
        mask: ``(H, W)`` bool base mask (the saliency net's mask).
        clicks: the clicks so far, in order.
        connectivity: 8 or 4.
        labels: ``label_components(mask, connectivity)`` when already computed (the peers cache it per image).

    Returns:
        ``(H, W)`` bool mask.
    """
    labels_, n = labels if labels is not None else label_components(mask, connectivity)
    keep = np.zeros(n + 1, dtype=bool)
    keep[sorted(selected_components(labels_, n, clicks))] = True
    keep[0] = False
    return keep[labels_]


class ZeroClickSaliency:
    """The saliency net's own mask, ignoring the clicks (``variant`` ``"u2netp"`` or ``"u2net"``).

    The net is loaded at construction: ``FileNotFoundError`` when its ONNX file is missing, ``ImportError``
    without the ``onnx`` package."""

    def __init__(self, variant: str = "u2netp", name: str | None = None) -> None:
        if variant not in SALIENCY_NETS:
            raise ValueError(f"unknown saliency net {variant!r}; choose one of {sorted(SALIENCY_NETS)}")
        self.variant = variant
        _net(variant)  # load now: a missing ONNX file fails before any image is read
        self.name = name or f"{SALIENCY_NETS[variant]} zero-click"
        self.settings_label = f"{SALIENCY_NETS[variant]} d0 at {SALIENCY_SIZE}², min-max, >=0.5; clicks ignored"
        self._mask: np.ndarray | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._mask = saliency_mask(image, self.variant)

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        assert self._mask is not None, "set_image first"
        return self._mask.astype(np.float32)


class ClickComponentSaliency:
    """Connected components of the saliency net's mask chosen by the clicks (:func:`component_mask`); no learning.

    The previous mask is not used: the answer is a function of the image's saliency mask and the clicks.
    """

    def __init__(self, variant: str = "u2netp", connectivity: int = 8, name: str | None = None) -> None:
        if variant not in SALIENCY_NETS:
            raise ValueError(f"unknown saliency net {variant!r}; choose one of {sorted(SALIENCY_NETS)}")
        if connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
        self.variant = variant
        _net(variant)
        self.connectivity = connectivity
        self.name = name or f"{SALIENCY_NETS[variant]} click-component"
        self.settings_label = (f"{SALIENCY_NETS[variant]} mask at {SALIENCY_SIZE}², {connectivity}-connected "
                               "components: at the first click (whole mask on a miss), +/- per later click")
        self._mask: np.ndarray | None = None
        self._labels: tuple[np.ndarray, int] | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._mask = saliency_mask(image, self.variant)
        self._labels = label_components(self._mask, self.connectivity)

    def predict(self, clicks: list[Click], prev_mask: np.ndarray | None) -> np.ndarray:
        assert self._mask is not None, "set_image first"
        return component_mask(self._mask, clicks, self.connectivity, self._labels).astype(np.float32)


SALIENCY_PEERS = {
    "u2netp_zero": partial(ZeroClickSaliency, "u2netp"),
    "u2netp_component": partial(ClickComponentSaliency, "u2netp"),
    "u2net_zero": partial(ZeroClickSaliency, "u2net"),
    "u2net_component": partial(ClickComponentSaliency, "u2net"),
}
"""CLI name → peer factory (default settings); merged into :data:`hf_iis.evaluation.peers.PEERS`."""
