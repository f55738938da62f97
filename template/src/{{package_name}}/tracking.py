"""Experiment trackers beside ``metrics.csv``: none, TensorBoard or Weights & Biases.

``train.tracker`` picks one (the template's ``tracker`` question sets the default). Each lives in
its own dependency group, installed with ``uv sync --group tensorboard`` or ``uv sync --group
wandb``. The main rank logs train loss, learning rate, tokens/s and validation loss under the same
step as the CSV, and the whole config as hyperparameters. A W&B run's id is stored in the checkpoint
so ``--resume`` continues the same run; ``WANDB_MODE=offline`` works without an account
(``wandb sync <out_dir>/wandb/offline-run-*`` uploads it later).
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import TRACKERS, ConfigError

#: The module each tracker needs, and the dependency group that installs it.
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def require_tracker(kind: str) -> ModuleType | None:
    """Import the tracker's package, or fail with the one command that installs it.

    Raises:
        ConfigError: the package of a chosen tracker is not installed.
    """
    if kind not in TRACKERS:
        raise ConfigError(f"train.tracker must be one of {', '.join(TRACKERS)} (got {kind!r})")
    if kind == "none":
        return None
    try:
        return importlib.import_module(PACKAGES[kind])
    except ImportError as err:
        raise ConfigError(
            f"train.tracker={kind} needs the {PACKAGES[kind]} package: run `uv sync --group {kind}`"
            " (or set train.tracker=none)"
        ) from err


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, float | int | str | bool]:
    """``{"train": {"lr": 1e-3}}`` → ``{"train.lr": 1e-3}``; lists and None become strings."""
    flat: dict[str, float | int | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class Tracker:
    """The no-op tracker (``train.tracker: none``): metrics.csv and loss.png only."""

    run_id: str | None = None

    def log(self, step: int, split: str, loss: float, lr: float, tokens_per_s: float = 0.0) -> None:
        """Record one row of metrics (the same values as the CSV row)."""

    def close(self, preempted: bool = False) -> None:
        """Flush and finish; ``preempted`` marks a run that will be resumed."""


def _metrics(split: str, loss: float, lr: float, tokens_per_s: float) -> dict[str, float]:
    if split != "train":
        return {f"{split}/loss": loss}
    return {"train/loss": loss, "train/lr": lr, "train/tokens_per_s": tokens_per_s}


class TensorBoardTracker(Tracker):
    """Event files in ``<out_dir>/tensorboard`` (``uv run tensorboard --logdir runs``)."""

    def __init__(self, out_dir: Path, config: dict[str, Any], resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        # purge_step: on resume, hide the events a killed run wrote after its last checkpoint.
        self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step)
        if resume_step is None:  # the config as hyperparameters, in this run's own event file
            summaries = hparams(flatten(config), {"val/loss": math.nan})  # type: ignore[no-untyped-call]
            file_writer: Any = self.writer._get_file_writer()  # type: ignore[no-untyped-call]
            for summary in summaries:
                file_writer.add_summary(summary)

    def log(self, step: int, split: str, loss: float, lr: float, tokens_per_s: float = 0.0) -> None:
        for tag, value in _metrics(split, loss, lr, tokens_per_s).items():
            self.writer.add_scalar(tag, value, step)

    def close(self, preempted: bool = False) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    """A W&B run in ``<out_dir>/wandb``; project from ``WANDB_PROJECT`` (default: the package)."""

    def __init__(
        self, wandb: ModuleType, out_dir: Path, config: dict[str, Any], run_id: str | None
    ) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", __name__.split(".")[0]),
            dir=str(out_dir),
            config=config,
            id=run_id,
            resume="allow" if run_id else None,
        )
        self.run_id = str(self.run.id)

    def log(self, step: int, split: str, loss: float, lr: float, tokens_per_s: float = 0.0) -> None:
        self.run.log(_metrics(split, loss, lr, tokens_per_s), step=step)

    def close(self, preempted: bool = False) -> None:
        if preempted:
            self.run.mark_preempting()
        self.run.finish(exit_code=1 if preempted else 0)


def open_tracker(
    kind: str, out_dir: Path, config: dict[str, Any], resume_step: int | None, run_id: str | None
) -> Tracker:
    """Start the tracker ``kind`` (on the main rank only); ``run_id`` continues a W&B run."""
    module = require_tracker(kind)
    if kind == "tensorboard":
        return TensorBoardTracker(out_dir, config, resume_step)
    if kind == "wandb":
        assert module is not None
        return WandbTracker(module, out_dir, config, run_id)
    return Tracker()
