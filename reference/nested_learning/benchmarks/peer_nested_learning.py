"""Time the PyPI package `nested-learning` 0.2.0 (an unofficial HOPE reproduction) — run it ONLY in
its own virtual environment: its import name is `nested_learning`, the same as ours.

    bash benchmarks/setup_peer.sh                       # creates benchmarks/.peer-venv (once)
    benchmarks/.peer-venv/bin/python benchmarks/peer_nested_learning.py --seq-len 512

Measures its self-modifying HOPE ("hope_selfmod" blocks) on the path that actually WRITES its
memories: the package's default training algorithm, "two_pass_stopgrad_updates" — a forward +
backward + AdamW step, then a second forward with the teach signal that applies the memory and CMS
updates (as in its `training.py`). Its plain forward alone never writes memory, so timing it would
compare unlike things. Prints one JSON line. Nothing of the peer's code is copied here.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F

from nested_learning.levels import LevelSpec
from nested_learning.model import HOPEModel, ModelConfig
from nested_learning.training import compute_teach_signal


def build(dim: int, layers: int, heads: int, chunk: int) -> HOPEModel:
    config = ModelConfig(
        vocab_size=256, dim=dim, num_layers=layers, heads=heads,
        titan_level=LevelSpec(name="titan", update_period=chunk),
        cms_levels=[LevelSpec(name="cms_fast", update_period=chunk),
                    LevelSpec(name="cms_mid", update_period=4 * chunk),
                    LevelSpec(name="cms_slow", update_period=16 * chunk)],
        block_variant="hope_selfmod", qk_l2_norm=True, local_conv_window=4,
        self_mod_chunk_size=chunk, self_mod_chunk_size_memory=chunk,
    )  # fmt: skip
    return HOPEModel(config)


def two_pass_step(
    model: HOPEModel, optimizer: torch.optim.Optimizer, tokens: torch.Tensor
) -> float:
    logits = model(tokens)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # second pass: the package's memory/CMS writes from the teach signal
        teach = compute_teach_signal(model, logits.detach(), tokens)
        model(tokens, teach_signal=teach, fast_state=model.init_fast_state())
    return float(loss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = build(args.dim, args.layers, args.heads, args.chunk)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, 256, (args.batch, args.seq_len))
    two_pass_step(model, optimizer, tokens)  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        two_pass_step(model, optimizer, tokens)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "impl": "nested-learning 0.2.0 (PyPI), hope_selfmod, two_pass_stopgrad_updates",
        "seq_len": args.seq_len, "batch": args.batch, "dim": args.dim, "layers": args.layers,
        "heads": args.heads, "chunk": args.chunk, "threads": args.threads,
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": args.steps * args.batch * args.seq_len / elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
