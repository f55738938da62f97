"""The experiment ledger: claims, checks, controls and the verdict rules that connect them.

A paper's claim is tested by **checks** (a candidate against a baseline method or a threshold, on
one metric, seed by seed) and guarded by **controls** — models whose answer is known in advance:

* a *positive* control is known to solve the task as set up; it passes iff it reaches its
  threshold. If it fails, the setup cannot tell, and every verdict reads
  ``inconclusive (positive control failed: NAME)``;
* a *negative* control lacks the mechanism under test; it passes iff it does *not* reach its
  threshold. If it succeeds, the task does not need the mechanism: every verdict reads
  ``inconclusive (negative control failed: NAME)``.

A check may also name **attribution twins**: the candidate with its in-context memories switched
off (at test time, or trained static). A win of the candidate is ``reproduced`` only when at least
one twin does *not* win by the same rule; when every twin wins too, the gain survives without the
memories and the verdict reads ``inconclusive (gain survives without the memories: …)``.

Everything is computed from per-seed numbers (``per_seed[metric][method] = [one value per
seed]``) and re-checked from the stored fields by :func:`validate_verdicts`, so a result file can
never carry a verdict its numbers do not give. Nothing here is specific to one paper.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive")
Role = Literal["positive", "negative"]
PerSeed = dict[str, dict[str, list[float]]]  # metric -> method -> one value per seed
Numbers = Mapping[str, Mapping[str, Sequence[float]]]

OVERALL_RULE = (
    "primary checks combined: all reproduced → reproduced; all not reproduced → not reproduced;"
    " otherwise inconclusive; a failed control makes every verdict inconclusive"
)
CONTROL_RULE = (
    "a control's value is its metric's mean over the seeds; a positive control passes iff it"
    " reaches its threshold, a negative control passes iff it does not; a failed control makes"
    " every check it guards inconclusive (those of its part, or all for a control of no part),"
    " and so the verdicts that combine them (positive controls are named first)"
)


# --------------------------------------------------------------------------- per-seed numbers
def record(per_seed: PerSeed, metric: str, method: str, value: float) -> None:
    """Append one seed's ``value`` to ``per_seed[metric][method]`` (created on first use)."""
    per_seed.setdefault(metric, {}).setdefault(method, []).append(value)


def describe(values: Sequence[float]) -> dict[str, float]:
    """mean, std (sample, 0 for one value), min, max and n of per-seed values."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("describe needs at least one value")
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {
        "mean": statistics.fmean(vals),
        "std": std,
        "min": min(vals),
        "max": max(vals),
        "n": float(len(vals)),
    }


def summarize(per_seed: Numbers) -> dict[str, Any]:
    """Same nesting as ``per_seed`` with each list replaced by :func:`describe`."""
    return {m: {k: describe(v) for k, v in methods.items()} for m, methods in per_seed.items()}


def kind(verdict: str) -> Verdict:
    """The verdict without its reason: ``"inconclusive (…)"`` → ``"inconclusive"``."""
    base = verdict.split(" (", 1)[0]
    for v in VERDICTS:
        if v == base:
            return v
    raise ValueError(f"not a verdict: {verdict!r}")


# --------------------------------------------------------------------------- controls
@dataclass(frozen=True)
class Control:
    """A model run beside the candidates whose outcome is known in advance (module docstring).

    Attributes:
        name: short id, named in the verdict when it fails.
        role: ``"positive"`` (must reach the threshold) or ``"negative"`` (must not).
        metric / method: where its per-seed numbers are in ``per_seed``.
        threshold: a number, or another method of the same metric (its mean over seeds).
        higher_is_better: direction of the metric ("reach" = at least / at most the threshold).
        why: what the control shows, in one sentence.
        part: the claim (``Check.part``) whose checks it guards; ``""`` guards every check.
    """

    name: str
    role: Role
    metric: str
    method: str
    threshold: float | str
    higher_is_better: bool = True
    why: str = ""
    part: str = ""

    def rule(self) -> str:
        side = "≥" if self.higher_is_better else "≤"
        thr = f"mean of '{self.threshold}'" if isinstance(self.threshold, str) else self.threshold
        must = "passes iff" if self.role == "positive" else "passes iff NOT"
        return f"{self.role}: {must} mean {self.metric} of '{self.method}' {side} {thr}"


def evaluate_control(control: Control, per_seed: Numbers) -> dict[str, Any]:
    """The control's fields, its rule, its value and threshold (means over seeds) and ``passed``."""
    if control.role not in ("positive", "negative"):
        raise ValueError(f"control {control.name}: role must be positive or negative")
    value = statistics.fmean(float(v) for v in per_seed[control.metric][control.method])
    thr = control.threshold
    limit = statistics.fmean(per_seed[control.metric][thr]) if isinstance(thr, str) else thr
    reached = value >= limit if control.higher_is_better else value <= limit
    passed = reached if control.role == "positive" else not reached
    if not math.isfinite(value):
        passed = False  # a diverged control shows nothing
    return {
        **asdict(control),
        "rule": control.rule(),
        "value": value,
        "threshold_value": float(limit),
        "passed": bool(passed),
    }


