"""The ledger's verdict rules (experiments/ledger.py) on hand-computed per-seed numbers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import ledger
from ledger import Check, Control


def per_seed(cand: list[float], base: list[float]) -> ledger.PerSeed:
    return {"err": {"new": cand, "old": base}}


def verdict(cand: list[float], base: list[float], **kw: Any) -> str:
    check = Check("c", "claim", "err", "new", "old", **kw)
    return str(ledger.evaluate_check(check, per_seed(cand, base))["verdict"])


# --------------------------------------------------------------------------- the check rule
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
    assert ledger.verdict_from_improvements([float("nan"), 1.0], 0.1) == "inconclusive"


def test_improvements_are_signed_and_relative_per_seed() -> None:
    check = Check("c", "claim", "err", "new", "old")  # lower is better, relative
    assert ledger.improvements(check, per_seed([1.0, 3.0], [2.0, 2.0])) == [0.5, -0.5]
    up = Check("c", "claim", "err", "new", "old", higher_is_better=True, relative=False)
    assert ledger.improvements(up, per_seed([1.0, 3.0], [2.0, 2.0])) == [-1.0, 1.0]
    with pytest.raises(ValueError, match="2 candidate vs 1 baseline"):
        ledger.improvements(check, per_seed([1.0, 3.0], [2.0]))


def test_a_threshold_baseline_and_relative_margins() -> None:
    below = Check("t", "claim", "err", "new", 0.05, margin=0.0)
    assert ledger.evaluate_check(below, {"err": {"new": [0.01, 0.02]}})["verdict"] == "reproduced"
    assert ledger.evaluate_check(below, {"err": {"new": [0.2, 0.3]}})["verdict"] == "not reproduced"
    # relative: 10% better on a baseline of 100 is enough for margin 0.1, absolute would not be
    assert verdict([90.0, 90.0], [100.0, 100.0], margin=0.1) == "reproduced"
    assert verdict([0.99, 0.99], [1.0, 1.0], margin=0.1, relative=False) == "inconclusive"


def test_overall_and_part_verdicts_combine_primary_checks() -> None:
    assert ledger.overall_verdict(["reproduced", "reproduced"]) == "reproduced"
    assert ledger.overall_verdict(["not reproduced"] * 2) == "not reproduced"
    assert ledger.overall_verdict(["reproduced", "not reproduced"]) == "inconclusive"
    assert ledger.overall_verdict([]) == "inconclusive"
    survives = "inconclusive (gain survives without the memories: x)"
    assert ledger.overall_verdict([survives] * 2) == survives  # the shared reason is kept
    assert ledger.overall_verdict([survives, "reproduced"]) == "inconclusive"
    evaluated = [
        {"part": "a", "primary": True, "verdict": "reproduced"},
        {"part": "a", "primary": False, "verdict": "not reproduced"},  # secondary: ignored
        {"part": "b", "primary": True, "verdict": "not reproduced"},
    ]
    assert ledger.part_verdicts(evaluated) == {"a": "reproduced", "b": "not reproduced"}


def test_kind_strips_the_reason_and_refuses_a_non_verdict() -> None:
    assert ledger.kind("inconclusive (positive control failed: lstm)") == "inconclusive"
    assert ledger.kind("not reproduced") == "not reproduced"
    with pytest.raises(ValueError, match="not a verdict"):
        ledger.kind("probably")


# --------------------------------------------------------------------------- controls
NUMBERS: ledger.PerSeed = {
    "acc": {"lstm": [1.0, 0.8], "static": [0.2, 0.4], "hope": [0.3, 0.5], "tf": [0.9, 1.0]},
}


@pytest.mark.parametrize(
    ("control", "value", "passed"),
    [
        (Control("p", "positive", "acc", "lstm", 0.9), 0.9, True),  # mean 0.9 reaches 0.9
        (Control("p", "positive", "acc", "lstm", 0.91), 0.9, False),
        (Control("n", "negative", "acc", "static", 0.5), pytest.approx(0.3), True),
        (Control("n", "negative", "acc", "static", 0.3), pytest.approx(0.3), False),  # reaches
        (Control("n", "negative", "acc", "static", "tf"), pytest.approx(0.3), True),  # vs 0.95
        (Control("n", "negative", "acc", "tf", "lstm"), pytest.approx(0.95), False),
        (
            Control("l", "positive", "acc", "static", 0.31, higher_is_better=False),
            pytest.approx(0.3),
            True,
        ),
    ],
)
def test_controls_pass_by_role_and_direction(control: Control, value: Any, passed: bool) -> None:
    out = ledger.evaluate_control(control, NUMBERS)
    assert out["value"] == value and out["passed"] is passed
    assert out["rule"].startswith(control.role)


def test_a_diverged_control_fails_and_a_bad_role_is_refused() -> None:
    nan = {"acc": {"lstm": [float("nan"), 1.0]}}
    assert not ledger.evaluate_control(Control("p", "positive", "acc", "lstm", 0.5), nan)["passed"]
    bad = Control("p", "neutral", "acc", "lstm", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="role must be positive or negative"):
        ledger.evaluate_control(bad, NUMBERS)


def test_a_failed_positive_control_makes_every_verdict_inconclusive() -> None:
    checks = [
        Check("win", "hope beats tf", "acc", "tf", "hope", higher_is_better=True, part="x"),
        Check("lose", "static beats tf", "acc", "static", "tf", higher_is_better=True),
    ]
    controls = [
        Control("lstm", "positive", "acc", "lstm", 0.99),  # 0.9 < 0.99: fails
        Control("static", "negative", "acc", "static", 0.1),  # 0.3 reaches 0.1: fails too
    ]
    out = ledger.judge(checks, controls, NUMBERS)
    reason = "inconclusive (positive control failed: lstm)"  # positive failures are named first
    assert [c["verdict"] for c in out["checks"]] == [reason, reason]
    assert [c["raw_verdict"] for c in out["checks"]] == ["reproduced", "not reproduced"]
    assert out["verdict"] == reason and out["part_verdicts"] == {"x": reason}


def test_a_failed_negative_control_alone_is_named() -> None:
    checks = [Check("c", "claim", "acc", "tf", "hope", higher_is_better=True)]
    controls = [Control("static", "negative", "acc", "static", 0.1)]
    out = ledger.judge(checks, controls, NUMBERS)
    assert out["verdict"] == "inconclusive (negative control failed: static)"


def test_passing_controls_leave_the_verdicts_alone() -> None:
    checks = [Check("c", "claim", "acc", "tf", "hope", higher_is_better=True)]
    controls = [
        Control("lstm", "positive", "acc", "lstm", 0.9),
        Control("static", "negative", "acc", "static", 0.5),
    ]
    out = ledger.judge(checks, controls, NUMBERS)
    assert [c["passed"] for c in out["controls"]] == [True, True]
    assert out["verdict"] == "reproduced" == out["checks"][0]["verdict"]


def test_a_control_of_one_part_guards_only_that_part() -> None:
    checks = [
        Check("a", "claim a", "acc", "tf", "hope", higher_is_better=True, part="A"),
        Check("b", "claim b", "acc", "tf", "hope", higher_is_better=True, part="B"),
    ]
    controls = [Control("lstm", "positive", "acc", "lstm", 0.99, part="B")]  # fails
    out = ledger.judge(checks, controls, NUMBERS)
    reason = "inconclusive (positive control failed: lstm)"
    assert [c["verdict"] for c in out["checks"]] == ["reproduced", reason]
    assert out["part_verdicts"] == {"A": "reproduced", "B": reason}
    assert out["verdict"] == "inconclusive"  # one part reproduced, the other cannot tell
    ledger.validate_verdicts({**out, "per_seed": NUMBERS})


# --------------------------------------------------------------------------- attribution
def twins_numbers(off: list[float], static: list[float]) -> ledger.PerSeed:
    return {"bpc": {"hope": [1.0, 1.1], "tf": [1.5, 1.6], "hope (all off)": off, "static": static}}


ATTRIBUTED = Check(
    "c", "hope beats tf", "bpc", "hope", "tf", attribution=("hope (all off)", "static")
)


def test_a_gain_that_survives_without_the_memories_is_not_reproduced() -> None:
    out = ledger.evaluate_check(ATTRIBUTED, twins_numbers([1.0, 1.1], [1.05, 1.1]))
    assert out["raw_verdict"] == "reproduced"
    assert out["attribution_verdicts"] == {"hope (all off)": "reproduced", "static": "reproduced"}
    assert (
        out["verdict"]
        == "inconclusive (gain survives without the memories: hope (all off), static)"
    )


@pytest.mark.parametrize(
    ("off", "static"),
    [([1.6, 1.7], [1.0, 1.0]), ([1.0, 1.0], [1.6, 1.5]), ([1.5, 1.6], [1.55, 1.65])],
)
def test_a_gain_is_reproduced_when_some_memory_free_twin_loses(
    off: list[float], static: list[float]
) -> None:
    out = ledger.evaluate_check(ATTRIBUTED, twins_numbers(off, static))
    assert out["verdict"] == "reproduced"
    assert "not reproduced" in out["attribution_verdicts"].values()
    assert "memories off" in ATTRIBUTED.rule()


def test_attribution_never_upgrades_a_loss() -> None:
    numbers = twins_numbers([1.6, 1.7], [1.6, 1.7])
    numbers["bpc"]["hope"] = [2.0, 2.0]
    assert ledger.evaluate_check(ATTRIBUTED, numbers)["verdict"] == "not reproduced"


# --------------------------------------------------------------------------- validation
def payload() -> dict[str, Any]:
    checks = [Check("c", "claim", "acc", "tf", "hope", higher_is_better=True)]
    controls = [Control("lstm", "positive", "acc", "lstm", 0.9)]
    return {**ledger.judge(checks, controls, NUMBERS), "per_seed": NUMBERS}


def test_validation_recomputes_every_verdict_from_the_numbers() -> None:
    good = payload()
    ledger.validate_verdicts(good)
    with pytest.raises(ValueError, match="control lstm"):
        ledger.validate_verdicts({**good, "controls": [{**good["controls"][0], "passed": False}]})
    forged_check = [{**good["checks"][0], "verdict": "not reproduced"}]
    with pytest.raises(ValueError, match="check c"):
        ledger.validate_verdicts({**good, "checks": forged_check})
    with pytest.raises(ValueError, match="overall"):
        ledger.validate_verdicts({**good, "verdict": "not reproduced"})
    numbers = {"acc": {**NUMBERS["acc"], "lstm": [0.1, 0.1]}}  # the control now fails
    with pytest.raises(ValueError, match="control lstm"):
        ledger.validate_verdicts({**good, "per_seed": numbers})
