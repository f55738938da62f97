"""Recall of a planted fact ``KEY=VALUE``: by the model (probes), by the main memory (retention)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from nested_learning.data import encode
from nested_learning.inspection.memory_trace import MemoryTrace, memory_error


@dataclass
class Plant:
    """The planted fact ``KEY=VALUE``: its text, the probe ``KEY=`` and the value."""

    fact: str
    probe: str
    value: str

    @classmethod
    def parse(cls, fact: str) -> Plant | None:
        """``"pin=4721"`` → Plant; None for an empty fact. Raises ValueError without ``=``."""
        fact = fact.strip()
        if not fact:
            return None
        key, sep, value = fact.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"the planted fact must look like KEY=VALUE (got {fact!r})")
        return cls(fact, key + "=", value)

    @property
    def line(self) -> str:
        """What is put in front of the prompt."""
        return self.fact + "\n"


def probe_recall(
    model: nn.Module, tokens: Tensor, plant: Plant, positions: list[int], context: int
) -> tuple[list[int], list[float]]:
    """Mean ``log p`` per VALUE byte after ``tokens[:p] + "KEY="``, for every ``p`` in
    ``positions`` that fits the context; one right-padded batch (the model is causal, so the
    padding cannot reach the scored positions)."""
    probe, value = encode(plant.probe), encode(plant.value)
    kept = [p for p in positions if p + len(probe) + len(value) <= context]
    if not kept:
        return [], []
    rows = [torch.cat([tokens[:p], probe, value]) for p in kept]
    width = max(len(r) for r in rows)
    batch = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    with torch.no_grad():
        logp = torch.log_softmax(model(batch).float(), dim=-1)
    scores = []
    for i, p in enumerate(kept):
        first = p + len(probe)  # position of VALUE's first byte
        pred = logp[i, first - 1 : first - 1 + len(value)]
        scores.append(float(pred.gather(1, value[:, None]).mean()))
    return kept, scores


def probe_positions(start: int, length: int, chunk: int, max_probes: int = 12) -> list[int]:
    """Where to probe: right after the fact (``start``), then every chunk boundary up to
    ``length``, thinned to multiples of ``chunk`` far enough apart for ≤ ``max_probes`` + 1."""
    step = chunk * max(1, math.ceil((length - start) / (max_probes * chunk)))
    return [start, *range(step * (start // step + 1), length + 1, step)]


def retention_curve(
    trace: MemoryTrace, span: tuple[int, int]
) -> tuple[list[int], np.ndarray | None]:
    """Main-memory recall error of the fact's tokens at every snapshot from the one before the fact
    was written to the end, divided by the error at that first one (``[layers, snapshots]``)."""
    a, b = span
    curves, positions = [], []
    for layer, records in enumerate(trace.chunks):
        if not records or trace.final[layer] is None:
            return [], None
        act = trace.activation[layer]
        keys, targets = [], []
        for r in records:  # keys/targets of the fact's tokens, as they were written
            lo, hi = max(a, r.start), min(b, r.start + r.k.shape[1])
            if lo < hi:
                keys.append(r.k[:, lo - r.start : hi - r.start])
                targets.append(r.target[:, lo - r.start : hi - r.start])
        if not keys:
            return [], None
        k, target = torch.cat(keys, 1), torch.cat(targets, 1)
        first = max(i for i, r in enumerate(records) if r.start <= a)
        final = trace.final[layer]
        assert final is not None
        snaps = [(r.start, r.w1, r.w2) for r in records[first:]]
        snaps.append((records[-1].start + records[-1].k.shape[1], final.w1, final.w2))
        with torch.no_grad():
            err = [float(memory_error(w1, w2, k, target, act).mean()) for _, w1, w2 in snaps]
        curves.append(np.asarray(err) / err[0])
        positions = [s for s, _, _ in snaps]
    return positions, np.stack(curves)
