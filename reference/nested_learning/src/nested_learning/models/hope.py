"""Hope and Hope-Attention language models (arXiv 2512.24695 §8.3, Eq. 94-97; spec §8).

A Hope block is a self-modifying Titans sequence mixer followed by a Continuum Memory System
(CMS) chain of MLPs ordered fast → slow (Eq. 97, Fig. 5)::

    x ← x + SelfModTitans(RMSNorm(x))              # Eq. 94-96: fast memories, chunk-wise DGD
    x ← MLP^(f_K)(… MLP^(f_1)(x))                  # Eq. 97: level x + W_out σ(W_in RMSNorm(x))

Hope-Attention swaps the mixer for causal softmax attention with RoPE (§8.3, "Hope-Attention").

**CMS updates with the task loss inside ``forward``** (Eq. 71; spec §5.5 option A, "dynamic
evaluation"). :meth:`HopeLM.forward` walks the sequence in segments of ``C^(1) =
cms_chunk_sizes[0]`` tokens. For each segment it runs every block (carrying the Titans state, or the
attention KV cache, and the CMS state across segments), computes the segment's next-token loss —
targets are the next *input* tokens, known for every position but the sequence's last — **summed
over batch and tokens**, takes one ``torch.autograd.grad`` w.r.t. the CMS fast weights of all
blocks at once and lets each block's CMS ``step`` (level l applies its accumulated step every
C^(l) tokens). This is the same in training and at inference, so:

* causality: the output at position s depends on tokens ≤ s only (segment ``[a, b)`` is read with
  weights updated by losses whose targets are tokens ≤ a);
* per-sequence independence: every sequence owns its fast weights, and the batch-summed loss gives
  each sequence exactly its own gradient;
* with ``cms_inner_lr = 0`` the model is the plain stack ``Titans → frozen CMS`` for any chunk size.

Choices where the paper is silent (see docs/ALGORITHMS.md): pre-norm residual mixer, tied
embeddings with a final RMSNorm, the CMS hidden width ``d_ff`` shared by all levels, inner-loss
reduction = sum over tokens (Eq. 71 literally, one η per token), and fresh fast state per call
(every sequence is one context; spec §13.13).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.cms import VARIANTS as CMS_VARIANTS
from ..core.cms import CMSConfig, CMSState, ContinuumMemory
from ..core.titans import MEMORY_NAMES, SelfModifyingTitans, TitansConfig, TitansState
from .transformer import (
    CausalSelfAttention,
    KVCache,
    TokenEmbedding,
    check_heads,
    check_positive,
    check_tokens,
)

VARIANTS = ("hope", "hope_attention")

# Per-level tuples as the YAML loader can coerce them (``config.from_dict`` checks fixed lengths).
IntLevels = tuple[int] | tuple[int, int] | tuple[int, int, int] | tuple[int, int, int, int]
FloatLevels = (
    tuple[float]
    | tuple[float, float]
    | tuple[float, float, float]
    | tuple[float, float, float, float]
)
#: up to four memory names, as the YAML loader can coerce them
Names = tuple[()] | tuple[str] | tuple[str, str] | tuple[str, str, str] | tuple[str, str, str, str]


@dataclass
class HopeConfig:
    """Sizes of Hope / Hope-Attention; the defaults are the small CPU size (about 1.6 M parameters).

    None of these values is reported in the paper (spec §9.3); they are our choices.

    Attributes:
        variant: ``"hope"`` (self-modifying Titans mixer) or ``"hope_attention"`` (attention).
        d_ff: hidden width of every CMS level MLP.
        titans_chunk_memory / titans_chunk_other: write periods of ``M_mem`` / of ``M_k, M_v, M_η,
            M_α``; both must divide ``cms_chunk_sizes[0]`` (the segment length).
            Defaults 16 / 32: about 2x faster on a CPU than 8 / 16 (fewer, larger ops). A parameter
            that only acts through writes gets no gradient unless a write is read within the
            sequence, so train on sequences longer than ``titans_chunk_memory`` (DDP needs every
            parameter to get one).
        mem_hidden: hidden width h of each Titans memory (``None`` = d_head).
        eta_scale, momentum, conv_window: Titans inner-rule settings (see core/titans.py);
            ``eta_scale`` 0.02: with 0.1 the self-generated targets diverged in training before
            v was normalised (``titans_normalize_v``; the cause, see core/titans.py); since then
            0.1 trains as well (benchmarks/results/inner_lr_sweep.md).
        titans_dgd, titans_retention, titans_self_modifying, titans_static: ablation switches of
            the mixer (Table 6): DGD vs plain GD, the retention gate alpha (False: alpha = 1,
            "w/o weight decay"), self-generated k, v, eta, alpha vs static projections, and
            the k/v/eta/alpha memories never written in context ("w/o inner-projection").
        titans_writes: False: the Titans memories are never written in context (every read sees
            the meta-learned initial state); with ``cms_inner_lr = 0`` as well, Hope is a static
            network, the negative control of the experiments.
        titans_negative_eigenvalues: step along k of ``beta = 2 sigmoid(.)`` in (0, 2) instead
            of DGD's eta', so the transition ``alpha I - beta k k^T`` reaches eigenvalues in
            (-1, 0) (Grazzi et al., 2024; exp2's parity ablation); needs ``momentum: false``.
        titans_first_order: cut the outer gradient through the Titans writes. Beware: k, v, η, α
            (and ``W_in``, the ``M_k/M_v/M_η/M_α`` initial states) only act through writes, so with
            this on they receive no outer gradient at all; keep it off (the default).
        titans_normalize_v: L2-normalise the Titans v (the input of every self-generated target,
            see core/titans.py): without it second-order training diverges (exp2, exp3).
        titans_compile: run each Titans mixer through ``torch.compile`` (opt-in; 1.2-1.7x the
            training tokens/s on a 2-core CPU, benchmarks/results/throughput.md; the first steps
            compile for about a minute, and on a CPU inductor needs a C++ compiler). Needs
            ``cms_first_order`` (a compiled graph cannot be differentiated twice).
        cms_chunk_sizes: C^(l), fast → slow; each a multiple of the first. The first one is the
            segment length of the online loop, the main cost knob (default 32: Fig. 5's 16 is
            about 1.4× slower on a CPU).
        cms_inner_lr: η^(l) (one value for all levels or one per level); ≥ 0.
        cms_variant: "sequential" (Eq. 73), "nested" (Eq. 72) or "independent" (Eq. 74).
        cms_first_order: detach the CMS inner steps from the outer graph (first-order MAML).
        rope_base: RoPE base of Hope-Attention.
    """

    variant: str = "hope"
    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    max_seq_len: int = 512
    titans_chunk_memory: int = 16
    titans_chunk_other: int = 32
    mem_hidden: int | None = None
    conv_window: int = 4
    eta_scale: float = 0.02
    momentum: bool = True
    titans_first_order: bool = False
    titans_normalize_v: bool = True
    titans_dgd: bool = True
    titans_retention: bool = True
    titans_self_modifying: bool = True
    titans_static: Names = ()
    titans_compile: bool = False
    titans_writes: bool = True
    titans_negative_eigenvalues: bool = False
    cms_chunk_sizes: IntLevels = (32, 64, 96)
    cms_inner_lr: float | FloatLevels = 1e-3
    cms_variant: str = "sequential"
    cms_first_order: bool = True
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"model.variant must be one of {VARIANTS} (got {self.variant!r})")
        check_positive(
            "model",
            self,
            (
                *("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_seq_len"),
                *("titans_chunk_memory", "titans_chunk_other", "conv_window"),
            ),
        )
        check_heads(self.d_model, self.n_heads, rope=self.variant == "hope_attention")
        if self.mem_hidden is not None and self.mem_hidden <= 0:
            raise ValueError(f"model.mem_hidden must be > 0 or null (got {self.mem_hidden})")
        if not self.eta_scale > 0:
            raise ValueError(f"model.eta_scale must be > 0 (got {self.eta_scale})")
        if not self.rope_base > 1.0:
            raise ValueError(f"model.rope_base must be > 1 (got {self.rope_base})")
        self._check_cms()
        other = MEMORY_NAMES[:4]  # M_k, M_v, M_eta, M_alpha: the memories that can be static
        if not set(self.titans_static) <= set(other) or (
            self.titans_static and not self.titans_self_modifying
        ):
            raise ValueError(
                f"model.titans_static must name memories among {other} of a self-modifying "
                f"mixer (got {self.titans_static!r}, titans_self_modifying="
                f"{self.titans_self_modifying})"
            )

        if self.titans_negative_eigenvalues and (self.momentum or not self.titans_dgd):
            raise ValueError(
                "model.titans_negative_eigenvalues needs momentum: false and titans_dgd: true "
                f"(got momentum={self.momentum}, titans_dgd={self.titans_dgd})"
            )
        if self.titans_compile and (self.variant != "hope" or not self.cms_first_order):
            raise ValueError(
                "model.titans_compile needs variant 'hope' (a Titans mixer to compile) and "
                "cms_first_order: true (a compiled graph cannot be differentiated twice); got "
                f"variant={self.variant!r}, cms_first_order={self.cms_first_order}"
            )

    def _check_cms(self) -> None:
        for name in ("cms_chunk_sizes", "cms_inner_lr", "titans_static"):  # lists from Python
            value: Any = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))
        sizes = self.cms_chunk_sizes
        if not isinstance(sizes, tuple) or not sizes or any(int(c) <= 0 for c in sizes):
            raise ValueError(f"model.cms_chunk_sizes must be positive integers (got {sizes!r})")
        if any(c % sizes[0] for c in sizes):
            raise ValueError(
                f"model.cms_chunk_sizes must all be multiples of the first (fastest) one "
                f"(got {sizes})"
            )
        if self.cms_variant not in CMS_VARIANTS:
            raise ValueError(
                f"model.cms_variant must be one of {CMS_VARIANTS} (got {self.cms_variant!r})"
            )
        if self.cms_variant == "nested" and any(b % a for a, b in itertools.pairwise(sizes)):
            raise ValueError("model.cms_chunk_sizes must each divide the next for nested CMS")
        lrs = self.cms_inner_lr if isinstance(self.cms_inner_lr, tuple) else (self.cms_inner_lr,)
        if isinstance(self.cms_inner_lr, tuple) and len(lrs) != len(sizes):
            raise ValueError(
                f"model.cms_inner_lr has {len(lrs)} entries but model.cms_chunk_sizes has "
                f"{len(sizes)}"
            )
        if any(not math.isfinite(lr) or lr < 0 for lr in lrs):
            raise ValueError(f"model.cms_inner_lr must be finite and >= 0 (got {lrs})")
        if self.variant == "hope":
            for name in ("titans_chunk_memory", "titans_chunk_other"):
                if sizes[0] % getattr(self, name):
                    raise ValueError(
                        f"model.{name} ({getattr(self, name)}) must divide the CMS segment length "
                        f"model.cms_chunk_sizes[0] ({sizes[0]}): Titans chunks restart at every "
                        "segment"
                    )

    @property
    def segment(self) -> int:
        """Tokens per online step: the fastest CMS chunk C^(1)."""
        return self.cms_chunk_sizes[0]

    def titans(self) -> TitansConfig:
        """Config of the self-modifying Titans mixer (Eq. 83-92)."""
        return TitansConfig(
            d_model=self.d_model,
            n_heads=self.n_heads,
            mem_hidden=self.mem_hidden,
            chunk_size_memory=self.titans_chunk_memory,
            chunk_size_other=self.titans_chunk_other,
            conv_window=self.conv_window,
            eta_scale=self.eta_scale,
            momentum=self.momentum,
            first_order=self.titans_first_order,
            self_modifying=self.titans_self_modifying,
            dgd=self.titans_dgd,
            retention=self.titans_retention,
            static=tuple(self.titans_static),
            normalize_v=self.titans_normalize_v,
            compile=self.titans_compile,
            writes=self.titans_writes,
            negative_eigenvalues=self.titans_negative_eigenvalues,
            fused_backward=self.cms_first_order,  # second-order CMS differentiates it twice
        )

    def cms(self) -> CMSConfig:
        """Config of each block's CMS chain (Eq. 70-74)."""
        return CMSConfig(
            d_model=self.d_model,
            chunk_sizes=tuple(self.cms_chunk_sizes),
            hidden=self.d_ff,
            inner_lr=self.cms_inner_lr,
            variant=self.cms_variant,
            first_order=self.cms_first_order,
        )


@dataclass
class HopeBlockState:
    """Per-sequence state of one block: the mixer's (Titans memories or the KV cache of the tokens
    seen so far; ``None`` before the first segment of Hope-Attention) and the CMS fast weights."""

    mixer: TitansState | KVCache | None
    cms: CMSState

    def detach(self) -> HopeBlockState:
        """Copy cut from the autograd graph (inference: no graph grows across segments)."""
        mixer: TitansState | KVCache | None = self.mixer
        if isinstance(mixer, TitansState):
            mixer = mixer.detach()
        elif mixer is not None:
            mixer = (mixer[0].detach(), mixer[1].detach())
        return HopeBlockState(mixer, self.cms.detach())


class HopeBlock(nn.Module):
    """One Hope (or Hope-Attention) block, ``[B, n, d] → [B, n, d]`` for one segment.

    ``x ← x + Mixer(RMSNorm(x))`` with Mixer = self-modifying Titans (Eq. 94-96, which carries its
    own causal conv, q/k L2 norm and output norm-and-gate) or causal RoPE attention; then the CMS
    chain reads ``x`` with the current fast weights (Eq. 97). The CMS *write* is driven by
    :class:`HopeLM`, which alone knows the task loss.
    """

    def __init__(self, config: HopeConfig) -> None:
        super().__init__()
        c = config
        self.norm = nn.RMSNorm(c.d_model, eps=1e-6)
        self.titans = SelfModifyingTitans(c.titans()) if c.variant == "hope" else None
        self.attn = (
            CausalSelfAttention(c.d_model, c.n_heads, c.max_seq_len, c.rope_base)
            if c.variant == "hope_attention"
            else None
        )
        self.cms = ContinuumMemory(c.cms())

    def init_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> HopeBlockState:
        """Fresh state: meta-learned initial memories / empty cache, CMS fast weights = θ0."""
        mixer = None if self.titans is None else self.titans.init_state(batch_size, device, dtype)
        return HopeBlockState(mixer, self.cms.init_state(batch_size))

    def forward(self, x: Tensor, state: HopeBlockState) -> tuple[Tensor, HopeBlockState]:
        """Mix and read one segment ``x [B, n, d]``; returns the output and the new mixer state
        (the CMS state is unchanged here)."""
        h = self.norm(x)
        if self.titans is not None:
            assert state.mixer is None or isinstance(state.mixer, TitansState)
            y, mixer = self.titans(h, state.mixer)
        else:
            assert self.attn is not None and not isinstance(state.mixer, TitansState)
            y, mixer = self.attn(h, state.mixer)
        out = self.cms(x + y, state.cms)
        return out, HopeBlockState(mixer, state.cms)


class _Anchor(torch.autograd.Function):
    """Identity on ``w`` whose graph node also points at ``history`` (gradient ``None`` there).

    Why: autograd prunes its graph walk below the smallest *topological number* of the tensors
    it differentiates against (a node's number exceeds every node it depends on). A fast-weight
    alias anchored to the incoming recurrent state outnumbers every node of earlier segments, so
    the per-segment inner gradient visits this segment's graph only: O(segment), not O(sequence
    so far). Values and gradients are unchanged; only the walk is shorter.
    """

    @staticmethod
    def forward(ctx: Any, w: Tensor, *history: Tensor) -> Tensor:
        ctx.n_history = len(history)
        return w.view_as(w)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (grad, *([None] * ctx.n_history))


def _history(states: Sequence[HopeBlockState]) -> list[Tensor]:
    """The incoming mixer state of every block: all that links a segment to earlier ones."""
    out: list[Tensor] = []
    for st in states:
        if isinstance(st.mixer, TitansState):
            out.append(st.mixer.conv_tail)
            for fw in st.mixer.memories.values():
                out.extend(t for t in (fw.w1, fw.w2, fw.m1, fw.m2) if t is not None)
        elif st.mixer is not None:
            out.extend(st.mixer)
    return [t for t in out if t.requires_grad]


def _fresh_alias(state: CMSState, history: Sequence[Tensor]) -> CMSState:
    """Give the fast weights a new autograd identity for this segment.

    A level that did not update is the same tensor as in earlier segments, where it also fed the
    Titans state / KV cache that this segment reads. Differentiating w.r.t. a per-segment alias
    restricts ∂L_seg/∂θ̃ to this segment's reads (the gradient of Eq. 71 at fixed history); the
    anchor to ``history`` keeps autograd from even walking earlier segments (:class:`_Anchor`),
    so each inner backward costs O(segment) instead of O(sequence so far).
    """
    weights = [[_Anchor.apply(w, *history) for w in ws] for ws in state.weights]
    return CMSState(weights, state.accum, state.tokens_seen)


class HopeLM(nn.Module):
    """Hope / Hope-Attention LM: tied embedding → Hope blocks → RMSNorm → tied LM head, with the
    online CMS updates of Eq. 71 inside :meth:`forward` (module docstring)."""

    def __init__(self, config: HopeConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = TokenEmbedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(HopeBlock(config) for _ in range(config.n_layers))

    def forward(self, tokens: Tensor, targets: Tensor | None = None) -> Tensor:
        """Next-token logits, with the CMS levels learning from the sequence as it is read.

        Args:
            tokens: ``[B, T]`` int64 ids in ``[0, vocab_size)``, ``T <= max_seq_len``.
            targets: optional ``[B, T]`` next-token ids for the CMS inner loss (training-time
                variant: lets the last position learn too). Default: ``tokens`` shifted by one,
                the last position of the sequence contributing no inner loss.

        Returns:
            ``[B, T, vocab_size]``.
        """
        return self.forward_online(tokens, targets)[0]

    def forward_online(
        self,
        tokens: Tensor,
        targets: Tensor | None = None,
        trace: list[list[HopeBlockState]] | None = None,
    ) -> tuple[Tensor, list[HopeBlockState]]:
        """:meth:`forward` that also returns the final per-block states; if ``trace`` is a list,
        the block states after every segment's CMS step are appended to it (for inspection)."""
        c = self.config
        check_tokens(tokens, c.vocab_size, c.max_seq_len)
        if targets is not None:
            if targets.shape != tokens.shape:
                raise ValueError(
                    f"targets must have the shape of tokens {tuple(tokens.shape)} "
                    f"(got {tuple(targets.shape)})"
                )
            check_tokens(targets, c.vocab_size, c.max_seq_len)
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "HopeLM learns while it reads (CMS takes gradients inside forward): run it under "
                "torch.no_grad(), not torch.inference_mode()"
            )
        b, t = tokens.shape
        x = self.tokens(tokens)
        states = [blk.init_state(b, x.device, x.dtype) for blk in self._blocks()]
        outs = []
        for s in range(0, t, c.segment):
            e = min(s + c.segment, t)
            logits, states = self._segment(x[:, s:e], tokens, targets, s, states)
            outs.append(logits)
            if trace is not None:
                trace.append(list(states))
        if not outs:  # T = 0
            return x.new_zeros(b, 0, c.vocab_size), states
        return torch.cat(outs, dim=1), states

    def _blocks(self) -> list[HopeBlock]:
        return [blk for blk in self.blocks if isinstance(blk, HopeBlock)]

    def _segment(
        self,
        x: Tensor,
        tokens: Tensor,
        targets: Tensor | None,
        start: int,
        states: Sequence[HopeBlockState],
    ) -> tuple[Tensor, list[HopeBlockState]]:
        """Read one segment ``x [B, n, d]`` at positions ``start…start+n-1``, then write CMS."""
        outer = torch.is_grad_enabled()
        blocks = self._blocks()
        n = x.size(1)
        with torch.enable_grad():  # the inner (CMS) gradient is needed even at inference
            history = _history(states)
            states = [
                HopeBlockState(
                    st.mixer, _fresh_alias(blk.cms.prepare_for_inner_grad(st.cms), history)
                )
                for blk, st in zip(blocks, states, strict=True)
            ]
            h, new_states = x, []
            for blk, st in zip(blocks, states, strict=True):
                h, st = blk(h, st)
                new_states.append(st)
            logits = self.tokens.logits(h)
            grads = self._inner_grads(logits, tokens, targets, start, new_states, outer)
        stepped = []
        for blk, st, g in zip(blocks, new_states, grads, strict=True):
            st = HopeBlockState(st.mixer, blk.cms.step(st.cms, g, n))
            stepped.append(st if outer else st.detach())
        return (logits if outer else logits.detach()), stepped

    def _inner_grads(
        self,
        logits: Tensor,
        tokens: Tensor,
        targets: Tensor | None,
        start: int,
        states: Sequence[HopeBlockState],
        outer: bool,
    ) -> list[list[Tensor | None]]:
        """∂L_seg/∂θ̃ for every block's CMS fast weights with one ``autograd.grad`` call.

        ``L_seg`` = Σ over batch and targeted positions of the next-token cross-entropy (Eq. 71
        with one η per token; the batch sum gives each sequence its own gradient).
        """
        blocks = self._blocks()
        fast = [blk.cms.fast_weights(st.cms) for blk, st in zip(blocks, states, strict=True)]
        n = logits.size(1)
        # position p predicts input token p+1; the sequence's last position has no target
        tgt = (
            tokens[:, start + 1 : start + n + 1]
            if targets is None
            else targets[:, start : start + n]
        )
        frozen = all(lr == 0 for blk in blocks for lr in blk.cms.config.inner_lrs)
        if tgt.size(1) == 0 or frozen:  # frozen: a zero step needs no gradient
            return [[None] * len(f) for f in fast]
        loss = F.cross_entropy(
            logits[:, : tgt.size(1)].flatten(0, 1).float(), tgt.flatten(), reduction="sum"
        )
        second_order = outer and self.training and not self.config.cms_first_order
        flat = [w for f in fast for w in f]
        grads = torch.autograd.grad(
            loss, flat, retain_graph=outer, create_graph=second_order, allow_unused=True
        )
        it = iter(grads)
        return [[next(it) for _ in f] for f in fast]
