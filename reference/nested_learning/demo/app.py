"""Gradio demo: HOPE writes what it reads into its memories — watch it happen.

    uv run python demo/app.py                                # uses runs/small/checkpoint.pt
    uv run python demo/app.py --checkpoint path/to/checkpoint.pt --port 7860

Type a prompt and a *planted fact* ``KEY=VALUE`` (e.g. ``pin=4721``). The fact is put on the first
line of the text (``"pin=4721\\n" + prompt``), HOPE completes it with
:func:`nested_learning.sampling.generate`, and the whole text (fact line + prompt + completion, at
most the model's context) is analysed by :mod:`nested_learning.inspection` (whose docstring defines
every curve): **surprise** (next-token loss and the main memory's inner loss per token), **CMS
updates** (when each Continuum-Memory level's fast weights changed, and by how much) and **recall of
the planted fact** (by the model, through probes, and by the main memory, as retention). This file
is only the interface: the plots and the Gradio app.

Buttons and their API names: **Generate and analyse** (``api_name="generate"``; inputs prompt,
fact, new tokens, temperature, seed; outputs completion, the three plots, a summary) and **Analyse
only** (``api_name="analyze"``; inputs prompt and fact; the same outputs, no generation).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from nested_learning.data import VOCAB_SIZE, decode, encode
from nested_learning.inspection import (
    Analysis,
    Plant,
    analyze_tokens,
    complete_tokens,
    load_model,
    single_thread,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "runs" / "small" / "checkpoint.pt"
TITLE = "Nested Learning: The Illusion of Deep Learning Architectures"
PAPER_URL = "https://arxiv.org/abs/2512.24695"
DEFAULT_PROMPT = "The for statement"
DEFAULT_FACT = "pin=4721"


# ----------------------------------------------------------------------------- plots
def _finite(x: np.ndarray) -> np.ndarray:
    """NaN where ``x`` is not finite, so a diverged curve just stops."""
    return np.where(np.isfinite(x), x, np.nan)


def _mark_text(ax: Any, a: Analysis) -> None:
    """Shade the planted fact and mark where the generated text starts."""
    if a.plant_span is not None:
        ax.axvspan(a.plant_span[0] - 0.5, a.plant_span[1] - 0.5, color="gold", alpha=0.3)
    if a.prompt_end < len(a.tokens):
        ax.axvline(a.prompt_end - 0.5, color="black", ls=":", lw=1)


def plot_surprise(a: Analysis) -> Figure:
    """Next-token loss and main-memory inner loss per token."""
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    pos = np.arange(len(a.tokens))
    axes[0].plot(pos, _finite(a.ntp_loss), lw=0.8, color="tab:red")
    axes[0].axhline(math.log(VOCAB_SIZE), color="grey", ls="--", lw=0.8, label="uniform guess")
    axes[0].set_ylabel("nats")
    axes[0].set_title("Next-token loss  −log p(x_t | x_<t)")
    axes[0].legend(loc="upper right", fontsize=8)
    if a.inner_loss is None:
        axes[1].text(0.5, 0.5, "no self-modifying Titans memory in this model", ha="center",
                     transform=axes[1].transAxes)  # fmt: skip
    else:
        for layer, row in enumerate(a.inner_loss):
            axes[1].plot(pos, _finite(row), lw=0.8, label=f"layer {layer + 1}")
        axes[1].set_yscale("log")
        axes[1].legend(loc="upper right", fontsize=8, ncol=min(4, len(a.inner_loss)))
        if a.chunk_memory:
            for s in range(a.chunk_memory, len(a.tokens), a.chunk_memory):
                axes[1].axvline(s - 0.5, color="grey", lw=0.3)
    axes[1].set_title(
        "Main-memory inner loss ‖M_mem,ξ(k_t) − v̂_t‖² at the chunk snapshot (mean over heads)"
    )
    axes[1].set_xlabel("token position (yellow: planted fact · dotted: generated text starts)")
    for ax in axes:
        _mark_text(ax, a)
    return fig


def plot_cms(a: Analysis) -> Figure:
    """When each CMS level's fast weights changed, and by how much."""
    fig = Figure(figsize=(9, 2.6), layout="constrained")
    ax = fig.subplots()
    if not a.cms_chunks:
        ax.text(0.5, 0.5, "no Continuum Memory System in this model", ha="center")
        return fig
    t = len(a.tokens)
    for ell, c in enumerate(a.cms_chunks):
        scheduled = list(range(c, t + 1, c))
        ax.vlines(scheduled, ell - 0.45, ell + 0.45, color="lightgrey", lw=4)
        if a.cms_updates[ell]:
            size = np.nan_to_num(np.asarray(a.cms_update_size[ell]), nan=0.0, posinf=0.0)
            scale = size.max() if size.max() > 0 else 1.0
            ax.scatter(a.cms_updates[ell], [ell] * len(size), s=40 + 160 * size / scale,
                       color="tab:blue", zorder=3)  # fmt: skip
            for p, s in zip(a.cms_updates[ell], size, strict=True):
                ax.annotate(f"{s:.1e}", (p, ell + 0.18), ha="center", fontsize=7)
    for ell, (pos, size_) in enumerate(zip(a.cms_updates, a.cms_update_size, strict=True)):
        bad = [p for p, s in zip(pos, size_, strict=True) if not math.isfinite(s)]
        ax.scatter(bad, [ell] * len(bad), marker="x", color="tab:red", zorder=4)
    ax.set_yticks(range(len(a.cms_chunks)), [f"level {i + 1} (C={c})" for i, c in
                                             enumerate(a.cms_chunks)])  # fmt: skip
    ax.set_ylim(-0.6, len(a.cms_chunks) - 0.4)
    ax.set_xlim(0, max(t, 1))
    ax.set_xlabel("tokens read when the level updated")
    ax.set_title("CMS updates: dots = fast weights changed (label: ‖Δθ‖/‖θ0‖), grey = scheduled")
    return fig


