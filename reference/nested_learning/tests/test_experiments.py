"""The experiment layer: quick runs of exp1/exp5, the verdict rule, and results/README.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import `common` as a sibling module

import common  # noqa: E402
import report  # noqa: E402
import report_extras  # noqa: E402
import runner  # noqa: E402
from ledger import Check, Control, PerSeed, kind  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_quick(script: str, out: Path) -> dict[str, Any]:
    """Run an experiment with --quick into ``out`` and return its JSON."""
    cmd = [sys.executable, str(EXPERIMENTS / script), "--quick", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = script.removesuffix(".py")
    payload: dict[str, Any] = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    return payload


def check_schema(payload: dict[str, Any], name: str, metrics: set[str]) -> None:
    runner.validate_payload(payload)  # keys, per-seed lengths, verdicts follow from the numbers
    assert payload["experiment"] == name and payload["plot"] == f"{name}.png"
    assert payload["size"] == "quick" and kind(payload["verdict"])
    assert payload["command"].startswith(f"uv run python experiments/{name}.py --quick")
    assert payload["torch_version"] and payload["wall_time_s"] > 0
    assert "§" in payload["paper_ref"] and payload["claim"]
    assert metrics <= set(payload["per_seed"]) and set(payload["summary"]) == set(
        payload["per_seed"]
    )
    for c in payload["checks"]:
        assert c["rule"] and kind(c["verdict"])
        assert len(c["improvements"]) == len(payload["seeds"])


@pytest.mark.slow
def test_exp1_quick_run_writes_a_valid_result(tmp_path: Path) -> None:
    payload = run_quick("exp1_dgd_recall.py", tmp_path)
    check_schema(payload, "exp1_dgd_recall", {"after_switch_error", "final_error"})
    assert len(payload["seeds"]) == 3
    methods = set(payload["per_seed"]["final_error"])
    assert {"DGD", "GD (Hebbian)", "delta rule", "DGD printed step"} <= methods
    # the corrected step never diverges on the η grid (spec §4.2)
    assert payload["summary"]["diverged_fraction"]["DGD"]["max"] == 0.0


@pytest.mark.slow
def test_exp5_quick_run_writes_a_valid_result(tmp_path: Path) -> None:
    payload = run_quick("exp5_continual.py", tmp_path)
    check_schema(payload, "exp5_continual", {"avg_forgetting", "avg_final_accuracy"})
    assert len(payload["seeds"]) >= 3
    assert set(payload["per_seed"]["avg_forgetting"]) == {
        "SGD",
        "SGD+momentum",
        "DeltaMomentum",
        "M3",
        "M3, α=0 (no slow momentum)",
        "Adam",
    }
    n = payload["config"]["orthogonal"]["n_tasks"]
    for matrix in payload["extra"]["loss_matrix_mean"].values():
        assert len(matrix) == n and all(len(row) == n for row in matrix)
    assert set(payload["part_verdicts"]) == {c["part"] for c in payload["checks"]}


# --------------------------------------------------------------------------- payload
def fake_per_seed(cand: list[float], base: list[float]) -> PerSeed:
    return {"err": {"new": cand, "old": base}}


def make_payload(
    name: str, cand: list[float], base: list[float], controls: tuple[Control, ...] = ()
) -> dict[str, Any]:
    args = runner.RunArgs(quick=True, seeds=list(range(len(cand))), out=Path("."), progress=False)
    per_seed = fake_per_seed(cand, base)
    for m, vals in (("new (all off)", [1.0] * len(cand)), ("new (titans off)", cand)):
        per_seed["err"][m] = vals
    return runner.build_payload(
        name=name,
        title=f"title of {name}",
        claim=f"claim of {name}",
        paper_ref="arXiv 2512.24695 §0",
        args=args,
        command=f"uv run python experiments/{name}.py --quick",
        config={"d": 3},
        per_seed=per_seed,
        checks=[Check("c", "new beats old", "err", "new", "old")],
        controls=controls,
        memory_ablation=common.memory_rows(per_seed, ["new"], "err"),
        extra={
            "gate_statistics": {
                "new": {"eta_mean": 0.01, "eta_max": 0.02, "eta_bound": 0.1, "alpha_mean": 0.99}
            }
        },
        wall_time_s=1.0,
    )


def test_memory_rows_are_seed_means_with_none_for_missing_memories() -> None:
    rows = make_payload("e", [0.1, 0.3], [1.0, 1.0])["memory_ablation"]
    assert rows == [
        {"model": "new", "metric": "err", "with_memory": pytest.approx(0.2)}
        | {"titans_off": pytest.approx(0.2), "cms_off": None, "all_off": 1.0}
    ]
    assert common.ablated("hope", "with_memory") == "hope"
    assert common.ablated("hope", "all_off") == "hope (all off)"


def test_gate_statistics_combine_over_seeds_by_their_meaning() -> None:
    seed0 = {"eta_mean": 0.01, "eta_max": 0.04, "eta_bound": 0.1, "alpha_mean": 0.9}
    seed1 = {"eta_mean": 0.03, "eta_max": 0.02, "eta_bound": 2.0, "alpha_mean": 0.7}
    overflowed = {"eta_mean": None, "eta_max": None, "eta_bound": 0.1, "alpha_mean": None}
    seeds = [
        seed0 | {"nonfinite": 0.0},
        seed1 | {"nonfinite": 0.0},
        overflowed | {"nonfinite": 1.0},
    ]
    assert common.mean_gates({"hope": seeds, "dead": [seeds[2]]}) == {
        "hope": {
            "eta_mean": pytest.approx(0.02),  # the overflowed seed has no finite token to average
            "eta_max": 0.04,
            "eta_bound": 2.0,
            "alpha_mean": pytest.approx(0.8),
            "nonfinite": pytest.approx(1 / 3),
        },
        "dead": {"eta_mean": None, "eta_max": None, "eta_bound": 0.1, "alpha_mean": None}
        | {"nonfinite": 1.0},
    }


def test_a_failed_positive_control_reaches_the_payload_and_the_readme(tmp_path: Path) -> None:
    oracle = Control("oracle", "positive", "err", "old", 0.5, higher_is_better=False)
    payload = make_payload("exp_c", [0.1, 0.1], [1.0, 1.0], (oracle,))  # old: 1.0 > 0.5
    assert payload["verdict"] == "inconclusive (positive control failed: oracle)"
    assert payload["checks"][0]["raw_verdict"] == "reproduced"
    runner.validate_payload(payload)
    forged = {**payload, "controls": [{**payload["controls"][0], "passed": True}]}
    with pytest.raises(ValueError, match="control oracle"):
        runner.validate_payload(forged)
    runner.write_result("exp_c", payload, tmp_path)
    text = report.render(tmp_path, report_extras)
    assert text.index("| `oracle` | positive |") < text.index("| `c` |")  # controls first
    assert "inconclusive (positive control failed: oracle)" in text
    assert "### Memory use" in text and "| new | err | 0.1 | 0.1 | n/a | 1 |" in text
    assert "### Trained write gates" in text and "| new | 0.01 | 0.02 | 0.1 | 0.99 |" in text
    assert text.startswith("# Results of the small-scale experiments")


def test_committed_results_readme_is_up_to_date() -> None:
    results = ROOT / "results"
    if not list(results.glob("*.json")):
        pytest.skip("no results/*.json committed yet")
    assert report.main(["--results", str(results), "--check"]) == 0, (
        "results/README.md is stale: run `uv run python experiments/report.py`"
    )
    for f in sorted(results.glob("*.json")):
        payload = json.loads(f.read_text(encoding="utf-8"))
        runner.validate_payload(payload)
        assert (results / payload["plot"]).read_bytes()[:8] == PNG_MAGIC
