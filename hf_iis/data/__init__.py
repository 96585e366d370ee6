"""Data: one generic folder reader over a registry of layouts, and conversion to Hugging Face `datasets`.

`read_folder(root, "grabcut")` yields `Sample`s without needing `datasets`; the conversion helpers
(`samples_to_dataset`, `build_corpus`, `load_corpus`, ...) live in `hf_iis.data.hf_datasets` and import `datasets`
only when first used.
"""

from __future__ import annotations

from typing import Any

from hf_iis.data.layouts import (
    LAYOUTS,
    Layout,
    benchmark_instances,
    check_training_source,
    default_data_root,
    list_ids,
    read_folder,
    read_sample,
)
from hf_iis.data.sample import Sample, SampleError

_LAZY = ("samples_to_dataset", "build_corpus", "load_corpus", "convert_folder", "push_to_hub", "row_to_sample")

__all__ = [
    "LAYOUTS",
    "Layout",
    "Sample",
    "SampleError",
    "benchmark_instances",
    "check_training_source",
    "default_data_root",
    "list_ids",
    "read_folder",
    "read_sample",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hf_iis.data import hf_datasets

        return getattr(hf_datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
