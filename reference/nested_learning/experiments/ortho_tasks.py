"""Part (a) of experiment 5: orthogonal-task regression trained with different optimizers.

Orthogonal-task regression, arXiv 2512.24695 §4.3, Eq. 45. Tasks i = 1…n share one linear
model ``W ∈ R^{o×d}`` (d = 50) and have losses ``L_i(W) = E_{x∼D_i} ‖W x − y‖²`` whose inputs live
in mutually orthogonal subspaces ``U_i`` (``x = U_i z``), so every task gradient ``(Wx − y) xᵀ``
has its rows in ``U_i``. One ``W*`` solves all tasks at once: the model has the capacity for all
of them, and a memoryless optimizer (plain SGD) cannot forget - its updates for task i never touch
``W U_j``. The paper's point: after many steps on task i the momentum points along ``U_i`` and has
"forgotten" the earlier subspaces, so forgetting is a matter of the optimizer's memory management,
not of capacity. The tasks are trained in sequence with SGD, SGD + momentum, DeltaMomentum
(Eq. 48-49, [fix] of spec §3.2), M3 (Eq. 75 / Algorithm 1), M3 without its slow momentum
(α = 0, an ablation that isolates the long gradient memory) and Adam. We report the loss matrix
``R[i, j]`` (normalised test loss on task j after training task i; 1 = the zero model), the
average forgetting ``mean_{j<n} R[n, j] − R[j, j]``, and the fraction of the momentum's energy that
lies in the earlier tasks' subspaces at the end of each task. Each optimizer's lr (and δ for
DeltaMomentum, ε for M3) is picked on a separate seed from a grid by the mean just-learned loss
``mean_j R[j, j]`` (plasticity), so that no optimizer is tuned for low forgetting.

Two reference learners serve as controls (``run_ortho``'s ``mode``): ``"joint"`` draws every
batch from all tasks at once (i.i.d. over the mixture), which shows the one model fits every task;
``"reset"`` restarts ``W`` at zero for each task, which must forget everything earlier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from nested_learning.core.optim import M3, DeltaMomentum

DIVERGED = 1e6  # normalised losses above this (or non-finite) count as a diverged run

SGD, SGDM, DELTA, M3_, ADAM = "SGD", "SGD+momentum", "DeltaMomentum", "M3", "Adam"
M3_FAST = "M3, α=0 (no slow momentum)"
OPTIMIZERS = (SGD, SGDM, DELTA, M3_, M3_FAST, ADAM)
M3_SLOW = "M3 slow momentum"
Mode = Literal["sequential", "joint", "reset"]

# momentum buffers that stand for each optimizer's "memory of gradients" (none for SGD)
MOMENTUM_KEYS = {
    SGDM: {SGDM: "momentum_buffer"},
    DELTA: {DELTA: "momentum_buffer"},
    M3_: {M3_: "fast_momentum", M3_SLOW: "slow_momentum"},
    ADAM: {ADAM: "exp_avg"},
    SGD: {},
    M3_FAST: {},
}


@dataclass(frozen=True)
class OrthoConfig:
    """Sizes of the orthogonal-task regression."""

    d: int = 50
    n_tasks: int = 10
    n_out: int = 5
    steps_per_task: int = 200
    batch: int = 16
    noise: float = 0.01
    n_test: int = 512
    m3_slow_chunk: int = 50
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
    delta_grid: tuple[float, ...] = (1.0, 10.0, 100.0)
    m3_eps_grid: tuple[float, ...] = (1e-8, 1e-3)

    @property
    def task_dim(self) -> int:
        return self.d // self.n_tasks


@dataclass
class OrthoTasks:
    """One seed's task subspaces, the shared solution and the test inputs."""

    bases: list[Tensor]  # U_i [d, task_dim], mutually orthogonal
    w_star: Tensor  # [o, d], solves every task
    test_x: list[Tensor]  # [n_test, d] per task
    test_scale: list[float]  # E‖W* x‖² on the test set (loss of the zero model)


def make_ortho_tasks(cfg: OrthoConfig, g: torch.Generator) -> OrthoTasks:
    """Orthonormal task subspaces U_i, a random W* and each task's test inputs."""
    q, _ = torch.linalg.qr(torch.randn(cfg.d, cfg.d, generator=g))
    k = cfg.task_dim
    bases = [q[:, i * k : (i + 1) * k] for i in range(cfg.n_tasks)]
    w_star = torch.randn(cfg.n_out, cfg.d, generator=g) / math.sqrt(k)
    test_x = [torch.randn(cfg.n_test, k, generator=g) @ u.T for u in bases]
    scale = [float((x @ w_star.T).square().sum(1).mean()) for x in test_x]
    return OrthoTasks(bases, w_star, test_x, scale)


Hyper = dict[str, float]  # optimizer hyper-parameters: lr (+ delta for DeltaMomentum)


