"""Scripts that borrow helpers from the test folder still import when run as a user runs them (no pytest rootdir on
the path): `scripts/space_walkthrough.py` once failed with ModuleNotFoundError: No module named 'tests'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["space_walkthrough.py"])
def test_script_that_imports_test_helpers_starts_outside_pytest(script, tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
