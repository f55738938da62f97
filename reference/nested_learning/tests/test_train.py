"""train.py end to end on the CPU: outputs, checkpoints, exact resume, bad input, and DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import train
from nested_learning.checkpoint import load_checkpoint, save_checkpoint
from nested_learning.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def train_losses(run_dir: Path) -> dict[int, float]:
    return {
        int(r["step"]): float(r["loss"])
        for r in read_metrics(run_dir / "metrics.csv")
        if r["split"] == "train"
    }


def test_a_run_writes_metrics_plot_and_a_loadable_checkpoint(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    assert train.main([*tiny_train_args, "--steps", "30"]) == 0
    run = tmp_path / "run"
    losses = train_losses(run)
    assert sorted(losses) == list(range(1, 31))
    assert sum(list(losses.values())[-5:]) / 5 < losses[1]  # it learns
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = load_checkpoint(run / "checkpoint.pt")  # weights_only=True: plain data and tensors
    assert state["step"] == 30 and state["config"]["train"]["steps"] == 30
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "rng", "config"}


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(
    tmp_path: Path, tiny_train_args: list[str]
) -> None:
    straight = [*tiny_train_args, "--steps", "12", "--out-dir", str(tmp_path / "straight")]
    split = [*tiny_train_args, "--steps", "12", "--out-dir", str(tmp_path / "split")]
    assert train.main(straight) == 0
    assert train.main([*split, "--until", "5"]) == 0
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["step"] == 5
    assert train.main([*split, "--resume"]) == 0
    expected, resumed = train_losses(tmp_path / "straight"), train_losses(tmp_path / "split")
    assert sorted(resumed) == list(range(1, 13))
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, abs=1e-6), f"step {step}"


def test_a_failed_save_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(3)})

    def killed_midway(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # as if the job were killed during the write

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left


def test_checkpoints_refuse_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"obj": Path("x")}, path)  # an arbitrary class, not plain data
    with pytest.raises(Exception, match=r"[Ww]eights only"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "train.lrr=1"], "unknown key 'train.lrr'"),
        (["--set", "model.n_heads=3"], "n_heads"),
        (["--config", "nope"], "unknown config 'nope'"),
        (["--data", "missing.txt"], "data file not found"),
        (["--resume"], "no checkpoint"),
        (["--set", "train.tracker=mlflow"], "train.tracker must be one of none, tensorboard"),
        (["--set", "train.parallel=zero3"], "train.parallel must be one of ddp, fsdp"),
        (["--set", "train.parallel=fsdp"], "train.parallel=fsdp shards the model over a process"),
    ],
)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(
    tmp_path: Path,
    tiny_train_args: list[str],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    code = train.main([*tiny_train_args, "--steps", "2", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert not (tmp_path / "run").exists()


# torchrun with 2 CPU processes (one checkpoint, every rank's RNG, averaged losses, exact resume):
# tests/test_preemption.py, which also stops such a run with a signal.


@pytest.mark.parametrize("fails", [False, True])
def test_ranks_meet_before_leaving_only_after_a_finished_run(
    monkeypatch: pytest.MonkeyPatch, tiny_train_args: list[str], fails: bool
) -> None:
    """A finished rank waits for its peers, then tears the group down; a failed rank does not
    wait at a barrier its peers (stuck in another collective) would never reach."""
    import torch.distributed as dist

    from nested_learning.distributed import DistributedContext

    calls: list[str] = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(train, "init_distributed", lambda device: DistributedContext(0, 0, 2))

    def fake_train(*args: Any) -> train.RunResult:
        if fails:
            raise RuntimeError("this rank failed")
        return train.RunResult(0.0)

    monkeypatch.setattr(train, "train", fake_train)
    if fails:
        with pytest.raises(RuntimeError, match="this rank failed"):
            train.main(tiny_train_args)
    else:
        assert train.main(tiny_train_args) == 0
    assert calls == (["destroy"] if fails else ["barrier", "destroy"])


def _ddp_worker(rank: int, world_size: int, port: int, queue: Any) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from nested_learning.models import create_model

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    torch.manual_seed(0)  # same initial weights on every rank
    model = DistributedDataParallel(create_model(d_model=32, n_layers=1, n_heads=2, d_ff=64))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tokens = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(rank))
    model(tokens).float().pow(2).mean().backward()  # different data on each rank
    optimizer.step()
    queue.put((rank, [float(p.detach().sum()) for p in model.parameters()]))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_keeps_replicas_in_sync() -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results[0] == pytest.approx(results[1], abs=1e-6)  # gradients were averaged


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, "GOMP_SPINCOUNT = '1000'"),
        # Each case loads torch in a new interpreter (~3 s): the overrides run with the slow tests.
        pytest.param({"GOMP_SPINCOUNT": "7"}, "GOMP_SPINCOUNT = '7'", marks=pytest.mark.slow),
        pytest.param(
            {"OMP_WAIT_POLICY": "ACTIVE"}, "OMP_WAIT_POLICY = 'ACTIVE'", marks=pytest.mark.slow
        ),
    ],
)
def test_openmp_spin_default_is_in_force_before_torch_loads_and_yours_wins(
    env: dict[str, str], shown: str
) -> None:
    """libgomp prints the settings it read when torch loads it (OMP_DISPLAY_ENV)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env = {**clean, **env, "OMP_DISPLAY_ENV": "VERBOSE"}
    cmd = [sys.executable, "-c", "import train"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    if "OPENMP DISPLAY ENVIRONMENT" not in out.stderr:
        pytest.skip("torch's OpenMP runtime here is not GNU libgomp (GOMP_SPINCOUNT is libgomp's)")
    assert shown in out.stderr
    if env.get("OMP_WAIT_POLICY") == "ACTIVE":
        assert "GOMP_SPINCOUNT = '1000'" not in out.stderr
