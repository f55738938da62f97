"""Config presets and overrides: every preset loads; bad input fails naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from nested_learning.config import CONFIG_DIR, ConfigError, load_config
from nested_learning.models import create_model

PRESETS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def test_the_three_presets_exist() -> None:
    assert {"small", "medium", "large"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_and_builds_on_the_meta_device(preset: str) -> None:
    cfg = load_config(preset)
    with torch.device("meta"):  # no memory is allocated, so large presets are cheap to check
        model = create_model(**cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert cfg.train.seq_len <= cfg.model.get("max_seq_len", cfg.train.seq_len)


def test_presets_grow_small_to_large() -> None:
    sizes = []
    for preset in ("small", "medium", "large"):
        with torch.device("meta"):
            model = create_model(**load_config(preset).model)
        sizes.append(sum(p.numel() for p in model.parameters()))
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_override_parses_yaml_values() -> None:
    cfg = load_config("small", ["train.lr=1e-4", "train.steps=7", "data.path=notes.txt"])
    assert (cfg.train.lr, cfg.train.steps, cfg.data.path) == (1e-4, 7, "notes.txt")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", "unknown key 'train.lrr'"),
        ("data.pth=x", "unknown key 'data.pth'"),
        ("optim.lr=1", "unknown section 'optim'"),
        ("train.lr", "must look like section.key=value"),
        ("train.steps=many", "train.steps must be of type int"),
        ("train.steps=0", "train.steps must be > 0"),
        ("train.device=tpu", "train.device must be auto, cpu, cuda or mps"),
        ("train.betas=[0.9]", "train.betas must be a list of 2 values"),
    ],
)
def test_bad_overrides_name_the_problem(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("small", [override])


def test_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("small", ["train.lrr=1"])
    assert "valid keys in 'train'" in str(err.value) and "lr" in str(err.value)


def test_unknown_model_key_is_rejected_by_the_factory() -> None:
    cfg = load_config("small", ["model.d_modle=64"])
    with pytest.raises(ConfigError, match=r"unknown key 'model\.d_modle'.*d_model"):
        create_model(**cfg.model)


@pytest.mark.parametrize("name", ["tiny", "does/not/exist.yaml"])
def test_missing_config_is_an_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown config|not found"):
        load_config(name)


def test_config_file_with_unknown_section(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: {}\ntrainer: {steps: 3}\n")
    with pytest.raises(ConfigError, match="unknown section 'trainer'"):
        load_config(path)


def test_config_round_trips_as_plain_data() -> None:
    plain = load_config("small").to_dict()
    assert plain["train"]["betas"] == [0.9, 0.95]
    assert set(plain) == {"model", "train", "data"}