def control_failure(controls: Sequence[Mapping[str, Any]], part: str = "") -> str | None:
    """``"positive control failed: A, B"`` (else the negative ones) among the controls that
    guard ``part`` (those of the part and those of every part), or None if all passed."""
    scoped = [c for c in controls if c.get("part", "") in ("", part)]
    for role in ("positive", "negative"):
        failed = [str(c["name"]) for c in scoped if c["role"] == role and not c["passed"]]
        if failed:
            return f"{role} control failed: {', '.join(failed)}"
    return None


# --------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """One comparison that supports (or not) a claim of the paper.

    ``candidate`` is the method the paper says is better; ``baseline`` is another method of the
    same metric, or a number (a threshold: "the candidate stays below/above this value").

    Attributes:
        name: short id.
        claim: the sentence this check tests.
        metric: key of ``per_seed``.
        candidate: method expected to be better.
        baseline: method name, or a fixed threshold.
        higher_is_better: direction of the metric.
        margin: minimum mean improvement for "reproduced".
        relative: improvements divided by ``|baseline|`` per seed (ignored for thresholds).
        primary: counts towards the experiment's overall verdict.
        part: which claim of a multi-claim experiment this check belongs to ("" = the only one).
        attribution: the candidate's memory-free twins (methods of the same metric); a win is
            reproduced only if at least one of them does not win too.
    """

    name: str
    claim: str
    metric: str
    candidate: str
    baseline: str | float
    higher_is_better: bool = False
    margin: float = 0.1
    relative: bool = True
    primary: bool = True
    part: str = ""
    attribution: tuple[str, ...] = ()

    def rule(self) -> str:
        """The verdict rule in words, generated from the fields."""
        versus = (
            f"the threshold {self.baseline:g}"
            if not isinstance(self.baseline, str)
            else f"'{self.baseline}'"
        )
        kind_ = "relative " if self.relative and isinstance(self.baseline, str) else ""
        better = "higher" if self.higher_is_better else "lower"
        text = (
            f"{self.metric} ({better} is better): improvement of '{self.candidate}' over {versus}"
            f" per seed; reproduced iff the mean {kind_}improvement ≥ {self.margin:g} and every"
            " seed improves; not reproduced iff the mean improvement ≤ 0; else inconclusive"
        )
        if self.attribution:
            twins = ", ".join(f"'{t}'" for t in self.attribution)
            text += (
                f"; a reproduced win is kept only if at least one of {twins} (memories off) does"
                " not win by the same rule, else inconclusive"
            )
        return text

    def with_candidate(self, candidate: str) -> Check:
        return Check(**{**asdict(self), "candidate": candidate, "attribution": ()})


def improvements(check: Check, per_seed: Numbers) -> list[float]:
    """Per-seed improvement of the candidate over the baseline (> 0 = the claim's direction)."""
    cand = [float(v) for v in per_seed[check.metric][check.candidate]]
    if not isinstance(check.baseline, str):
        base = [float(check.baseline)] * len(cand)
    else:
        base = [float(v) for v in per_seed[check.metric][check.baseline]]
        if len(base) != len(cand):
            raise ValueError(f"{check.name}: {len(cand)} candidate vs {len(base)} baseline seeds")
    sign = 1.0 if check.higher_is_better else -1.0
    out = []
    for c, b in zip(cand, base, strict=True):
        d = sign * (c - b)
        if check.relative and isinstance(check.baseline, str):
            d /= max(abs(b), 1e-12)
        out.append(d)
    return out


def verdict_from_improvements(imps: Sequence[float], margin: float) -> Verdict:
    """The rule: reproduced iff mean ≥ margin and all > 0; not reproduced iff mean ≤ 0.

    Non-finite improvements (a diverged run on both sides) carry no evidence → inconclusive.
    """
    if not imps or not all(isinstance(x, int | float) and math.isfinite(x) for x in imps):
        return "inconclusive"
    mean = statistics.fmean(imps)
    if mean >= margin and all(x > 0 for x in imps):
        return "reproduced"
    if mean <= 0:
        return "not reproduced"
    return "inconclusive"


def evaluate_check(check: Check, per_seed: Numbers, failure: str | None = None) -> dict[str, Any]:
    """The check's fields, its rule in words, per-seed improvements and the computed verdict.

    ``raw_verdict`` is the rule's verdict on the candidate alone; ``verdict`` adds the attribution
    twins and the controls (``failure``: :func:`control_failure`'s text).
    """
    imps = improvements(check, per_seed)
    finite = [x for x in imps if math.isfinite(x)]
    raw = verdict_from_improvements(imps, check.margin)
    twins = {
        t: verdict_from_improvements(improvements(check.with_candidate(t), per_seed), check.margin)
        for t in check.attribution
    }
    verdict: str = raw
    if raw == "reproduced" and twins and all(v == "reproduced" for v in twins.values()):
        verdict = f"inconclusive (gain survives without the memories: {', '.join(twins)})"
    if failure:
        verdict = f"inconclusive ({failure})"
    return {
        **asdict(check),
        "rule": check.rule(),
        "improvements": imps,
        "mean_improvement": statistics.fmean(finite) if finite else float("nan"),
        "raw_verdict": raw,
        "attribution_verdicts": twins,
        "verdict": verdict,
    }


def overall_verdict(verdicts: Iterable[str], failure: str | None = None) -> str:
    """Primary checks combined: all reproduced → reproduced; all not → not; mixed → inconclusive;
    checks that all give the same verdict pass it on with its reason. A control failure
    overrides everything."""
    if failure:
        return f"inconclusive ({failure})"
    given = list(verdicts)
    if len(set(given)) == 1:  # one verdict, reason included
        return given[0]
    vs = [kind(v) for v in given]
    if not vs:
        return "inconclusive"
    if all(v == "reproduced" for v in vs):
        return "reproduced"
    if all(v == "not reproduced" for v in vs):
        return "not reproduced"
    return "inconclusive"


def part_verdicts(
    evaluated: Sequence[Mapping[str, Any]], controls: Sequence[Mapping[str, Any]] = ()
) -> dict[str, str]:
    """Overall verdict of each named part (claim) from its own primary checks and the controls
    that guard it."""
    parts = sorted({str(e["part"]) for e in evaluated if e["part"]})
    return {
        p: overall_verdict(
            (e["verdict"] for e in evaluated if e["part"] == p and e["primary"]),
            control_failure(controls, p),
        )
        for p in parts
    }


def judge(
    checks: Sequence[Check], controls: Sequence[Control], per_seed: Numbers
) -> dict[str, Any]:
    """Controls first, then every check and the combined verdicts: the payload's verdict part."""
    ctrl = [evaluate_control(c, per_seed) for c in controls]
    evaluated = [evaluate_check(c, per_seed, control_failure(ctrl, c.part)) for c in checks]
    primary = [e["verdict"] for e in evaluated if e["primary"]]
    return {
        "controls": ctrl,
        "control_rule": CONTROL_RULE,
        "checks": evaluated,
        "verdict": overall_verdict(primary, control_failure(ctrl)),
        "verdict_rule": OVERALL_RULE,
        "part_verdicts": part_verdicts(evaluated, ctrl),
    }


def rebuild(cls: type[Any], stored: Mapping[str, Any]) -> Any:
    """A :class:`Check` or :class:`Control` from its stored fields (extra keys ignored)."""
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in stored.items() if k in names}
    if "attribution" in values:
        values["attribution"] = tuple(values["attribution"])
    return cls(**values)