def plot_recall(a: Analysis) -> Figure:
    """Recall of the planted fact by the model (probe) and by the main memory (retention)."""
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    if a.plant is None:
        axes[0].text(0.5, 0.5, "no planted fact", ha="center", transform=axes[0].transAxes)
        return fig
    if a.probe_positions:
        axes[0].plot(a.probe_positions, a.probe_logp, "o-", color="tab:green")
    axes[0].axhline(-math.log(VOCAB_SIZE), color="grey", ls="--", lw=0.8, label="chance")
    axes[0].set_ylabel("nats / byte")
    axes[0].set_title(
        f"Model: mean log p({a.plant.value!r} | text[:p] + {a.plant.probe!r}), per value byte"
    )
    axes[0].legend(loc="lower right", fontsize=8)
    if a.retention is None:
        axes[1].text(0.5, 0.5, "no main memory to read", ha="center", transform=axes[1].transAxes)
    else:
        for layer, row in enumerate(a.retention):
            label = f"layer {layer + 1}"
            axes[1].plot(a.retention_positions, _finite(row), "o-", ms=3, label=label)
        axes[1].axhline(1.0, color="grey", ls="--", lw=0.8)
        axes[1].set_yscale("log")
        axes[1].legend(loc="upper right", fontsize=8, ncol=min(4, len(a.retention)))
    axes[1].set_title("Main memory: recall error of the fact's tokens / error before writing them")
    axes[1].set_xlabel("p = tokens read (snapshot position)")
    for ax in axes:
        _mark_text(ax, a)
    return fig


