"""Test-time augmentation: invertible, object-preserving views of the model input, and how estimates combine.

If a transform T preserves objects, the seed's identity σ(f(I, x))(y) = σ(f(T(I), T(x)))(T(y)) makes every view an
estimate of the same map P(y ∈ m | clicks). Each view v gives p_v(y) = σ(f(T_v I, T_v x))(T_v y) mapped back to the
original frame with T_v⁻¹, and the views combine as

    P(y)   = (1/V) Σ_v p_v(y)                        (mode "probability", the default)
    P(y)   = σ((1/V) Σ_v logit p_v(y))               (mode "logit")
    U(y)   = std_v p_v(y)                            (per-pixel uncertainty: the spread across views)

Views act on square model inputs of side S (the image processor pads to a square) in pixel coordinates (x, y) =
(column, row), pixel centres at integers. The dihedral group D4 (8 views) is exact on such a square; scale views
resize to S·s (rounded to a multiple of 32) and back. `VIEW_ORDER` fixes which views `tta=n` uses: the first n.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..utils.image_io import is_bool, is_whole_number


@dataclass(frozen=True)
class View:
    """A D4 element (optional transpose, then optional horizontal / vertical flip) followed by a rescale."""

    name: str
    transpose: bool = False
    hflip: bool = False
    vflip: bool = False
    scale: float = 1.0

    def output_size(self, size: int) -> int:
        """Side of the view's square input for a canonical input of side `size`."""
        return size if self.scale == 1.0 else max(32, int(round(size * self.scale / 32.0)) * 32)

    def apply_d4(self, images: torch.Tensor) -> torch.Tensor:
        """The view's D4 part alone (transpose, then flips) on images or maps (..., S, S); no rescale."""
        x = images
        if self.transpose:
            x = x.transpose(-1, -2)
        if self.hflip:
            x = x.flip(-1)
        if self.vflip:
            x = x.flip(-2)
        return x

    def apply_image(self, images: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """Map images or maps (..., S, S) into the view's frame (..., S', S')."""
        x = self.apply_d4(images)
        if self.scale != 1.0:
            x = _resize(x, self.output_size(images.shape[-1]), mode)
        return x

    def apply_points(self, points: torch.Tensor, size: int) -> torch.Tensor:
        """Map (..., 2) points (x, y) of a canonical square of side `size` into the view's frame."""
        x, y = points[..., 0], points[..., 1]
        if self.transpose:
            x, y = y, x
        if self.hflip:
            x = (size - 1) - x
        if self.vflip:
            y = (size - 1) - y
        if self.scale != 1.0:
            factor = self.output_size(size) / size
            x, y = (x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5
        return torch.stack([x, y], dim=-1)

    def invert_map(self, maps: torch.Tensor, size: int) -> torch.Tensor:
        """Map (..., S', S') maps from the view's frame back to the canonical square of side `size`."""
        x = maps
        if self.scale != 1.0:
            x = _resize(x, size, "bilinear")
        if self.vflip:
            x = x.flip(-2)
        if self.hflip:
            x = x.flip(-1)
        if self.transpose:
            x = x.transpose(-1, -2)
        return x

    def invert_points(self, points: torch.Tensor, size: int) -> torch.Tensor:
        """Inverse of `apply_points`."""
        x, y = points[..., 0], points[..., 1]
        if self.scale != 1.0:
            factor = self.output_size(size) / size
            x, y = (x + 0.5) / factor - 0.5, (y + 0.5) / factor - 0.5
        if self.vflip:
            y = (size - 1) - y
        if self.hflip:
            x = (size - 1) - x
        if self.transpose:
            x, y = y, x
        return torch.stack([x, y], dim=-1)


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:]).float()
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    out = F.interpolate(flat, size=(size, size), mode=mode, **kwargs)
    return out.reshape(*lead, size, size).to(x.dtype)


D4_VIEWS: tuple[View, ...] = (
    View("identity"),
    View("hflip", hflip=True),
    View("vflip", vflip=True),
    View("rot180", hflip=True, vflip=True),
    View("transpose", transpose=True),
    View("rot90", transpose=True, vflip=True),  # counter-clockwise, as torch.rot90(k=1)
    View("rot270", transpose=True, hflip=True),
    View("antitranspose", transpose=True, hflip=True, vflip=True),
)
SCALE_VIEWS: tuple[View, ...] = (
    View("scale0.75", scale=0.75),
    View("scale1.25", scale=1.25),
    View("hflip+scale0.75", hflip=True, scale=0.75),
    View("hflip+scale1.25", hflip=True, scale=1.25),
)
# tta=n uses VIEW_ORDER[:n]: 2 = horizontal-flip averaging (as RITM); 4 = the flips (a subgroup of D4);
# 8 = all of D4; 9..12 add rescaled views.
VIEW_ORDER: tuple[View, ...] = D4_VIEWS + SCALE_VIEWS
VIEWS_BY_NAME: dict[str, View] = {view.name: view for view in VIEW_ORDER}


def resolve_views(tta: int | str | list[str] | tuple[str, ...] | None) -> list[View]:
    """`tta` as an int n (the first n of `VIEW_ORDER`), a view name, or a list of names; None or 1 = identity."""
    if tta is None:
        return [VIEW_ORDER[0]]
    if is_bool(tta):  # numpy's bools too (image_io's module docstring)
        raise ValueError(f"tta must be a number of views or a list of view names, got {tta!r}")
    if isinstance(tta, numbers.Real) and not isinstance(tta, int):  # 4.0 and numpy ints are fine, 2.5 is not
        if not is_whole_number(tta):
            raise ValueError(f"tta must be a whole number of views, got {tta!r}")
        tta = int(tta)
    if isinstance(tta, int):
        if not 1 <= tta <= len(VIEW_ORDER):
            raise ValueError(f"tta must be between 1 and {len(VIEW_ORDER)} views, got {tta}")
        return list(VIEW_ORDER[:tta])
    if not isinstance(tta, (str, list, tuple)):
        raise ValueError(f"tta must be a number of views, a view name or a list of view names, got {tta!r}")
    names = [tta] if isinstance(tta, str) else list(tta)
    if isinstance(tta, str) and tta.isdigit():
        return resolve_views(int(tta))
    unknown = [name for name in names if name not in VIEWS_BY_NAME]
    if unknown or not names:
        raise ValueError(f"unknown TTA view(s) {unknown or names}; known views: {list(VIEWS_BY_NAME)}")
    return [VIEWS_BY_NAME[name] for name in names]


def combine_views(probabilities: torch.Tensor, mode: str = "probability") -> tuple[torch.Tensor, torch.Tensor]:
    """Combine per-view maps (V, ..., H, W) already in the canonical frame: returns (mean estimate, spread)."""
    spread = probabilities.std(0, unbiased=False) if probabilities.shape[0] > 1 else torch.zeros_like(probabilities[0])
    if mode == "probability":
        return probabilities.mean(0), spread
    if mode == "logit":
        p = probabilities.clamp(1e-6, 1 - 1e-6)
        return torch.sigmoid(torch.logit(p).mean(0)), spread
    raise ValueError(f"unknown TTA combine mode {mode!r}; use 'probability' or 'logit'")
