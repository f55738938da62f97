"""Controls of experiments 1 and 5: declared with the right roles, computed right, and acted on.

Three layers: the control learners on tiny problems (their outcome is known by construction),
the controls' rules on hand-made per-seed numbers (a failed control must turn every verdict
inconclusive), and one ``--quick`` run of each experiment (the controls are in the JSON, read
their numbers from ``per_seed`` and pass).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import their helpers as sibling modules

import class_incremental as ci  # noqa: E402
import continual_controls as cc  # noqa: E402
import exp1_dgd_recall as exp1  # noqa: E402
import exp5_continual as exp5  # noqa: E402
import ortho_tasks as ot  # noqa: E402
import recall_controls as rcs  # noqa: E402
import recall_stream as rs  # noqa: E402
from ledger import Check, Control, PerSeed, judge  # noqa: E402

EXP1_CONTROLS = {
    "least_squares_recalls_phase_1": "positive",
    "least_squares_recalls_phase_2": "positive",
    "never_written_memory": "negative",
    "shuffled_values_not_recalled": "negative",
    "hebbian_cannot_overwrite": "negative",
}
EXP5_CONTROLS = {
    "joint_training_fits_all_tasks": "positive",
    "memoryless_sgd_keeps_old_tasks": "positive",
    "reset_per_task_forgets": "negative",
    "joint_training_fits_all_classes": "positive",
    "reset_per_stage_forgets": "negative",
    "sequential_mlp_forgets": "negative",
}


# --------------------------------------------------------------------------- exp1 learners
def small_stream_cfg(**kw: Any) -> rs.StreamConfig:
    return rs.StreamConfig(**{"steps": 1200, "eval_every": 20, **kw})


def test_least_squares_recovers_a_noiseless_map_exactly() -> None:
    cfg = small_stream_cfg(value_noise=0.0)
    pre, final = rs.least_squares_errors(rs.make_stream(cfg, 0), cfg.switch)
    assert pre < 1e-12 and final < 1e-12


def test_least_squares_error_matches_its_first_principles_floor() -> None:
    """The positive control's threshold rests on σ_v²d²/(n E‖k‖²): the measured error must be of
    that size (within a factor 2 on average over seeds), far below the threshold."""
    cfg = small_stream_cfg()
    errs = [e for s in range(6) for e in rs.least_squares_errors(rs.make_stream(cfg, s), 600)]
    floor = rs.least_squares_floor(cfg, cfg.switch)
    assert 0.5 * floor < statistics.fmean(errs) < 2 * floor
    assert max(errs) < rcs.RECALLED / 3


def test_shuffled_values_keep_every_marginal_and_destroy_the_pairing() -> None:
    cfg = small_stream_cfg()
    stream = rs.make_stream(cfg, 1)
    shuffled = rs.shuffle_values(stream, cfg.switch, seed=1)
    assert torch.equal(shuffled.keys, stream.keys)
    for sl in (slice(0, cfg.switch), slice(cfg.switch, None)):  # same values within each phase
        a, b = stream.values[sl], shuffled.values[sl]
        assert torch.equal(a.sort(0).values, b.sort(0).values) and not torch.equal(a, b)
    pre, final = rs.least_squares_errors(shuffled, cfg.switch)  # even the oracle cannot recall
    assert pre > 0.9 and final > 0.9


def test_run_controls_records_the_control_memories() -> None:
    cfg = small_stream_cfg()
    runs = exp1.Runs()
    stream = rs.make_stream(cfg, 2)
    exp1.run_controls(cfg, stream, 2, cfg.eta_grid.index(1.0), runs)
    ps = runs.per_seed
    assert ps["final_error"][exp1.ZERO] == [1.0]  # the metric's normalisation, exactly
    pre, final = rs.least_squares_errors(stream, cfg.switch)
    assert ps["pre_switch_error"][exp1.LSQ] == [pre] and ps["final_error"][exp1.LSQ] == [final]
    assert ps["final_error"][exp1.SHUFFLED][0] > 0.9  # DGD cannot recall shuffled pairs
    assert set(ps) >= {"stream_error", "after_switch_error"}  # every phase metric of the curve


# --------------------------------------------------------------------------- exp5 learners
def tiny_ortho() -> ot.OrthoConfig:
    return ot.OrthoConfig(d=20, n_tasks=4, steps_per_task=80, n_test=128)


def test_sgd_reset_per_task_forgets_everything_and_sequential_sgd_nothing() -> None:
    cfg = tiny_ortho()
    reset = ot.run_ortho(cfg, ot.SGD, {"lr": 0.1}, 0, mode="reset").losses
    n = cfg.n_tasks
    assert torch.allclose(reset[n - 1, : n - 1], torch.ones(n - 1))  # W U_j = 0: the zero model
    assert ot.forgetting(reset) > 0.95
    seq = ot.run_ortho(cfg, ot.SGD, {"lr": 0.1}, 0).losses
    assert abs(ot.forgetting(seq)) < 1e-6  # task i never touches W U_j


def test_sgd_joint_training_fits_every_task() -> None:
    cfg = tiny_ortho()
    joint = ot.run_ortho(cfg, ot.SGD, {"lr": 0.1}, 0, mode="joint").losses
    assert float(joint[-1].max()) < cc.FITS_LOSS
    assert float(joint[0, 1:].max()) < 0.5  # block 0 already trains every task (mixed batches)
    seq = ot.run_ortho(cfg, ot.SGD, {"lr": 0.1}, 0).losses
    assert torch.allclose(seq[0, 1:], torch.ones(cfg.n_tasks - 1))  # sequential: task 0 only


def test_bayes_accuracy_estimate_matches_nearest_mean_accuracy() -> None:
    cfg = ci.ClassIncConfig()
    g = torch.Generator().manual_seed(0)
    accs = []
    for _ in range(5):
        data = ci.make_class_data(cfg, g)
        pred = torch.cdist(data.test_x, data.means).argmin(-1)
        accs.append(float((pred == data.test_y).float().mean()))
    assert abs(statistics.fmean(accs) - ci.bayes_accuracy_bound(cfg)) < 0.03
    assert ci.bayes_accuracy_bound(cfg) > cc.FITS_ACC + 0.1  # the threshold has headroom


def test_class_incremental_controls_joint_fits_and_reset_forgets() -> None:
    cfg = ci.ClassIncConfig(
        n_classes=4, n_stages=2, steps_per_stage=60, n_test_per_class=50, cms_chunks=(1, 2)
    )
    mlp = ci.variants(cfg)[ci.MLP]
    joint = ci.run_class_inc(cfg, mlp, 0.1, 0, mode="joint")
    assert ci.acc_metrics(joint)["avg_final_accuracy"] > cc.FITS_ACC
    reset = ci.acc_metrics(ci.run_class_inc(cfg, mlp, 0.1, 0, mode="reset"))
    assert reset["avg_just_learned_accuracy"] > 0.9 and reset["avg_forgetting_acc"] > 0.8


# --------------------------------------------------------------------------- rules on numbers
def per_seed_for(checks: list[Check], controls: list[Control], value: float) -> PerSeed:
    """Every method a check or control reads, at ``value`` for 3 seeds."""
    ps: PerSeed = {}
    for c in checks:
        for m in (c.candidate, c.baseline, *c.attribution):
            if isinstance(m, str):
                ps.setdefault(c.metric, {})[m] = [value] * 3
    for k in controls:
        ps.setdefault(k.metric, {})[k.method] = [value] * 3
    return ps


def set_control(ps: PerSeed, control: Control, values: list[float]) -> None:
    ps[control.metric][control.method] = values


def good_exp1_numbers(controls: list[Control]) -> PerSeed:
    ps = per_seed_for(exp1.checks(), controls, 0.3)
    for c in controls:
        set_control(ps, c, [0.01, 0.02, 0.015] if c.role == "positive" else [1.0, 1.1, 0.9])
    return ps


def test_exp1_controls_pass_on_good_numbers_and_fail_loudly_on_bad_ones() -> None:
    controls = exp1.controls(rs.StreamConfig())
    assert {c.name: c.role for c in controls} == EXP1_CONTROLS
    ok = judge(exp1.checks(), controls, good_exp1_numbers(controls))
    assert all(c["passed"] for c in ok["controls"]) and "control failed" not in ok["verdict"]
    # the oracle cannot fit phase 2: the stream is not learnable as set up
    ps = good_exp1_numbers(controls)
    ps["final_error"][exp1.LSQ] = [0.2, 0.3, 0.25]
    out = judge(exp1.checks(), controls, ps)
    assert out["verdict"] == "inconclusive (positive control failed: least_squares_recalls_phase_2)"
    assert all(c["verdict"] == out["verdict"] for c in out["checks"])
    # DGD "recalls" values that were shuffled against their keys: the metric can be gamed
    ps = good_exp1_numbers(controls)
    ps["final_error"][exp1.SHUFFLED] = [0.3, 0.4, 0.2]
    out = judge(exp1.checks(), controls, ps)
    assert out["verdict"] == "inconclusive (negative control failed: shuffled_values_not_recalled)"


def test_exp1_hebbian_control_reads_the_after_switch_error_of_gd() -> None:
    (heb,) = [c for c in exp1.controls(rs.StreamConfig()) if c.name == "hebbian_cannot_overwrite"]
    assert (heb.metric, heb.method, heb.higher_is_better) == ("after_switch_error", exp1.GD, False)
    assert isinstance(heb.threshold, float) and 0 < heb.threshold < 1
    assert "83%" in heb.why  # 1 / (1 + adapt_window) of the stored tokens follow the old map


def good_exp5_numbers(controls: list[Control]) -> PerSeed:
    ps = per_seed_for(exp5.checks(), controls, 0.5)
    good = {
        "joint_training_fits_all_tasks": [0.001] * 3,
        "memoryless_sgd_keeps_old_tasks": [0.0, 1e-9, -1e-9],
        "reset_per_task_forgets": [0.99] * 3,
        "joint_training_fits_all_classes": [0.95, 0.93, 0.96],
        "reset_per_stage_forgets": [0.98] * 3,
        "sequential_mlp_forgets": [0.85, 0.8, 0.9],
    }
    for c in controls:
        set_control(ps, c, good[c.name])
    return ps


@pytest.mark.parametrize(
    ("name", "bad", "role"),
    [
        ("joint_training_fits_all_tasks", [0.2, 0.1, 0.3], "positive"),
        ("memoryless_sgd_keeps_old_tasks", [0.05, 0.02, 0.03], "positive"),
        ("joint_training_fits_all_classes", [0.5, 0.6, 0.55], "positive"),
        ("reset_per_task_forgets", [0.1, 0.2, 0.1], "negative"),
        ("reset_per_stage_forgets", [0.3, 0.2, 0.4], "negative"),
        ("sequential_mlp_forgets", [0.05, 0.1, 0.0], "negative"),
        ("joint_training_fits_all_classes", [math.nan, 0.9, 0.9], "positive"),
    ],
)
def test_exp5_each_failed_control_makes_its_parts_verdicts_inconclusive(
    name: str, bad: list[float], role: str
) -> None:
    controls = cc.controls(ci.ClassIncConfig())
    assert {c.name: c.role for c in controls} == EXP5_CONTROLS
    ok = judge(exp5.checks(), controls, good_exp5_numbers(controls))
    assert all(c["passed"] for c in ok["controls"])
    ps = good_exp5_numbers(controls)
    (control,) = [c for c in controls if c.name == name]
    set_control(ps, control, bad)
    out = judge(exp5.checks(), controls, ps)
    want = f"inconclusive ({role} control failed: {name})"
    assert out["part_verdicts"][control.part] == want  # the part the control guards
    assert all(c["verdict"] == want for c in out["checks"] if c["part"] == control.part)
    others = {p: v for p, v in out["part_verdicts"].items() if p != control.part}
    assert others and others == {p: v for p, v in ok["part_verdicts"].items() if p in others}
    assert out["verdict"] == "inconclusive"  # a part that cannot tell makes the whole mixed


def test_the_memoryless_sgd_premise_is_a_control_not_a_check() -> None:
    assert "memoryless_sgd_does_not_forget" not in {c.name for c in exp5.checks()}
    (sgd,) = [c for c in cc.controls(ci.ClassIncConfig()) if c.method == ot.SGD]
    assert (sgd.metric, sgd.threshold, sgd.higher_is_better) == ("avg_forgetting", 0.01, False)


# --------------------------------------------------------------------------- quick runs
def run_quick(script: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(EXPERIMENTS / script), "--quick", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads((out / script.replace(".py", ".json")).read_text())
    return result


def check_controls(payload: dict[str, Any], expected: dict[str, str]) -> None:
    """Names and roles as declared; each value is the mean of its per-seed numbers; all pass."""
    got = payload["controls"]
    assert {c["name"]: c["role"] for c in got} == expected
    n = len(payload["seeds"])
    for c in got:
        vals = payload["per_seed"][c["metric"]][c["method"]]
        assert len(vals) == n and c["value"] == pytest.approx(statistics.fmean(vals))
        assert c["why"] and c["rule"].startswith(c["role"])
        assert c["passed"], c
    assert "control failed" not in payload["verdict"]


@pytest.mark.slow
def test_exp1_quick_run_declares_passing_controls(tmp_path: Path) -> None:
    payload = run_quick("exp1_dgd_recall.py", tmp_path)
    check_controls(payload, EXP1_CONTROLS)
    by_name = {c["name"]: c for c in payload["controls"]}
    assert by_name["never_written_memory"]["value"] == 1.0
    assert by_name["least_squares_recalls_phase_1"]["value"] < 0.05  # floor ≈ 0.013 at --quick


@pytest.mark.slow
def test_exp5_quick_run_declares_passing_controls(tmp_path: Path) -> None:
    payload = run_quick("exp5_continual.py", tmp_path)
    check_controls(payload, EXP5_CONTROLS)
    by_name = {c["name"]: c for c in payload["controls"]}
    assert by_name["memoryless_sgd_keeps_old_tasks"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert by_name["reset_per_task_forgets"]["value"] > 0.9
    assert set(payload["config"]["control_hyperparameters"]) == {
        cc.SGD_JOINT,
        cc.SGD_RESET,
        cc.MLP_JOINT,
        cc.MLP_RESET,
    }
