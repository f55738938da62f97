"""evaluate.py on a checkpoint trained here: consistent numbers, JSON output, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import evaluate
import train

TINY_HOPE = """\
model:
  arch: hope
  vocab_size: 256
  d_model: 32
  n_layers: 1
  n_heads: 2
  d_ff: 32
  max_seq_len: 128
  titans_chunk_memory: 8
  titans_chunk_other: 8
  cms_chunk_sizes: [16, 32]
train:
  steps: 3
data:
  path: null
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step Hope checkpoint written by train.main (own tiny config: seconds on a CPU)."""
    tmp = tmp_path_factory.mktemp("eval")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(TINY_HOPE)
    args = ["--config", str(cfg), "--device", "cpu", "--out-dir", str(tmp / "run")]
    args += ["--set", "train.batch_size=2", "--set", "train.seq_len=32"]
    args += ["--set", "train.eval_batches=1", "--set", "train.warmup_steps=1"]
    assert train.main(args) == 0
    return tmp / "run" / "checkpoint.pt"


def test_lm_and_zero_shot_numbers_are_consistent(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    args = ["--checkpoint", str(checkpoint), "--tasks", "lm,mqar,parity,passkey"]
    args += ["--batches", "1", "--batch-size", "2", "--out", str(out)]
    assert evaluate.main(args) == 0
    result = json.loads(out.read_text())
    lm = result["lm"]
    assert math.isfinite(lm["val_loss"]) and 0 < lm["val_loss"] < 10
    assert lm["val_bpc"] == pytest.approx(lm["val_loss"] / math.log(2))
    assert result["arch"] == "hope" and result["step"] == 3 and result["parameters"] > 0
    zero = result["zero_shot"]
    assert "zero-shot" in zero["note"]
    for task in ("mqar", "parity", "passkey"):
        assert 0.0 <= zero[task]["accuracy"] <= 1.0 and 0 < zero[task]["chance"] < 1
    printed = capsys.readouterr().out
    assert "val_bpc" in printed and "mqar (zero-shot)" in printed


def test_same_seed_same_numbers_and_data_override(checkpoint: Path, tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("hello world, this is a tiny corpus. " * 200)
    outs = []
    for name in ("a.json", "b.json"):
        args = ["--checkpoint", str(checkpoint), "--tasks", "lm", "--data", str(text)]
        assert evaluate.main([*args, "--batches", "1", "--out", str(tmp_path / name)]) == 0
        outs.append(json.loads((tmp_path / name).read_text()))
    assert outs[0]["lm"] == outs[1]["lm"] and outs[0]["lm"]["data"] == str(text)
    assert "zero_shot" not in outs[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "lm,sudoku"], "unknown task 'sudoku'"),
        (["--data", "no/such/file.txt"], "data file not found"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    out = tmp_path / "never.json"
    assert evaluate.main(["--checkpoint", str(checkpoint), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never.json"
    assert evaluate.main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert not out.exists()
