"""exp4's controls, memory-use rows, gate statistics and spread-based Table 6 margins (issue 10)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import `common` as a sibling module

import exp4_char_lm as exp4  # noqa: E402
import runner  # noqa: E402

from nested_learning.data import TextDataset  # noqa: E402
from nested_learning.memory_use import memories_off  # noqa: E402

SETTINGS = ("with_memory", "titans_off", "cms_off", "all_off")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``--quick`` run of exp4 (1 seed, a few steps), shared by the tests of this module."""
    out = tmp_path_factory.mktemp("exp4")
    cmd = [sys.executable, str(EXPERIMENTS / "exp4_char_lm.py"), "--quick", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload: dict[str, Any] = json.loads((out / "exp4_char_lm.json").read_text(encoding="utf-8"))
    runner.validate_payload(payload)  # verdicts and control outcomes follow from the numbers
    return payload


@pytest.mark.slow
def test_quick_run_has_the_controls(quick: dict[str, Any]) -> None:
    by_name = {c["name"]: c for c in quick["controls"]}
    assert set(by_name) == {"transformer_learns", "no_context_model"}
    pos, neg = by_name["transformer_learns"], by_name["no_context_model"]
    assert pos["role"] == "positive" and pos["method"] == exp4.TRANSFORMER
    # the threshold comes from the data: 1 bit below the unigram entropy of the training bytes
    assert pos["threshold"] == pytest.approx(quick["extra"]["unigram_entropy_bits"] - 1.0)
    assert 0.0 < quick["extra"]["unigram_entropy_bits"] <= 8.0
    assert neg["role"] == "negative" and neg["method"] == exp4.NO_CONTEXT
    assert neg["threshold"] == exp4.TRANSFORMER  # must not reach the Transformer's bpc
    # the Table 2 check is kept only if a memory-free twin loses
    (t2,) = [c for c in quick["checks"] if c["name"] == "hope_beats_transformer"]
    assert t2["attribution"] == ["hope (all off)", exp4.STATIC]
    assert set(t2["attribution_verdicts"]) == {"hope (all off)", exp4.STATIC}


@pytest.mark.slow
def test_quick_run_has_memory_rows_and_gates(quick: dict[str, Any]) -> None:
    rows = {r["model"]: r for r in quick["memory_ablation"]}
    assert set(rows) == {exp4.HOPE, *exp4.ABLATIONS, *exp4.STATICS}
    for row in rows.values():
        assert row["metric"] == "val bpc"
        assert all(isinstance(row[s], float) and math.isfinite(row[s]) for s in SETTINGS)
    assert rows[exp4.HOPE]["with_memory"] == quick["per_seed"]["val bpc"][exp4.HOPE][0]
    for static in exp4.STATICS:  # nothing to switch off: every setting gives the same number
        assert len({rows[static][s] for s in SETTINGS}) == 1
    gates = quick["extra"]["gate_statistics"]
    assert set(gates) == {exp4.HOPE, *exp4.ABLATIONS}  # the static variants never write
    for g in gates.values():
        assert 0.0 < g["eta_mean"] <= g["eta_max"] <= g["eta_bound"]
        assert 0.0 < g["alpha_mean"] <= 1.0
    assert gates[exp4.NO_WD]["alpha_mean"] == 1.0  # w/o weight decay: α fixed at 1


def test_static_hope_never_writes() -> None:
    """Switching the memories off at test time changes nothing in the static variants (exactly
    equal logits) but does change Hope's."""
    x = torch.randint(0, 256, (2, exp4.QUICK.seq_len))
    for variant in (*exp4.STATICS, exp4.HOPE):
        torch.manual_seed(0)
        model = exp4.build_variant(variant, exp4.QUICK)
        with torch.no_grad():
            on = model(x)
            with memories_off(model, titans=True, cms=True):
                off = model(x)
        assert torch.equal(on, off) == (variant != exp4.HOPE), variant


def test_static_no_conv_sees_no_context() -> None:
    """Conv window 1 + no in-context updates: a position's logits depend on its own byte only."""
    torch.manual_seed(0)
    model = exp4.build_variant(exp4.STATIC_NO_CONV, exp4.QUICK)
    x = torch.randint(0, 256, (1, 16))
    y = x.clone()
    y[0, :8] = (y[0, :8] + 1) % 256  # change the first half only
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[0, 8:], b[0, 8:], rtol=0, atol=1e-6)
    assert not torch.allclose(a[0, :8], b[0, :8])


def test_spread_margin_pools_the_seed_variances() -> None:
    per_seed = {"val bpc": {"a": [1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0], "c": [2.0]}}
    # variances 1 and 0: pooled std sqrt(0.5), margin 2 sqrt(0.5)
    assert exp4.spread_margin(per_seed, "a", "b") == pytest.approx(2 * math.sqrt(0.5))
    per_one = {"val bpc": {"a": [2.0], "c": [2.0]}}
    assert exp4.spread_margin(per_one, "a", "c") == exp4.FALLBACK_MARGIN


def test_unigram_entropy_from_the_data() -> None:
    data = TextDataset("ab" * 500)  # two equally frequent bytes: 1 bit
    assert exp4.unigram_entropy_bits(data) == pytest.approx(1.0)
