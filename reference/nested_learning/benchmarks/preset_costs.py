"""Expected memory and compute of the presets, computed (not measured, not guessed).

    uv run python benchmarks/preset_costs.py     # writes benchmarks/results/preset_costs.{json,md}

For each preset: the parameter count (built on the meta device: no memory used), the optimiser
memory (fp32 weights + grads + AdamW moments = 16 bytes/parameter), the per-sequence fast state of
the self-modifying Titans memories and of the CMS copies, the snapshot memory that the meta-gradient
through the unrolled writes keeps (one fast-state copy per Titans chunk, spec §9.2), and the
training FLOPs per token: 6 × parameters for the matmuls, plus the inner-loop work of the five
memories (read, target, rank-1 gradients and write per token ≈ 12·d_h·h FLOPs forward per memory and
head, ×3 with backward) and 12·L·d per token for CMS fast-weight reads (×3). Throughput on a GPU is
then FLOPs/token over an assumed model-FLOPs utilisation (MFU) of the H100's 989 dense bf16
TFLOP/s: a planning number to check against a real run, stated with its assumption.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
H100_BF16_FLOPS = 989e12
ASSUMED_MFU = 0.25  # chunked recurrent memories rarely reach dense-attention utilisation
N_MEMORIES = 5  # k, v, eta, alpha, mem (q is a static projection)


def costs(preset: str) -> dict[str, Any]:
    from nested_learning.config import load_config
    from nested_learning.models import count_parameters, create_model

    cfg = load_config(preset)
    m = dict(cfg.model)
    with torch.device("meta"):
        params = count_parameters(create_model(**m))
    d, layers, heads = int(m["d_model"]), int(m["n_layers"]), int(m["n_heads"])
    d_h = d // heads
    h = int(m.get("mem_hidden") or d_h)
    seq, batch = cfg.train.seq_len, cfg.train.batch_size
    chunk = int(m.get("titans_chunk_memory", 16))
    # per sequence and layer: W1 [d_h×h] + W2 [h×d_h] (+ their momenta) per head and memory
    titans_state = layers * N_MEMORIES * heads * 2 * d_h * h * 2 * 4  # fp32 bytes
    cms_levels = len(m.get("cms_chunk_sizes", [1]))
    cms_state = layers * cms_levels * 2 * d * int(m.get("d_ff", 4 * d)) * 4
    snapshots = (seq // chunk) * titans_state  # kept for the outer backward through the writes
    inner_flops = layers * N_MEMORIES * heads * 12 * d_h * h * 3
    cms_flops = layers * cms_levels * 2 * 2 * d * int(m.get("d_ff", 4 * d)) * 3
    flops_per_token = 6 * params + inner_flops + cms_flops
    return {
        "preset": preset,
        "arch": m.get("arch", "hope"),
        "params": params,
        "optimizer_state_gb": round(16 * params / 1e9, 2),
        "per_sequence_fast_state_mb": round((titans_state + cms_state) / 1e6, 1),
        "per_sequence_write_snapshots_gb": round(snapshots / 1e9, 2),
        "per_step_snapshots_gb": round(batch * snapshots / 1e9, 1),
        "train_flops_per_token": flops_per_token,
        "h100_tokens_per_s_at_assumed_mfu": round(ASSUMED_MFU * H100_BF16_FLOPS / flops_per_token),
        "batch": batch,
        "seq_len": seq,
    }


def main() -> int:
    rows = [costs(p) for p in ("small", "medium", "large")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"assumed_mfu": ASSUMED_MFU, "gpu_peak_bf16_flops": H100_BF16_FLOPS, "rows": rows}
    (RESULTS / "preset_costs.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Preset costs (computed by benchmarks/preset_costs.py; do not edit)",
        "",
        f"Throughput assumes {ASSUMED_MFU:.0%} MFU of an H100's 989 dense bf16 TFLOP/s.",
        "",
        "| preset | params | optimizer state | fast state / seq | write snapshots / step "
        "| train GFLOP/token | H100 tokens/s (assumed MFU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['optimizer_state_gb']} GB "
            f"| {r['per_sequence_fast_state_mb']} MB | {r['per_step_snapshots_gb']} GB "
            f"(batch {r['batch']} × {r['seq_len']}) | {r['train_flops_per_token'] / 1e9:.2f} "
            f"| {r['h100_tokens_per_s_at_assumed_mfu']:,} |"
        )
    (RESULTS / "preset_costs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
