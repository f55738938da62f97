"""Shared fixtures. Tests run on the CPU with tiny sizes so the whole fast suite takes seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# PyTorch's OpenMP threads spin 300000 times before they sleep: beside one other busy process that
# made a training step 3-20x slower; 1000 spins cost 1.0-1.8x on a quiet machine, depending on
# the machine (the reference's benchmarks/cpu_threads.py). The smaller worst case wins.
# Set before torch loads libgomp; your own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `import train` and `import demo.app` from the project root
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_train_args(tmp_path: Path) -> list[str]:
    """CLI arguments for a seconds-long CPU run of ``train.py`` writing into ``tmp_path``."""
    return [
        "--config", "small",
        "--device", "cpu",
        "--out-dir", str(tmp_path / "run"),
        "--set", "train.batch_size=4",
        "--set", "train.seq_len=32",
        "--set", "train.eval_interval=5",
        "--set", "train.eval_batches=2",
        "--set", "train.log_interval=1",
        "--set", "train.warmup_steps=2",
    ]  # fmt: skip
