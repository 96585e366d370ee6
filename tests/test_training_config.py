"""Config: YAML < overrides, dotted flags, unknown keys rejected, the shipped configs load."""

from __future__ import annotations

import pytest

from hf_iis.training.config import TrainingConfig, load_config
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO_ROOT / "configs" / f"{name}.yaml")
    assert isinstance(cfg, TrainingConfig)
    assert cfg.model.image_size % 32 == 0
    assert cfg.iterative is not None  # iterative training on by default


def test_overrides_and_cli_flags(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", REPO_ROOT / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args, overrides = script.parse_args([
        "--config", "configs/tiny.yaml", "--set", "optim.lr=3e-4", "--data.batch_size", "4",
        "--model.loss_weights={bce: 1.0, lovasz: 0.5}", "--no-pretrained-backbone", "--backbone", "resnet18",
        "--streaming", "--resume", "--set", "optim.mixed_precision=no",
    ])
    cfg = load_config(REPO_ROOT / args.config, overrides)
    assert args.resume is True
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.data.batch_size == 4 and cfg.data.streaming
    assert cfg.model.loss_weights == {"bce": 1.0, "lovasz": 0.5}
    assert cfg.model.backbone == "resnet18" and cfg.model.pretrained_backbone is False
    assert cfg.optim.mixed_precision == "no"  # YAML reads `no` as False; a str field gets its string back
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_unknown_keys_and_null_iterative():
    with pytest.raises(KeyError, match="optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    assert load_config(None, ["iterative=null"]).iterative is None
