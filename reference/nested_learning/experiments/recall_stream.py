"""The key→value stream of experiment 1 and the recall error of a linear memory on it.

Keys are correlated in space (near an r-dimensional subspace) and in time (AR(1) latent), with
norms spread over ``norm_range``; values are ``v = A k + noise`` and the map ``A`` is redrawn
halfway through the stream (same key subspace). A memory ``W`` is scored by its relative recall
error on fresh probe keys, ``Σ‖W k − A k‖² / Σ‖A k‖²`` for the current ``A`` (1 = the zero
memory). Learning rules are functions ``(W [E, d, d], k, v, η [E]) → W`` run for a whole grid of
step sizes at once (:func:`run_rule`).

The two reference memories of the controls live here too: :func:`least_squares_errors` (the
batch least-squares fit of each phase, the best any linear memory can do from those tokens) and
:func:`shuffle_values` (the same tokens with the key→value pairing destroyed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

CAP = 1e6  # recall errors above this count as diverged (keeps the numbers finite)


@dataclass(frozen=True)
class StreamConfig:
    """Sizes of the stream and of the evaluation."""

    d: int = 32
    rank: int = 4
    steps: int = 3000
    rho: float = 0.9
    key_noise: float = 0.1
    norm_range: tuple[float, float] = (0.5, 3.0)
    value_noise: float = 0.1
    n_probe: int = 256
    eval_every: int = 10
    adapt_window: float = 0.2  # fraction of a phase after the switch used for "after_switch"
    eta_grid: tuple[float, ...] = tuple(10 ** (e / 2) for e in range(-10, 5))  # 1e-5 … 1e2

    @property
    def switch(self) -> int:
        return self.steps // 2


@dataclass
class Stream:
    """One seed's tokens, the two maps and the probe keys the recall error is measured on."""

    keys: Tensor  # [T, d]
    values: Tensor  # [T, d]
    maps: tuple[Tensor, Tensor]  # A before / after the switch
    probe: Tensor  # [P, d]


def _keys(cfg: StreamConfig, basis: Tensor, z: Tensor, g: torch.Generator) -> Tensor:
    """k = c (B z + σ n)/√r with log-uniform norm scale c: correlated, not unit norm."""
    n = z.shape[0]
    lo, hi = math.log(cfg.norm_range[0]), math.log(cfg.norm_range[1])
    scale = torch.exp(lo + (hi - lo) * torch.rand(n, 1, generator=g, dtype=z.dtype))
    noise = cfg.key_noise * torch.randn(n, cfg.d, generator=g, dtype=z.dtype)
    return scale * (z @ basis.T + noise) / math.sqrt(cfg.rank)


def make_stream(cfg: StreamConfig, seed: int) -> Stream:
    """Keys near a random r-dim subspace with AR(1) latents; v = A k + noise, A switches."""
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    basis, _ = torch.linalg.qr(torch.randn(cfg.d, cfg.rank, generator=g, dtype=dt))
    z = torch.empty(cfg.steps, cfg.rank, dtype=dt)
    z[0] = torch.randn(cfg.rank, generator=g, dtype=dt)
    eps = torch.randn(cfg.steps, cfg.rank, generator=g, dtype=dt)
    for t in range(1, cfg.steps):  # temporal correlation: non-i.i.d. tokens
        z[t] = cfg.rho * z[t - 1] + math.sqrt(1 - cfg.rho**2) * eps[t]
    keys = _keys(cfg, basis, z, g)
    maps = tuple(torch.randn(cfg.d, cfg.d, generator=g, dtype=dt) / math.sqrt(cfg.d) for _ in "ab")
    a_t = torch.stack([maps[0] if t < cfg.switch else maps[1] for t in range(cfg.steps)])
    values = (a_t @ keys[..., None]).squeeze(-1)
    values = values + cfg.value_noise * torch.randn(cfg.steps, cfg.d, generator=g, dtype=dt)
    probe_z = torch.randn(cfg.n_probe, cfg.rank, generator=g, dtype=dt)
    probe = _keys(cfg, basis, probe_z, g)
    return Stream(keys, values, (maps[0], maps[1]), probe)


def shuffle_values(stream: Stream, switch: int, seed: int) -> Stream:
    """The same keys and values with the values permuted within each phase: every marginal
    (keys, values, their map) is unchanged, but a value no longer belongs to its key."""
    g = torch.Generator().manual_seed(seed)
    phases = (stream.values[:switch], stream.values[switch:])
    values = torch.cat([v[torch.randperm(len(v), generator=g)] for v in phases])
    return Stream(stream.keys, values, stream.maps, stream.probe)


# --------------------------------------------------------------------------- recall
Rule = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]  # (W [E,d,d], k, v, eta [E]) -> W


def recall_error(W: Tensor, A: Tensor, probe: Tensor) -> Tensor:
    """Σ‖W k − A k‖² / Σ‖A k‖² over the probe keys, per η row; non-finite → CAP."""
    target = probe @ A.T  # [P, d]
    err = ((probe @ W.mT - target) ** 2).sum((-1, -2)) / (target**2).sum()
    return torch.nan_to_num(err, nan=CAP, posinf=CAP).clamp(max=CAP)


def run_rule(rule: Rule, stream: Stream, cfg: StreamConfig) -> Tensor:
    """Run one rule over the stream for every η of the grid at once.

    Returns:
        recall-error curve ``[E, steps // eval_every]``, measured after each block of tokens.
    """
    eta = torch.tensor(cfg.eta_grid, dtype=torch.float64)
    W = torch.zeros(len(eta), cfg.d, cfg.d, dtype=torch.float64)
    curve = []
    for t in range(cfg.steps):
        W = rule(W, stream.keys[t], stream.values[t], eta)
        if (t + 1) % cfg.eval_every == 0:
            A = stream.maps[0] if t < cfg.switch else stream.maps[1]
            curve.append(recall_error(W, A, stream.probe))
    return torch.stack(curve, dim=1)


def least_squares_errors(stream: Stream, switch: int) -> tuple[float, float]:
    """Recall error of the least-squares memory ``argmin_W Σ_t ‖W k_t − v_t‖²`` fitted on all
    tokens of each phase at once (an oracle with the whole phase in hand), scored against the
    phase's own map: ``(phase 1 vs A₁, phase 2 vs A₂)``."""
    out = []
    for sl, A in zip((slice(0, switch), slice(switch, None)), stream.maps, strict=True):
        W = torch.linalg.lstsq(stream.keys[sl], stream.values[sl]).solution.T  # [d, d]
        out.append(float(recall_error(W[None], A, stream.probe)[0]))
    return out[0], out[1]


def least_squares_floor(cfg: StreamConfig, n: int) -> float:
    """Expected relative recall error of least squares on ``n`` tokens, ``σ_v² d² / (n E‖k‖²)``:
    ``σ_v² d/n`` per output row (probe keys drawn like the training keys), ``d`` rows, over
    ``E‖A k‖² = E‖k‖² = E c² (r + d σ_k²)/r`` with ``c`` log-uniform on ``norm_range``."""
    lo, hi = cfg.norm_range
    ec2 = (hi**2 - lo**2) / (2 * math.log(hi / lo))
    ek2 = ec2 * (cfg.rank + cfg.d * cfg.key_noise**2) / cfg.rank
    return cfg.value_noise**2 * cfg.d**2 / (n * ek2)
