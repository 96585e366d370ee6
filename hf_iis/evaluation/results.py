"""The rows of ``results.json`` as dataclasses: one field per JSON key, so the key strings are written here only.

* :class:`ClickMetrics`: the click-protocol metrics of one method on one benchmark (a row's ``"metrics"``; also a
  row of the multi-click comparison);
* :class:`ResultRow`: one method × benchmark row of ``results["results"]``;
* :class:`ScalingRow`: one setting of the inference-scaling study (``results["scaling"]``).

``to_dict()`` writes exactly the keys, in the order, that ``results.json`` files have always had (absent values are
left out of :class:`ClickMetrics`); ``from_dict()`` reads such a dict back, partial ones included (absent keys
become ``None``), so results files written before these classes existed, and the docs built from them, stay valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "MIOU1_CENTER",
    "MIOU1_RANDOM",
    "MIOU1_RANDOM_STD",
    "MIOU1_RANDOM_PER_SEED",
    "MIOU_CURVE",
    "SECONDS_PER_CALL",
    "SECONDS_PER_CLICK",
    "ENCODE_SECONDS_PER_IMAGE",
    "ClickMetrics",
    "ResultRow",
    "ScalingRow",
    "miou_key",
    "noc_key",
    "nof_key",
    "threshold_tag",
]

MIOU1_CENTER = "mIoU@1 center"
MIOU1_RANDOM = "mIoU@1 random"
MIOU1_RANDOM_STD = "mIoU@1 random std"
MIOU1_RANDOM_PER_SEED = "mIoU@1 random per seed"
MIOU_CURVE = "miou_curve"
SECONDS_PER_CALL = "seconds per call"
SECONDS_PER_CLICK = "seconds per click"
ENCODE_SECONDS_PER_IMAGE = "encode seconds per image"


def threshold_tag(threshold: float) -> int:
    """IoU target → the number in its key: 0.85 → 85."""
    return round(threshold * 100)


def noc_key(tag: int) -> str:
    """``"NoC@85"`` for ``tag`` 85."""
    return f"NoC@{tag}"


def nof_key(tag: int) -> str:
    """``"NoF@85"`` for ``tag`` 85."""
    return f"NoF@{tag}"


def miou_key(clicks: int) -> str:
    """``"mIoU@3"``: mean IoU (percent) after ``clicks`` clicks of the NoC loop."""
    return f"mIoU@{clicks}"


def _key(name: str) -> dict[str, str]:
    return {"key": name}


_TAGGED = re.compile(r"(NoC|NoF)@(\d+)")


@dataclass
class ClickMetrics:
    """Metrics of one method on one benchmark; every field is optional (a protocol that did not run leaves its
    fields ``None``). The JSON key of each field is in its metadata (``noc``, ``nof`` and ``miou_curve`` expand to
    ``NoC@τ`` / ``NoF@τ`` / ``mIoU@k`` keys, see :meth:`to_dict`)."""

    num_instances: int | None = field(default=None, metadata=_key("num_instances"))  # of the NoC loop
    max_clicks: int | None = field(default=None, metadata=_key("max_clicks"))
    noc: dict[int, float] = field(default_factory=dict)  # threshold tag (85) -> mean clicks to reach it
    nof: dict[int, int] = field(default_factory=dict)  # threshold tag -> instances that never reach it
    miou_curve: list[float] | None = None  # mIoU (percent) after 1, 2, ... clicks
    decode_seconds_per_click: float | None = field(default=None, metadata=_key("decode seconds per click"))
    noc_instances: int | None = field(default=None, metadata=_key("NoC instances"))
    miou1_center: float | None = field(default=None, metadata=_key(MIOU1_CENTER))
    center_instances: int | None = field(default=None, metadata=_key("center instances"))
    seconds_per_click: float | None = field(default=None, metadata=_key(SECONDS_PER_CLICK))
    encode_seconds_per_image: float | None = field(default=None, metadata=_key(ENCODE_SECONDS_PER_IMAGE))
    miou1_random: float | None = field(default=None, metadata=_key(MIOU1_RANDOM))
    miou1_random_std: float | None = field(default=None, metadata=_key(MIOU1_RANDOM_STD))
    miou1_random_per_seed: list[float] | None = field(default=None, metadata=_key(MIOU1_RANDOM_PER_SEED))
    random_seconds_per_call: float | None = field(default=None, metadata=_key("random seconds per call"))
    random_instances: int | None = field(default=None, metadata=_key("random instances"))
    # last, after the keys older files have: boundary IoU (percent, hf_iis.metrics.boundary_iou) after the center
    # click, and after each click of the NoC loop
    biou1_center: float | None = field(default=None, metadata=_key("bIoU@1 center"))
    biou_curve: list[float] | None = field(default=None, metadata=_key("biou_curve"))

    def miou_at(self, clicks: int) -> float | None:
        """mIoU (percent) after ``clicks`` clicks, ``None`` when the NoC loop did not run that far."""
        curve = self.miou_curve or []
        return curve[clicks - 1] if 0 < clicks <= len(curve) else None

    def set_random(self, summary: Mapping[str, Any], instances: int) -> None:
        """Fill the random-click fields from :func:`~hf_iis.evaluation.protocols.summarize_random`'s dict."""
        self.miou1_random = summary[MIOU1_RANDOM]
        self.miou1_random_std = summary[MIOU1_RANDOM_STD]
        self.miou1_random_per_seed = summary[MIOU1_RANDOM_PER_SEED]
        self.random_seconds_per_call = summary[SECONDS_PER_CALL]
        self.random_instances = instances

    def to_dict(self) -> dict[str, Any]:
        """The JSON dict: ``num_instances, max_clicks, NoC@85, NoF@85, ... , mIoU@1 ... mIoU@K, miou_curve``, then
        the timing, center-click and random-click keys; ``None`` fields are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "noc":
                for tag in sorted(set(self.noc) | set(self.nof)):
                    if tag in self.noc:
                        out[noc_key(tag)] = self.noc[tag]
                    if tag in self.nof:
                        out[nof_key(tag)] = self.nof[tag]
            elif f.name == "miou_curve":
                if value is not None:
                    out.update({miou_key(k): v for k, v in enumerate(value, start=1)})
                    out[MIOU_CURVE] = list(value)
            elif f.name != "nof" and value is not None:
                out[f.metadata["key"]] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClickMetrics:
        """Read a ``"metrics"`` dict (keys it does not know are ignored)."""
        kwargs: dict[str, Any] = {f.name: data[f.metadata["key"]] for f in fields(cls)
                                  if "key" in f.metadata and f.metadata["key"] in data}
        noc: dict[int, float] = {}
        nof: dict[int, int] = {}
        for key, value in data.items():
            match = _TAGGED.fullmatch(key)
            if match:
                (noc if match.group(1) == "NoC" else nof)[int(match.group(2))] = value
        curve = data.get(MIOU_CURVE)
        if curve is None and miou_key(1) in data:
            curve, k = [], 1
            while miou_key(k) in data:
                curve.append(data[miou_key(k)])
                k += 1
        return cls(noc=noc, nof=nof, miou_curve=None if curve is None else list(curve), **kwargs)


@dataclass
class ResultRow:
    """One method × benchmark row of ``results["results"]``."""

    method: str | None = None
    kind: str | None = None  # "model" or "peer"
    model_path: str | None = None
    scaling: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    num_instances: int | None = None
    metrics: ClickMetrics = field(default_factory=ClickMetrics)
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: self.metrics.to_dict() if f.name == "metrics" else getattr(self, f.name)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ResultRow) -> ResultRow:
        if isinstance(data, ResultRow):
            return data
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "metrics"}
        return cls(metrics=ClickMetrics.from_dict(data.get("metrics", {})), **kwargs)


@dataclass
class ScalingRow:
    """One setting of the inference-scaling study: mIoU@1 (center and random clicks, percent) and seconds."""

    model: str | None = None
    model_path: str | None = None
    dataset: str | None = None
    num_instances: int | None = None
    tta: int = 1
    triangulation: int = 0
    sampling: str | None = None  # None when triangulation is off
    scaling: str = ""  # the setting's label, e.g. "tta=4, tri=16 stratified"
    miou1_center: float = field(default=0.0, metadata=_key(MIOU1_CENTER))
    miou1_random: float = field(default=0.0, metadata=_key(MIOU1_RANDOM))
    miou1_random_std: float = field(default=0.0, metadata=_key(MIOU1_RANDOM_STD))
    seconds_per_call: float = field(default=0.0, metadata=_key(SECONDS_PER_CALL))  # decode, center click
    seconds_per_call_random: float = field(default=0.0, metadata=_key("seconds per call random"))
    encode_seconds_per_image: float = field(default=0.0, metadata=_key(ENCODE_SECONDS_PER_IMAGE))
    # last, after the keys older files have: "independent" / "conditioned"; None (triangulation off) is left out
    triangulation_mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.metadata.get("key", f.name): getattr(self, f.name) for f in fields(self)
                if not (f.name == "triangulation_mode" and self.triangulation_mode is None)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ScalingRow) -> ScalingRow:
        if isinstance(data, ScalingRow):
            return data
        return cls(**{f.name: data[f.metadata.get("key", f.name)] for f in fields(cls)
                      if f.metadata.get("key", f.name) in data})
