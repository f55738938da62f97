"""Experiment trackers beside metrics.csv: TensorBoard event files read back with TensorBoard's own
reader, an offline W&B run resumed under the same id, and one clear line when one is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import train
from nested_learning.checkpoint import load_checkpoint
from nested_learning.metrics import read_metrics


@pytest.mark.parametrize("kind", ["tensorboard", "wandb"])
def test_a_tracker_that_is_not_installed_names_the_uv_sync_command(
    tmp_path: Path,
    tiny_train_args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.setitem(sys.modules, kind, None)  # `import kind` fails, installed or not
    code = train.main([*tiny_train_args, "--steps", "2", "--set", f"train.tracker={kind}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"`uv sync --group {kind}`" in err
    assert not (tmp_path / "run").exists()


def csv_rows(run_dir: Path, split: str) -> dict[int, dict[str, str]]:
    return {int(r["step"]): r for r in read_metrics(run_dir / "metrics.csv") if r["split"] == split}


def test_tensorboard_event_files_hold_the_logged_values_and_the_config(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    pytest.importorskip("tensorboard", reason="uv sync --group tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    args = [*tiny_train_args, "--steps", "6", "--set", "train.tracker=tensorboard"]
    assert train.main(args) == 0
    run = tmp_path / "run"
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    train_rows, val_rows = csv_rows(run, "train"), csv_rows(run, "val")
    for tag, column, rows in [
        ("train/loss", "loss", train_rows),
        ("train/lr", "lr", train_rows),
        ("train/tokens_per_s", "tokens_per_s", train_rows),
        ("val/loss", "loss", val_rows),
    ]:
        logged = {e.step: e.value for e in events.Scalars(tag)}
        assert sorted(logged) == sorted(rows), tag
        for step, row in rows.items():
            assert logged[step] == pytest.approx(float(row[column]), rel=1e-4, abs=0.06), tag
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["train.steps"].number_value == 6
    assert hparams["train.tracker"].string_value == "tensorboard"


def test_wandb_offline_run_is_resumed_under_the_same_id(
    tmp_path: Path, tiny_train_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb", reason="uv sync --group wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")  # no account, no network
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = [*tiny_train_args, "--steps", "6", "--set", "train.tracker=wandb"]
    assert train.main([*args, "--until", "3"]) == 0
    run = tmp_path / "run"
    run_id = load_checkpoint(run / "checkpoint.pt")["tracker_run_id"]
    assert isinstance(run_id, str) and run_id
    assert train.main([*args, "--resume"]) == 0
    assert load_checkpoint(run / "checkpoint.pt")["tracker_run_id"] == run_id
    runs = sorted((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 2, list((run / "wandb").iterdir())  # the first run, then its resumption
    for folder in runs:
        assert (folder / f"run-{run_id}.wandb").stat().st_size > 0