def validate_verdicts(payload: Mapping[str, Any]) -> None:
    """Raise ValueError unless every control, check and combined verdict of ``payload`` is what
    the rules give on its per-seed numbers, and every stated rule is the rule applied."""
    checks = [rebuild(Check, c) for c in payload["checks"]]
    controls = [rebuild(Control, c) for c in payload.get("controls", [])]
    expected = judge(checks, controls, payload["per_seed"])
    for got, want in zip(payload.get("controls", []), expected["controls"], strict=True):
        if got["passed"] != want["passed"]:
            raise ValueError(f"control {got['name']}: 'passed' does not follow from its numbers")
        if got.get("rule", want["rule"]) != want["rule"]:
            raise ValueError(f"control {got['name']}: its stated rule is not the rule applied")
    for got, want in zip(payload["checks"], expected["checks"], strict=True):
        if got["verdict"] != want["verdict"]:
            raise ValueError(f"check {got['name']}: verdict does not follow from its numbers")
        if got.get("rule", want["rule"]) != want["rule"]:
            raise ValueError(f"check {got['name']}: its stated rule is not the rule applied")
    for key in ("verdict_rule", "control_rule"):
        if payload.get(key, expected[key]) != expected[key]:
            raise ValueError(f"{key}: the stated rule is not the rule applied")
    if payload["verdict"] != expected["verdict"]:
        raise ValueError("overall verdict does not follow from the primary checks")
    if payload.get("part_verdicts", {}) != expected["part_verdicts"]:
        raise ValueError("part verdicts do not follow from the checks")