def summary(a: Analysis) -> str:
    """One paragraph of numbers under the plots."""
    lines = [f"Analysed **{len(a.tokens)} tokens** in {a.seconds:.1f} s."]
    if np.isfinite(a.ntp_loss[1:]).any():
        lines.append(f"Mean next-token loss {np.nanmean(a.ntp_loss):.2f} nats.")
    if a.first_nonfinite is not None:
        lines.append(
            f"⚠ The model's outputs are not finite from token {a.first_nonfinite} on (a fast "
            "memory diverged): the curves stop there. Try a shorter text."
        )
    for ell, c in enumerate(a.cms_chunks):
        lines.append(f"CMS level {ell + 1} (C={c}) updated {len(a.cms_updates[ell])}×.")
    if a.probe_logp:
        lines.append(
            f"Recall of {a.plant.value if a.plant else ''!r}: {a.probe_logp[0]:.2f} → "
            f"{a.probe_logp[-1]:.2f} nats/byte (chance {-math.log(VOCAB_SIZE):.2f})."
        )
    return " ".join(lines)


# ----------------------------------------------------------------------------- app
def build_demo(checkpoint: Path | None = DEFAULT_CHECKPOINT) -> gr.Blocks:
    """Build the interface (without launching it)."""
    model, context, status = load_model(checkpoint)

    def analyse_text(text: str, prompt_end: int, plant: Plant | None) -> tuple[Any, ...]:
        tokens = encode(text)[:context]
        if len(tokens) < 2:
            raise gr.Error("The text is too short to analyse.")
        a = analyze_tokens(model, tokens, min(prompt_end, len(tokens)), plant, context)
        return plot_surprise(a), plot_cms(a), plot_recall(a), summary(a)

    def parse(fact: str) -> Plant | None:
        try:
            return Plant.parse(fact)
        except ValueError as err:
            raise gr.Error(str(err)) from err

    def complete(
        prompt: str, fact: str, max_new_tokens: float, temperature: float, seed: float
    ) -> tuple[Any, ...]:
        if not prompt:
            raise gr.Error("Type a prompt first.")
        plant = parse(fact)
        head = (plant.line if plant else "") + prompt
        tokens = encode(head)[-context:].unsqueeze(0)
        with single_thread():
            out, note = complete_tokens(
                model, tokens, int(max_new_tokens), context, temperature, int(seed)
            )
            new = decode(out[0, tokens.size(1) :])
            *plots, text = analyse_text(head + new, len(encode(head)), plant)
        return (prompt + new, *plots, f"{note} {text}".strip())

    def analyse_only(prompt: str, fact: str) -> tuple[Any, ...]:
        if not prompt:
            raise gr.Error("Type a prompt first.")
        plant = parse(fact)
        text = (plant.line if plant else "") + prompt
        with single_thread():
            plots = analyse_text(text, len(encode(text)), plant)
        return (prompt, *plots)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\n[Paper]({PAPER_URL}) · {status}\n\n"
            "HOPE learns *while it reads*: a self-modifying Titans memory is written every chunk "
            "and a Continuum Memory System of MLPs updates at several frequencies. Plant a fact "
            "`KEY=VALUE` (put on the first line), generate, and watch the memories."
        )
        with gr.Row():
            prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPT, lines=3, scale=3)
            fact = gr.Textbox(label="Planted fact (KEY=VALUE, first line)", value=DEFAULT_FACT)
        with gr.Row():
            max_new = gr.Slider(1, 200, value=32, step=1, label="New tokens")
            temperature = gr.Slider(
                0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)"
            )
            seed = gr.Number(value=0, precision=0, label="Seed")
        with gr.Row():
            button = gr.Button("Generate and analyse", variant="primary")
            analyse_button = gr.Button("Analyse only")
        output = gr.Textbox(label="Completion", lines=4)
        info = gr.Markdown(label="Summary")
        surprise = gr.Plot(label="Surprise")
        cms = gr.Plot(label="CMS updates")
        recall = gr.Plot(label="Recall of the planted fact")
        outputs = [output, surprise, cms, recall, info]
        button.click(
            complete, [prompt, fact, max_new, temperature, seed], outputs, api_name="generate"
        )
        analyse_button.click(analyse_only, [prompt, fact], outputs, api_name="analyze")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Gradio demo.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    build_demo(args.checkpoint).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
