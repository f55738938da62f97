"""Inspecting a trained HOPE model while it reads: what the demo (``demo/app.py``) shows.

Modules: ``generation`` (load a checkpoint, sample a completion), ``memory_trace`` (record the main
Titans memory's chunk snapshots, keys and targets), ``recall`` (a planted fact ``KEY=VALUE``: the
probes and the memory's retention) and ``analysis`` (one text, all of it at once). The text is
analysed in one traced forward pass plus one batch of probes:

1. **Surprise** (two panels). Top: the *next-token loss* ``-log p(x_t | x_<t)`` (nats) of the model
   at every token. Bottom: the *inner loss of the main Titans memory* ``M_mem`` of every layer,
   ``||M_mem,ξ(k_t) - v̂_t||²`` averaged over heads, where ``ξ`` is the chunk snapshot the token
   reads and learns from (Eq. 88-91), ``k_t`` its key and ``v̂_t = M_mem,ξ(v_t)`` its
   self-generated target (Eq. 84) — i.e. how surprising token t is to the memory it is written to.
2. **CMS updates.** For every Continuum-Memory level ℓ (chunk C^(ℓ), Eq. 71), the token counts at
   which its fast weights changed, read off the per-segment CMS states of
   :meth:`HopeLM.forward_online`, and the size of each change
   ``||θ̃_after - θ̃_before|| / ||θ0||`` (all layers, ``W_in`` and ``W_out`` together). The positions
   scheduled by the config (multiples of C^(ℓ)) are drawn as grey ticks.
3. **Recall of the planted fact** (two panels). Top (*the model*): at ``p`` = the end of the fact
   and every later main-memory chunk boundary (thinned to at most 12 more), the text up to ``p`` is
   followed by the probe ``"KEY="`` and scored on ``VALUE`` (teacher forced): mean ``log p`` per
   VALUE byte, nats (chance: ``-log 256``). Bottom
   (*the memory*): the main memory's recall error of the fact line's tokens,
   ``mean_t ||M_mem,c(k_t) - v̂_t||²`` over the fact's tokens t (their keys and targets as written),
   read with every later chunk snapshot c, divided by the same error before the fact was written:
"""

from __future__ import annotations

from nested_learning.inspection.analysis import (
    Analysis,
    analyze_tokens,
    cms_updates,
    next_token_loss,
)
from nested_learning.inspection.generation import (
    FiniteOnly,
    NonFiniteLogits,
    complete_tokens,
    load_model,
    single_thread,
)
from nested_learning.inspection.memory_trace import (
    ChunkRecord,
    MemoryTrace,
    memory_error,
    titans_modules,
    trace_main_memory,
)
from nested_learning.inspection.recall import Plant, probe_positions, probe_recall, retention_curve

__all__ = [
    "Analysis",
    "ChunkRecord",
    "FiniteOnly",
    "MemoryTrace",
    "NonFiniteLogits",
    "Plant",
    "analyze_tokens",
    "cms_updates",
    "complete_tokens",
    "load_model",
    "memory_error",
    "next_token_loss",
    "probe_positions",
    "probe_recall",
    "retention_curve",
    "single_thread",
    "titans_modules",
    "trace_main_memory",
]
