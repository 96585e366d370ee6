"""Config: YAML < overrides, dotted flags, unknown keys rejected, the shipped configs load."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from hf_iis.training.config import LEGACY_KEYS, AugmentParams, TrainingConfig, load_config
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("name", ["default", "tiny", "gpu_finetune", "u2netp_hybrid", "u2netp_prior"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO_ROOT / "configs" / f"{name}.yaml")
    assert isinstance(cfg, TrainingConfig)
    assert cfg.model.image_size % 32 == 0
    assert cfg.iterative is not None  # iterative training on by default
    assert isinstance(cfg.data.augment, AugmentParams)
    raw = yaml.safe_load((REPO_ROOT / "configs" / f"{name}.yaml").read_text())["data"]
    assert not set(raw) & {key.split(".")[1] for key in LEGACY_KEYS}  # written in the nested form


OLD_RUN = REPO_ROOT / "model_cards" / "u2netp_run" / "stage2" / "config.yaml"  # saved by a run before data.augment


def test_an_old_style_run_config_loads_with_the_same_meaning(tmp_path):
    """Flat augmentation keys under `data` (every run folder saved before the nesting) land in data.augment."""
    raw = yaml.safe_load(OLD_RUN.read_text())
    assert "view_prob" in raw["data"] and "augment" not in raw["data"]
    cfg = load_config(OLD_RUN)
    defaults = AugmentParams()
    for f in dataclasses.fields(AugmentParams):
        # keys added after that run (object crops) take their defaults, which leave the run as it was
        expected = raw["data"].get(f.name, getattr(defaults, f.name))
        assert getattr(cfg.data.augment, f.name) == expected, f.name
    assert cfg.data.augment.object_crop_prob == 0.0
    for key in ("batch_size", "min_mask_pixels", "max_masks_decoded", "path"):
        assert getattr(cfg.data, key) == raw["data"][key]
    assert cfg.model.loss_weights == raw["model"]["loss_weights"]
    cfg.save(tmp_path / "resaved.yaml")  # a resumed run rewrites it in the nested form: same config
    assert "augment" in yaml.safe_load((tmp_path / "resaved.yaml").read_text())["data"]
    assert load_config(tmp_path / "resaved.yaml") == cfg


def test_nested_and_old_override_paths():
    nested = load_config(REPO_ROOT / "configs" / "default.yaml", ["data.augment.view_prob=0.9",
                                                                  "data.augment.views=[identity, hflip]"])
    assert nested.data.augment.view_prob == 0.9 and nested.data.augment.views == ["identity", "hflip"]
    assert nested.data.augment.crop_prob == 0.5  # the rest of the file's section is kept
    for path in (REPO_ROOT / "configs" / "default.yaml", OLD_RUN):  # the old path, on a new and an old file
        old = load_config(path, ["data.view_prob=0.9", "data.crop_min_area=0.4"])
        assert old.data.augment.view_prob == 0.9 and old.data.augment.crop_min_area == 0.4
        assert load_config(path, ["data.augment.view_prob=0.9"]).data.augment.view_prob == 0.9
    assert load_config(None, ["data.augment={hue: 0.1}"]).data.augment == AugmentParams(hue=0.1)


def test_old_and_new_augmentation_keys_that_disagree_are_refused(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("data:\n  view_prob: 0.5\n  augment: {view_prob: 0.8}\n")
    with pytest.raises(ValueError, match="data.augment.view_prob"):
        load_config(both)
    same = tmp_path / "same.yaml"
    same.write_text("data:\n  view_prob: 0.8\n  augment: {view_prob: 0.8}\n")
    assert load_config(same).data.augment.view_prob == 0.8
    with pytest.raises(ValueError, match="data.augment"):
        load_config(None, ["data.augment=null"])
    with pytest.raises(KeyError, match="data.augment.view_probb"):
        load_config(None, ["data.augment.view_probb=1"])


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


def test_config_files_of_the_wrong_kind_and_out_of_range_values_are_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n")
    (tmp_path / "bad.yaml").write_text("optim: [1\n")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00" * 10)
    for name, message in (("list.yaml", "must be a YAML mapping"), ("bad.yaml", "not valid YAML"),
                          ("bin.yaml", "not a text file"), ("missing.yaml", "not found"), ("", "is a folder")):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            load_config(tmp_path / name)
    for override, message in (("optim.max_steps=-5", "'optim.max_steps' must be a number >= 1"),
                              ("data.batch_size=0", "'data.batch_size'"), ("optim=3", "must be a mapping"),
                              ("iterative.min_clicks=4", "'iterative.max_clicks' must be a number >= 4"),
                              ("data.augment.view_prob=2", "probability"), ("seed=x", "'seed' expects int")):
        with pytest.raises(ValueError, match=message):
            load_config(None, [override])


def test_trainer_checks_before_writing_its_run_folder(tmp_path):
    """A config built in code (not through load_config) is checked too, before config.yaml is written."""
    from hf_iis.training.loop import train

    cfg = load_config(None, [f"output_dir={tmp_path / 'run'}"])
    cfg.optim.max_steps = -5
    with pytest.raises(ValueError, match="optim.max_steps"):
        train(cfg, train_dataset=[], progress=False)
    assert not (tmp_path / "run").exists()
    (tmp_path / "file").write_text("x")
    cfg = load_config(None, [f"output_dir={tmp_path / 'file'}"])
    with pytest.raises(ValueError, match="is a file, not a folder"):
        train(cfg, train_dataset=[], progress=False)
