"""Drift guard: the small HOPE model's numbers match tests/golden/hope_small.json.

Regenerate on purpose with `uv run python tests/golden.py` and review the diff.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from golden import GOLDEN, compute

Numbers = tuple[dict[str, Any], dict[str, Any]]
REGENERATE = "if the change is intended, run `uv run python tests/golden.py` and review the diff"


@pytest.fixture(scope="module")
def numbers() -> Numbers:
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: {REGENERATE}")
    return json.loads(GOLDEN.read_text()), compute()


def test_logits_on_a_fixed_batch(numbers: Numbers) -> None:
    golden, now = numbers
    tol = golden["tolerance"]["logits_atol"]
    assert now["logits"]["shape"] == golden["logits"]["shape"]
    torch.testing.assert_close(
        torch.tensor(now["logits"]["slice_0_0to4_0to6"]),
        torch.tensor(golden["logits"]["slice_0_0to4_0to6"]),
        atol=tol,
        rtol=0,
        msg=lambda m: f"logits drifted: {m}\n{REGENERATE}",
    )
    for key in ("mean", "std"):
        assert now["logits"][key] == pytest.approx(golden["logits"][key], abs=tol), REGENERATE


def test_loss_after_20_training_steps(numbers: Numbers) -> None:
    golden, now = numbers
    tol = golden["tolerance"]["loss_atol"]
    assert len(now["train_losses"]) == len(golden["train_losses"]) == 20
    for step, (a, b) in enumerate(zip(now["train_losses"], golden["train_losses"], strict=True), 1):
        assert a == pytest.approx(b, abs=tol), (
            f"loss at step {step} drifted: {a} vs {b}. {REGENERATE}"
        )
