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
import make_results_readme  # noqa: E402
from common import Check  # noqa: E402

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
    common.validate_payload(payload)  # keys, per-seed lengths, verdicts follow from the numbers
    assert payload["experiment"] == name and payload["plot"] == f"{name}.png"
    assert payload["size"] == "quick" and payload["verdict"] in common.VERDICTS
    assert payload["command"].startswith(f"uv run python experiments/{name}.py --quick")
    assert payload["torch_version"] and payload["wall_time_s"] > 0
    assert "§" in payload["paper_ref"] and payload["claim"]
    assert metrics <= set(payload["per_seed"]) and set(payload["summary"]) == set(
        payload["per_seed"]
    )
    for c in payload["checks"]:
        assert c["rule"] and c["verdict"] in common.VERDICTS
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


# --------------------------------------------------------------------------- verdict rule
def fake_per_seed(cand: list[float], base: list[float]) -> common.PerSeed:
    return {"err": {"new": cand, "old": base}}


def verdict(cand: list[float], base: list[float], **kw: Any) -> str:
    check = Check("c", "claim", "err", "new", "old", **kw)
    return str(common.evaluate_check(check, fake_per_seed(cand, base))["verdict"])


def test_the_rule_says_reproduced_when_every_seed_clearly_improves() -> None:
    assert verdict([0.1, 0.2, 0.15], [1.0, 1.1, 0.9]) == "reproduced"
    assert verdict([0.9, 0.8], [0.5, 0.4], higher_is_better=True, relative=False) == "reproduced"


def test_the_rule_says_not_reproduced_when_the_candidate_is_not_better() -> None:
    assert verdict([1.0, 1.2, 1.1], [0.5, 0.6, 0.4]) == "not reproduced"
    assert verdict([0.5, 0.5], [0.5, 0.5]) == "not reproduced"  # no improvement at all
    assert verdict([0.1, 0.1], [0.5, 0.4], higher_is_better=True) == "not reproduced"


def test_the_rule_says_inconclusive_for_mixed_or_tiny_effects() -> None:
    assert verdict([0.1, 1.2, 0.1], [1.0, 1.0, 1.0]) == "inconclusive"  # one seed worse
    assert verdict([0.98, 0.97], [1.0, 1.0], margin=0.1) == "inconclusive"  # below the margin
    assert common.verdict_from_improvements([float("nan"), 1.0], 0.1) == "inconclusive"


def test_a_threshold_baseline_and_relative_margins() -> None:
    below = Check("t", "claim", "err", "new", 0.05, margin=0.0)
    assert common.evaluate_check(below, {"err": {"new": [0.01, 0.02]}})["verdict"] == "reproduced"
    assert common.evaluate_check(below, {"err": {"new": [0.2, 0.3]}})["verdict"] == "not reproduced"
    # relative: 10% better on a baseline of 100 is enough for margin 0.1, absolute would not be
    assert verdict([90.0, 90.0], [100.0, 100.0], margin=0.1) == "reproduced"
    assert verdict([0.99, 0.99], [1.0, 1.0], margin=0.1, relative=False) == "inconclusive"


def test_overall_and_part_verdicts_combine_primary_checks() -> None:
    assert common.overall_verdict(["reproduced", "reproduced"]) == "reproduced"
    assert common.overall_verdict(["not reproduced"] * 2) == "not reproduced"
    assert common.overall_verdict(["reproduced", "not reproduced"]) == "inconclusive"
    assert common.overall_verdict([]) == "inconclusive"
    evaluated = [
        {"part": "a", "primary": True, "verdict": "reproduced"},
        {"part": "a", "primary": False, "verdict": "not reproduced"},  # secondary: ignored
        {"part": "b", "primary": True, "verdict": "not reproduced"},
    ]
    assert common.part_verdicts(evaluated) == {"a": "reproduced", "b": "not reproduced"}


def make_payload(name: str, cand: list[float], base: list[float]) -> dict[str, Any]:
    args = common.RunArgs(quick=True, seeds=list(range(len(cand))), out=Path("."), progress=False)
    return common.build_payload(
        name=name,
        title=f"title of {name}",
        claim=f"claim of {name}",
        paper_ref="arXiv 2512.24695 §0",
        args=args,
        command=f"uv run python experiments/{name}.py --quick",
        config={"d": 3},
        per_seed=fake_per_seed(cand, base),
        checks=[Check("c", "new beats old", "err", "new", "old")],
        wall_time_s=1.0,
        notes=["a note"],
    )


def test_build_payload_computes_the_verdict_and_validation_catches_hand_edits() -> None:
    good = make_payload("e", [0.1, 0.1, 0.1], [1.0, 1.0, 1.0])
    assert good["verdict"] == "reproduced"
    assert good["summary"]["err"]["new"]["mean"] == pytest.approx(0.1)
    common.validate_payload(good)
    with pytest.raises(ValueError, match="verdict"):
        common.validate_payload({**good, "verdict": "not reproduced"})
    with pytest.raises(ValueError, match="missing"):
        common.validate_payload({k: v for k, v in good.items() if k != "command"})


# --------------------------------------------------------------------------- README
def write_fake_results(folder: Path) -> None:
    common.write_result("exp_a", make_payload("exp_a", [0.1, 0.2], [1.0, 1.0]), folder)
    common.write_result("exp_b", make_payload("exp_b", [2.0, 2.0], [1.0, 1.0]), folder)


def test_readme_lists_every_result_with_its_numbers_and_is_deterministic(tmp_path: Path) -> None:
    write_fake_results(tmp_path)
    assert make_results_readme.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "claim of exp_a" in text and "claim of exp_b" in text
    assert "**reproduced**" in text and "**not reproduced**" in text
    assert "![exp_a](exp_a.png)" in text and "uv run python experiments/exp_b.py --quick" in text
    assert "0.15 ± 0.07071" in text  # exp_a's candidate: mean ± sample std of [0.1, 0.2]
    assert make_results_readme.render(tmp_path) == text


def test_check_mode_flags_a_stale_or_missing_readme(tmp_path: Path) -> None:
    write_fake_results(tmp_path)
    assert make_results_readme.main(["--results", str(tmp_path), "--check"]) == 1  # missing
    assert make_results_readme.main(["--results", str(tmp_path)]) == 0
    assert make_results_readme.main(["--results", str(tmp_path), "--check"]) == 0
    common.write_result("exp_b", make_payload("exp_b", [0.5, 0.5], [1.0, 1.0]), tmp_path)
    assert make_results_readme.main(["--results", str(tmp_path), "--check"]) == 1  # stale


def test_committed_results_readme_is_up_to_date() -> None:
    results = ROOT / "results"
    if not list(results.glob("*.json")):
        pytest.skip("no results/*.json committed yet")
    assert make_results_readme.main(["--results", str(results), "--check"]) == 0, (
        "results/README.md is stale: run `uv run python experiments/make_results_readme.py`"
    )
    for f in sorted(results.glob("*.json")):
        payload = json.loads(f.read_text(encoding="utf-8"))
        common.validate_payload(payload)
        assert (results / payload["plot"]).read_bytes()[:8] == PNG_MAGIC
