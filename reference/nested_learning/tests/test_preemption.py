"""Preemption: a real signal to a real ``train.py`` process at a random step, alone and under
``torchrun``; the run checkpoints, says how to resume, exits 75, and resumes exactly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train
from nested_learning.checkpoint import load_checkpoint
from nested_learning.metrics import read_metrics
from nested_learning.preemption import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[1]
STEPS = 40  # long enough that the signal lands well before the end
FEW_EVALS = ["--set", "train.eval_interval=20"]
TOLERANCE = 1e-5  # the CSV keeps 6 decimals; an inexact resume is off by 1e-2 or more


def train_losses(run_dir: Path) -> dict[int, float]:
    return {
        int(r["step"]): float(r["loss"])
        for r in read_metrics(run_dir / "metrics.csv")
        if r["split"] == "train"
    }


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))
    }
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_args(tiny_train_args: list[str], out_dir: Path) -> list[str]:
    return [*tiny_train_args, *FEW_EVALS, "--steps", str(STEPS), "--out-dir", str(out_dir)]


def wait_for_step(proc: subprocess.Popen[str], run_dir: Path, step: int) -> None:
    """Poll metrics.csv until it has a train row at ``step`` or later."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"train.py exited early:\n{proc.communicate()[1][-3000:]}"
        if (run_dir / "metrics.csv").is_file() and max(train_losses(run_dir), default=0) >= step:
            return
        time.sleep(0.02)
    pytest.fail(f"no step {step} within 300 s")


@pytest.mark.slow  # a second process, polled while it trains
def test_a_signal_checkpoints_exits_75_and_resume_matches_an_uninterrupted_run(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    at = random.randint(2, 8)  # a random step
    split = run_args(tiny_train_args, tmp_path / "split")
    proc = subprocess.Popen(
        [sys.executable, "train.py", *split],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_step(proc, tmp_path / "split", at)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
    (line,) = [line for line in out.splitlines() if line.startswith("preempted")]
    stopped = load_checkpoint(tmp_path / "split" / "checkpoint.pt")["step"]
    assert at <= stopped < STEPS and f"after step {stopped}/{STEPS}" in line
    assert "SIGUSR1" in line and "exit code 75" in line and line.endswith("--resume")
    assert max(train_losses(tmp_path / "split")) == stopped  # nothing logged past the checkpoint

    assert train.main([*split, "--resume"]) == 0
    straight = run_args(tiny_train_args, tmp_path / "straight")
    assert train.main(straight) == 0
    expected, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "split")
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, abs=TOLERANCE), f"step {step}"


def torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "train.py", *args]  # fmt: skip


def worker_of_rank(launcher: int, rank: int) -> int:
    """The pid of ``torchrun``'s worker with ``RANK=rank`` (read from /proc)."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker with RANK={rank} among {children}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds workers through /proc")
def test_torchrun_a_signal_to_one_rank_stops_both_at_the_same_step_and_resumes_exactly(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    """Only rank 1 gets SIGUSR1; the all-reduced flag stops rank 0 at the same step."""
    straight = run_args(tiny_train_args, tmp_path / "straight")
    done = subprocess.run(
        torchrun(straight), cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    at = random.randint(2, 8)
    split = run_args(tiny_train_args, tmp_path / "split")
    proc = subprocess.Popen(
        torchrun(split),
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_step(proc, tmp_path / "split", at)
    os.kill(worker_of_rank(proc.pid, 1), signal.SIGUSR1)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, "torchrun reports the workers' exit code 75 as a failure"
    assert f"exitcode  : {PREEMPTED_EXIT_CODE}" in err
    (line,) = [line for line in out.splitlines() if line.startswith("preempted")]
    assert "a signal on another rank" in line  # rank 0 printed it; rank 1 got the signal
    assert "resume with: torchrun --nproc_per_node 2 train.py" in line
    state = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert at <= state["step"] < STEPS and state["world_size"] == 2 and len(state["rng"]) == 2

    resumed_run = subprocess.run(
        torchrun([*split, "--resume"]),
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed_run.returncode == 0, resumed_run.stderr[-3000:]
    expected, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "split")
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, abs=TOLERANCE), f"step {step}"
