"""Experiment configuration: dataclasses loaded from the YAML presets in ``configs/``.

A preset has three sections, each checked against its dataclass so a misspelled key is an error that
names the key and the valid ones (not a silently ignored setting):

.. code-block:: yaml

    model: {...}   # keyword arguments of ``create_model`` (checked by the model's config dataclass)
    train: {...}   # TrainConfig
    data: {...}    # DataConfig

``--set section.key=value`` overrides any value; the value is parsed as YAML (``3e-4``, ``true``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SECTIONS = ("model", "train", "data")
TRACKERS = ("none", "tensorboard", "wandb")
PARALLEL = ("ddp", "fsdp")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message says what to change."""


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of ``train.py``."""

    steps: int = 300
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 50
    eval_batches: int = 4
    checkpoint_interval: int = 100
    log_interval: int = 10
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 (autocast, keyed on the device type)
    out_dir: str = "runs/small"
    tracker: str = "none"  # none | tensorboard | wandb, logged beside metrics.csv
    parallel: str = "ddp"  # ddp | fsdp (sharded with fully_shard), used under torchrun

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "seq_len", "eval_interval", "eval_batches")
        for name in (*positive, "checkpoint_interval", "log_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be > 0 (got {getattr(self, name)})")
        if self.lr <= 0 or self.min_lr < 0:
            raise ConfigError(
                f"train.lr must be > 0 and train.min_lr >= 0 (got {self.lr}, {self.min_lr})"
            )
        if self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps must be >= 0 (got {self.warmup_steps})")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"train.device must be auto, cpu, cuda or mps (got {self.device!r})")
        if self.tracker not in TRACKERS:
            raise ConfigError(
                f"train.tracker must be one of {', '.join(TRACKERS)} (got {self.tracker!r})"
            )
        if self.parallel not in PARALLEL:
            raise ConfigError(
                f"train.parallel must be one of {', '.join(PARALLEL)} (got {self.parallel!r})"
            )
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(
                f"train.dtype must be auto, float32, bfloat16 or float16 (got {self.dtype!r})"
            )


@dataclass
class DataConfig:
    """Where the training text comes from. ``path: null`` uses the embedded default corpus."""

    path: str | None = None
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1) (got {self.val_fraction})")


@dataclass
class ExperimentConfig:
    """A whole experiment: model kwargs (checked by the model factory), training and data."""

    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str/int/float/bool/list/dict/None) for checkpoints and logs."""
        plain: dict[str, Any] = dataclasses.asdict(self)
        plain["train"]["betas"] = list(self.train.betas)
        return plain


def from_dict(cls: type[T], data: dict[str, Any], section: str) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys by name.

    Raises:
        ConfigError: a key is not a field of ``cls`` or a value has the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"section '{section}' must be a mapping of key: value (got {data!r})")
    assert dataclasses.is_dataclass(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{section}.{unknown[0]}'"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            + f"; valid keys in '{section}': {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = {
        name: _coerce(value, hints[name], f"{section}.{name}") for name, value in data.items()
    }
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} has the wrong type: {value!r} is not {hint}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} values (got {value!r})")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where} must be null (got {value!r})")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint)):
        if hint is int and isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer (got {value!r})")
        return value
    raise ConfigError(f"{where} must be of type {getattr(hint, '__name__', hint)} (got {value!r})")


def resolve_config_path(name_or_path: str | Path) -> Path:
    """``small`` → ``configs/small.yaml``; an existing path is used as given."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))) or "none found"
        raise ConfigError(f"unknown config '{name_or_path}'; presets in {CONFIG_DIR}: {presets}")
    return candidate


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override '{item}' must look like section.key=value, e.g. train.lr=1e-3"
            )
        if section not in SECTIONS:
            raise ConfigError(
                f"override '{item}': unknown section '{section}'; use one of {SECTIONS}"
            )
        raw.setdefault(section, {})[name] = yaml.safe_load(text)
    return raw


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a preset (``small``/``medium``/``large`` or a YAML path), then ``--set`` overrides."""
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping with sections {SECTIONS}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section '{unknown[0]}' in {path}; valid sections: {SECTIONS}")
    raw = apply_overrides(raw, overrides or [])
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"section 'model' must be a mapping (got {model!r})")
    return ExperimentConfig(
        model=dict(model),
        train=from_dict(TrainConfig, raw.get("train") or {}, "train"),
        data=from_dict(DataConfig, raw.get("data") or {}, "data"),
    )
