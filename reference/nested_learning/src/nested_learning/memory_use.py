"""Does a trained model use its in-context memories? Test-time switches and gate statistics.

HOPE learns in context twice (arXiv 2512.24695 §8.3): the self-modifying Titans memories are
written chunk by chunk (Eq. 88-91) and the CMS levels take a step on the task loss every C^(l)
tokens (Eq. 71). A trained model may or may not rely on either. :func:`memories_off` switches
them off on a trained model *at test time* — Titans writes (every read then sees the meta-learned
initial state), CMS updates (every level stays at its θ0), or both — so that the same metric can
be measured with and without them (``MEMORY_SETTINGS``). :func:`gate_statistics` reports the
learned write gates: η (mean / max, against its bound ``eta_scale``) and the retention α (mean).

The switches replace module configs for the duration of a ``with`` block and restore them after,
so they work on any model built from :class:`SelfModifyingTitans` and :class:`ContinuumMemory`
(HOPE and the Titans baseline). A model with neither is returned unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from .core.cms import ContinuumMemory
from .core.titans import SelfModifyingTitans

#: setting name -> (Titans writes off, CMS updates off)
MEMORY_SETTINGS: dict[str, tuple[bool, bool]] = {
    "with_memory": (False, False),
    "titans_off": (True, False),
    "cms_off": (False, True),
    "all_off": (True, True),
}


def mixers(model: nn.Module) -> list[SelfModifyingTitans]:
    return [m for m in model.modules() if isinstance(m, SelfModifyingTitans)]


def cms_chains(model: nn.Module) -> list[ContinuumMemory]:
    return [m for m in model.modules() if isinstance(m, ContinuumMemory)]


def has_memories(model: nn.Module) -> dict[str, bool]:
    """Which of the two in-context memories ``model`` has: ``{"titans": …, "cms": …}``."""
    return {"titans": bool(mixers(model)), "cms": bool(cms_chains(model))}


@contextmanager
def memories_off(model: nn.Module, *, titans: bool = False, cms: bool = False) -> Iterator[None]:
    """Inside the block, ``model``'s Titans mixers write nothing (``titans``) and its CMS levels
    take zero steps (``cms``: inner lr 0); the trained weights are untouched and the original
    configs come back on exit, also after an exception."""
    saved: list[tuple[nn.Module, Any]] = []
    try:
        if titans:
            for m in mixers(model):
                saved.append((m, m.config))
                m.config = dataclasses.replace(m.config, writes=False)
        if cms:
            for c in cms_chains(model):
                saved.append((c, c.config))
                c.config = dataclasses.replace(c.config, inner_lr=0.0)
        yield
    finally:
        for module, config in reversed(saved):
            module.config = config


def memory_ablation(
    model: nn.Module, metric: Callable[[nn.Module], float]
) -> dict[str, float | None]:
    """``metric(model)`` under every :data:`MEMORY_SETTINGS` entry; ``None`` where the setting
    switches off a memory the model does not have (e.g. ``cms_off`` of the Titans baseline)."""
    has = has_memories(model)
    out: dict[str, float | None] = {}
    for name, (titans, cms) in MEMORY_SETTINGS.items():
        if (titans and not has["titans"]) or (cms and not has["cms"]):
            out[name] = None
            continue
        with memories_off(model, titans=titans, cms=cms):
            out[name] = float(metric(model))
    return out


@torch.no_grad()
def gate_statistics(model: nn.Module, run: Callable[[nn.Module], Any]) -> dict[str, float | None]:
    """Statistics of the write gates over every token of ``run(model)`` (one forward pass):
    ``eta_mean``, ``eta_max``, ``eta_bound`` (the largest bound among the mixers: ``eta_scale``,
    or 2 for the negative-eigenvalue step), ``alpha_mean`` and ``nonfinite`` (the fraction of
    tokens whose eta or alpha is not finite: a model that overflows on the probe). The means and
    the max are taken over the finite tokens only, ``None`` when there are none. Empty for a
    model without Titans mixers."""
    found = mixers(model)
    if not found:
        return {}
    etas: list[Tensor] = []
    alphas: list[Tensor] = []
    originals: list[tuple[SelfModifyingTitans, Any]] = []
    for m in found:
        gates = m._gates
        originals.append((m, gates))

        def record(eta_logit: Tensor, alpha_logit: Tensor, _g: Any = gates) -> Any:
            eta, alpha = _g(eta_logit, alpha_logit)
            etas.append(eta.detach().flatten().float())
            alphas.append(alpha.detach().flatten().float())
            return eta, alpha

        m._gates = record  # type: ignore[method-assign]
    try:
        run(model)
    finally:
        for m, _ in originals:
            del m._gates  # back to the class's method
    eta, alpha = torch.cat(etas), torch.cat(alphas)
    finite = eta.isfinite() & alpha.isfinite()
    eta, alpha = eta[finite], alpha[finite]
    bound = max(2.0 if m.config.negative_eigenvalues else m.config.eta_scale for m in found)
    some = bool(finite.any())
    return {
        "eta_mean": eta.mean().item() if some else None,
        "eta_max": eta.max().item() if some else None,
        "eta_bound": bound,
        "alpha_mean": alpha.mean().item() if some else None,
        "nonfinite": 1.0 - finite.float().mean().item(),
    }
