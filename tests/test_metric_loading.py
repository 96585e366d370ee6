"""The `evaluate` metric module loads from any working directory, through `hf_iis.metrics.load_metric` or the
absolute `hf_iis.metrics.METRIC_PATH` (the documented relative path worked only from the repository root)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("evaluate")


@pytest.mark.slow
def test_load_metric_works_from_another_working_directory(tmp_path):
    code = textwrap.dedent("""
        import evaluate
        from hf_iis.metrics import METRIC_PATH, load_metric

        assert METRIC_PATH.is_absolute()
        print(load_metric("curves").compute(predictions=[[0.5, 0.9, 0.95]])["NoC@90"])
        print(load_metric().compute(predictions=[[[0.9, 0.1]]], references=[[[1, 0]]])["mIoU"])
        print(evaluate.load(str(METRIC_PATH), "curves").compute(predictions=[[0.95]])["NoC@90"])
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2.0", "100.0", "1.0"]
