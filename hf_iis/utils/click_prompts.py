"""SAM's point prompts beside this package's signed clicks: `input_points` / `input_labels` as `clicks`.

    clicks=[(x1, y1, 1), (x2, y2, -1)]                           # this package: sign +1 in the object, -1 not
    input_points=[[x1, y1], [x2, y2]], input_labels=[1, 0]       # SAM: label 1 positive, 0 negative

Both give the same clicks. `input_labels` may be left out (every point positive, as SAM's processor assumes).
SAM's other labels (-1 padding, 2 / 3 box corners) have no meaning here and are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .image_io import _to_numpy, is_real_number

ACCEPTED_POINTS = "input_points=[[x, y], ...] (x = column, y = row, original-image pixels)"
ACCEPTED_LABELS = "input_labels=[1, 0, ...] (SAM's labels: 1 in the object, 0 not in it), one per point"


def _as_list(value, name: str, accepted: str) -> list:
    value = _to_numpy(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty list: {accepted}; got {value!r}")
    return list(value)


def clicks_from_prompts(clicks=None, input_points=None, input_labels=None):
    """`clicks` as given, or [(x, y, ±1), ...] from SAM's `input_points` / `input_labels`; None when neither is
    given (the caller's "no clicks given" error then applies). Coordinates are checked against the image later,
    with the clicks (`image_io.validate_clicks`)."""
    if input_points is None:
        if input_labels is not None:
            raise ValueError(f"input_labels given without input_points; pass {ACCEPTED_POINTS} with them")
        return clicks
    if clicks is not None:
        raise ValueError("pass clicks=[(x, y, sign), ...] or input_points / input_labels (SAM's form), not both")
    points = _as_list(input_points, "input_points", ACCEPTED_POINTS)
    for index, point in enumerate(points):
        if not isinstance(point, (Sequence, np.ndarray)) or isinstance(point, str) or len(point) != 2 or not all(
            is_real_number(v) for v in point
        ):
            raise ValueError(f"input_points[{index}] is {point!r}; each point must be [x, y]: {ACCEPTED_POINTS}")
    labels = [1] * len(points) if input_labels is None else _as_list(input_labels, "input_labels", ACCEPTED_LABELS)
    if len(labels) != len(points):
        raise ValueError(f"input_points has {len(points)} point(s) but input_labels has {len(labels)} label(s); "
                         f"give one label per point: {ACCEPTED_LABELS}")
    for index, label in enumerate(labels):
        if not is_real_number(label) or label not in (0, 1):
            raise ValueError(f"input_labels[{index}] is {label!r}; {ACCEPTED_LABELS}")
    return [(point[0], point[1], 1 if label == 1 else -1) for point, label in zip(points, labels)]