def make_optimizer(
    name: str, params: list[nn.Parameter], hp: Hyper, cfg: OrthoConfig
) -> torch.optim.Optimizer:
    """The optimizer called ``name`` with the hyper-parameters ``hp``."""
    lr = hp["lr"]
    if name == SGD:
        return torch.optim.SGD(params, lr=lr)
    if name == SGDM:
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == DELTA:
        return DeltaMomentum(params, lr=lr, momentum=0.9, delta=hp["delta"])
    if name in (M3_, M3_FAST):
        alpha = 0.0 if name == M3_FAST else 1.0
        return M3(params, lr=lr, slow_chunk=cfg.m3_slow_chunk, alpha=alpha, eps=hp["eps"])
    if name == ADAM:
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def hyper_grid(name: str, cfg: OrthoConfig) -> list[Hyper]:
    """Candidates per optimizer: the lr grid, × the delta grid for DeltaMomentum (its delta-rule
    term only matters once lr·delta·‖g‖² is not ≪ 1), × the eps grid for M3 (its orthogonalised
    update divided by √V grows without bound as gradients vanish unless eps is raised)."""
    if name == DELTA:
        return [{"lr": lr, "delta": d} for lr in cfg.lr_grid for d in cfg.delta_grid]
    if name in (M3_, M3_FAST):
        return [{"lr": lr, "eps": e} for lr in cfg.lr_grid for e in cfg.m3_eps_grid]
    return [{"lr": lr} for lr in cfg.lr_grid]


def old_subspace_fraction(m: Tensor, bases: list[Tensor], task: int) -> float:
    """Share of ‖m‖² lying in the subspaces of tasks < ``task`` (m's rows are gradient rows)."""
    total = float(m.square().sum())
    if total == 0.0 or not math.isfinite(total):
        return 0.0
    old = torch.cat(bases[:task], dim=1)  # [d, task·k], orthonormal columns
    return float((m @ old).square().sum()) / total


@dataclass
class OrthoRun:
    """What one sequential run measures."""

    losses: Tensor  # R [n_tasks, n_tasks]
    momentum_old: dict[str, list[float]]  # buffer name -> share in old subspaces, per task ≥ 1


def task_batch(cfg: OrthoConfig, tasks: OrthoTasks, task: int | None, g: torch.Generator) -> Tensor:
    """``batch`` inputs ``x = U_i z`` of task ``task``, or of a random task per sample (None)."""
    if task is not None:
        return torch.randn(cfg.batch, cfg.task_dim, generator=g) @ tasks.bases[task].T
    which = torch.randint(cfg.n_tasks, (cfg.batch,), generator=g)
    z = torch.randn(cfg.batch, cfg.task_dim, 1, generator=g)
    return (torch.stack(tasks.bases)[which] @ z).squeeze(-1)


def run_ortho(
    cfg: OrthoConfig, opt_name: str, hp: Hyper, seed: int, mode: Mode = "sequential"
) -> OrthoRun:
    """Train the tasks in order with one optimizer; returns the loss matrix R.

    ``mode="joint"``: block i draws its batches from all tasks (i.i.d. mixture), so R's last row
    is the jointly trained model; ``mode="reset"``: ``W`` and the optimizer restart at each task.
    """
    g = torch.Generator().manual_seed(seed)
    tasks = make_ortho_tasks(cfg, g)
    w = nn.Parameter(torch.zeros(cfg.n_out, cfg.d))
    opt = make_optimizer(opt_name, [w], hp, cfg)
    R = torch.full((cfg.n_tasks, cfg.n_tasks), float("nan"))
    mom: dict[str, list[float]] = {k: [] for k in MOMENTUM_KEYS[opt_name]}
    for i in range(cfg.n_tasks):
        if mode == "reset":
            w.data.zero_()
            opt = make_optimizer(opt_name, [w], hp, cfg)
        for _ in range(cfg.steps_per_task):
            x = task_batch(cfg, tasks, None if mode == "joint" else i, g)
            y = x @ tasks.w_star.T + cfg.noise * torch.randn(cfg.batch, cfg.n_out, generator=g)
            loss = (x @ w.T - y).square().sum(1).mean()
            w.grad = torch.autograd.grad(loss, w)[0]
            opt.step()
        with torch.no_grad():
            for j, (xt, sc) in enumerate(zip(tasks.test_x, tasks.test_scale, strict=True)):
                R[i, j] = float((xt @ (w - tasks.w_star).T).square().sum(1).mean()) / sc
        for label, key in MOMENTUM_KEYS[opt_name].items():
            if i > 0:
                mom[label].append(old_subspace_fraction(opt.state[w][key], tasks.bases, i))
    R = torch.nan_to_num(R, nan=DIVERGED, posinf=DIVERGED).clamp(max=DIVERGED)
    return OrthoRun(R, mom)


def forgetting(R: Tensor) -> float:
    """mean_{j < n-1} R[n-1, j] − R[j, j] (loss units; > 0 = forgot)."""
    n = R.shape[0]
    return float(torch.stack([R[n - 1, j] - R[j, j] for j in range(n - 1)]).mean())


def tune_ortho(cfg: OrthoConfig, seed: int) -> dict[str, Hyper]:
    """Hyper-parameters per optimizer with the lowest mean just-learned loss mean_j R[j, j]."""
    best = {}
    for name in OPTIMIZERS:
        grid = hyper_grid(name, cfg)
        scores = [float(run_ortho(cfg, name, hp, seed).losses.diagonal().mean()) for hp in grid]
        best[name] = grid[min(range(len(scores)), key=scores.__getitem__)]
    return best
