"""Preemption-safe training: SIGTERM or SIGUSR1 ends the run cleanly at a step boundary.

Schedulers announce the end of a job with a signal: SLURM sends SIGTERM on preemption or
``scancel`` (then SIGKILL after its grace time) and, with ``--signal``, an early SIGUSR1 before the
time limit. :class:`PreemptionGuard` turns either signal into a flag; the loop finishes the current
step, writes a checkpoint, prints one line saying how to resume, and ``train.py`` exits with
:data:`PREEMPTED_EXIT_CODE`. Under ``torchrun`` the flag is all-reduced every step, so every rank
stops at the same step, even when only one of them got the signal (no rank waits forever in a
collective its peers never join).
"""

from __future__ import annotations

import shlex
import signal
from types import FrameType, TracebackType
from typing import Any

import torch
import torch.distributed as dist

from .distributed import DistributedContext

#: ``EX_TEMPFAIL`` from sysexits.h ("temporary failure, try again"): the run was preempted, its
#: checkpoint is on disk, and the same command with ``--resume`` continues it exactly.
PREEMPTED_EXIT_CODE = 75
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class PreemptionGuard:
    """Context manager: while active, SIGTERM and SIGUSR1 set a flag instead of killing us."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> PreemptionGuard:
        for sig in PREEMPTION_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: only record the signal; the loop acts on it at the next step."""
        self.signal_name = signal.Signals(signum).name

    def should_stop(self, ctx: DistributedContext, device: torch.device) -> bool:
        """True on every rank once any rank got a signal (an all-reduce under ``torchrun``)."""
        requested = self.signal_name is not None
        if not ctx.enabled:
            return requested
        flag = torch.tensor([1.0 if requested else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)


def resume_command(argv: list[str], world_size: int = 1) -> str:
    """The command that continues a run started with ``train.py`` arguments ``argv``."""
    args = argv if "--resume" in argv or "--auto-resume" in argv else [*argv, "--resume"]
    launcher = ["torchrun", "--nproc_per_node", str(world_size)] if world_size > 1 else ["python"]
    return shlex.join([*launcher, "train.py", *args])


def preempted_message(
    guard: PreemptionGuard, step: int, total: int, where: str, argv: list[str], world_size: int = 1
) -> str:
    """The one line printed on preemption: what happened, where the checkpoint is, what to run."""
    cause = guard.signal_name or "a signal on another rank"
    return (
        f"preempted by {cause} after step {step}/{total}: checkpoint saved to {where}; "
        f"exit code {PREEMPTED_EXIT_CODE}; resume with: {resume_command(argv, world_size)}"
    )
