"""scripts/slurm/train.sbatch: it passes shellcheck, and its launch line, run here with the
SLURM_* variables of a 1-node job, trains on 2 CPU processes, checkpoints on the batch shell's
USR1, requeues itself, and the requeued job resumes from the checkpoint.

``srun`` and ``scontrol`` are not installed off a cluster: two shims in a temporary PATH stand
in for them (``srun`` runs its command once, as on one node with one task; ``scontrol`` resolves
the node list and records a requeue).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nested_learning.checkpoint import load_checkpoint
from nested_learning.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm" / "train.sbatch"
SRUN = """#!/bin/bash
while [[ "${1:-}" == -* ]]; do shift; done  # drop srun's own options
exec "$@"
"""
SCONTROL = """#!/bin/bash
case "$1 $2" in
  "show hostnames") echo "$3" ;;
  "requeue "*) echo "requeue $2" >> "$SCONTROL_LOG" ;;
  *) echo "scontrol shim: unexpected $*" >&2; exit 1 ;;
esac
"""


def test_the_batch_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_batch_script_asks_for_the_signal_and_the_requeue() -> None:
    lines = SCRIPT.read_text().splitlines()
    assert "#SBATCH --signal=B:USR1@120" in lines and "#SBATCH --requeue" in lines
    assert any(line.startswith("#SBATCH --gpus-per-node=") for line in lines)


def slurm_env(tmp_path: Path) -> dict[str, str]:
    """A 1-node job's variables, with the shims first on PATH."""
    shims = tmp_path / "shims"
    shims.mkdir(exist_ok=True)
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "RANK"))}
    env.update(
        PATH=f"{shims}{os.pathsep}{env['PATH']}",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NODELIST="127.0.0.1",
        SLURM_NNODES="1",
        SLURM_GPUS_ON_NODE="2",  # two processes: on the CPU here (--device cpu)
        SLURM_SUBMIT_DIR=str(ROOT),
        SCONTROL_LOG=str(tmp_path / "scontrol.log"),
        RDZV_PORT=str(port),
        PYTHON=sys.executable,
        OMP_NUM_THREADS="1",
    )
    return env


def last_step(run_dir: Path) -> int:
    if not (run_dir / "metrics.csv").is_file():
        return 0
    rows = read_metrics(run_dir / "metrics.csv")
    return max((int(r["step"]) for r in rows if r["split"] == "train"), default=0)


@pytest.mark.slow
def test_the_launch_line_trains_checkpoints_on_usr1_requeues_and_resumes(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    steps = 40
    args = [*tiny_train_args, "--set", "train.eval_interval=20", "--steps", str(steps)]
    cmd = ["bash", str(SCRIPT), *args]
    job = subprocess.Popen(
        cmd, cwd=ROOT, env=slurm_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    run = tmp_path / "run"
    deadline = time.monotonic() + 300
    while last_step(run) < 2:
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no training step within 300 s"
        time.sleep(0.02)
    job.send_signal(signal.SIGUSR1)  # what `--signal=B:USR1@120` does before the time limit
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-3000:]
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    stopped = load_checkpoint(run / "checkpoint.pt")
    assert 2 <= stopped["step"] < steps and stopped["world_size"] == 2
    assert any(line.startswith("preempted by SIGTERM") for line in out.splitlines())

    requeued = subprocess.run(
        cmd, cwd=ROOT, env=slurm_env(tmp_path), capture_output=True, text=True, timeout=600
    )  # the same job, started again by SLURM
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert f"resumed from step {stopped['step']}" in requeued.stdout
    assert load_checkpoint(run / "checkpoint.pt")["step"] == steps
    assert last_step(run) == steps
