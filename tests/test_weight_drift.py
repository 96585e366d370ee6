"""`scripts/weight_drift.py`: relative change per module and kind, checked by hand on two tensors."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import load_script


def test_drift_by_hand():
    drift = load_script("weight_drift").drift
    before = {"decoder.w": torch.tensor([3.0, 4.0]), "decoder.bn.running_mean": torch.tensor([1.0, 0.0]),
              "neck.w": torch.tensor([1.0])}
    after = {"decoder.w": torch.tensor([3.0, 4.5]), "decoder.bn.running_mean": torch.tensor([1.0, 0.0]),
             "neck.w": torch.tensor([1.0])}
    rows = drift(before, after)
    assert rows[("decoder", "weights")] == {"tensors": 1, "changed": 1, "max_relative_change": pytest.approx(0.1)}
    assert rows[("decoder", "running stats")] == {"tensors": 1, "changed": 0, "max_relative_change": 0.0}
    assert rows[("neck", "weights")]["changed"] == 0


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert load_script("weight_drift").main([str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no model.safetensors" in err[0]
