"""Gradio demo: complete a text prompt with the trained model.

    uv run python demo/app.py                                # uses runs/small/checkpoint.pt
    uv run python demo/app.py --checkpoint path/to/checkpoint.pt --port 7860

REPLACE the interface with one that shows your paper's idea (plots of internal state, not only
text in and text out). Keep ``build_demo()`` as the factory the tests use; ``launch()`` runs only
under ``__main__``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gradio as gr
import torch
from torch import nn

from nested_learning.checkpoint import load_checkpoint
from nested_learning.data import decode, encode
from nested_learning.models import create_model
from nested_learning.sampling import generate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "runs" / "small" / "checkpoint.pt"
TITLE = "Nested Learning: The Illusion of Deep Learning Architectures"
PAPER_URL = "https://arxiv.org/abs/2512.24695"


def load_model(checkpoint: Path | None) -> tuple[nn.Module, int, str]:
    """The model from ``checkpoint``, or an untrained one with a message saying how to train it."""
    if checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        model = create_model(**state["config"]["model"])
        model.load_state_dict(state["model"])
        status = f"Loaded {checkpoint.name} (step {state['step']})."
        context = int(state["config"]["model"].get("max_seq_len", 256))
    else:
        model, context = create_model(), 256
        status = (
            f"No checkpoint at {checkpoint}: showing an UNTRAINED model (its text is noise). "
            "Train one in about a minute with `uv run python train.py --config small`."
        )
    return model.eval(), context, status


def build_demo(checkpoint: Path | None = DEFAULT_CHECKPOINT) -> gr.Blocks:
    """Build the interface (without launching it)."""
    model, context, status = load_model(checkpoint)

    def complete(prompt: str, max_new_tokens: float, temperature: float, seed: float) -> str:
        if not prompt:
            raise gr.Error("Type a prompt first.")
        tokens = encode(prompt)[-context:].unsqueeze(0)
        generator = torch.Generator().manual_seed(int(seed))
        out = generate(
            model, tokens, int(max_new_tokens), context, temperature, top_k=50, generator=generator
        )
        return prompt + decode(out[0, tokens.size(1) :])

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n[Paper]({PAPER_URL}) · {status}")
        prompt = gr.Textbox(label="Prompt", value="The ", lines=3)
        with gr.Row():
            max_new = gr.Slider(1, 400, value=120, step=1, label="New tokens")
            temperature = gr.Slider(
                0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)"
            )
            seed = gr.Number(value=0, precision=0, label="Seed")
        button = gr.Button("Generate", variant="primary")
        output = gr.Textbox(label="Completion", lines=8)
        button.click(complete, [prompt, max_new, temperature, seed], output, api_name="generate")
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
