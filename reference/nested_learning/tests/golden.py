"""Golden numbers: the small HOPE model's logits on a fixed batch and its first 20 training losses.

    uv run python tests/golden.py            # regenerate tests/golden/hope_small.json on purpose

A change that moves the numbers fails `tests/test_golden.py`; regenerating the file and reading its
`git diff` shows exactly what moved. Everything runs on the CPU in float32 with fixed seeds.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "hope_small.json"
TOLERANCE = {"logits_atol": 2e-4, "loss_atol": 2e-4}
STEPS = 20
TRAIN_ARGS = ["--config", "small", "--device", "cpu", "--set", "train.batch_size=4",
              "--set", "train.seq_len=64", "--set", "train.log_interval=1",
              "--set", "train.eval_interval=1000", "--set", "train.checkpoint_interval=1000",
              "--set", "train.warmup_steps=5", "--set", "train.seed=0"]  # fmt: skip


def fixed_batch() -> torch.Tensor:
    from nested_learning.data import TextDataset, load_text

    data = TextDataset(load_text(None))
    x, _ = data.get_batch("val", 2, 64, torch.Generator().manual_seed(0))
    return x


def compute() -> dict[str, Any]:
    """Recompute every golden number (deterministic on one machine and torch version)."""
    sys.path.insert(0, str(ROOT))
    import train
    from nested_learning.config import load_config
    from nested_learning.models import create_model

    torch.manual_seed(0)
    model = create_model(**load_config("small").model).eval()
    with torch.no_grad():
        logits = model(fixed_batch())
    with tempfile.TemporaryDirectory() as tmp:
        assert train.main([*TRAIN_ARGS, "--steps", str(STEPS), "--out-dir", tmp]) == 0
        with (Path(tmp) / "metrics.csv").open() as handle:
            losses = [float(r["loss"]) for r in csv.DictReader(handle) if r["split"] == "train"]
    return {
        "what": "small preset, seed 0: logits on a fixed batch; train.py losses for 20 CPU steps",
        "logits": {
            "shape": list(logits.shape),
            "mean": round(float(logits.mean()), 6),
            "std": round(float(logits.std()), 6),
            "slice_0_0to4_0to6": [[round(float(v), 5) for v in row] for row in logits[0, :4, :6]],
            "last_position_argmax": logits[:, -1].argmax(-1).tolist(),
        },
        "train_losses": [round(v, 5) for v in losses],
        "tolerance": TOLERANCE,
        "torch_version": torch.__version__,
    }


def main() -> int:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=2) + "\n")
    print(f"wrote {GOLDEN.relative_to(ROOT)}; review it with `git diff {GOLDEN.relative_to(ROOT)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
