"""The benchmarks' own instruments: the op and FLOP counts that throughput.py reports, and
gpu_check.py's refusal without a GPU and its dry run on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks import gpu_check
from benchmarks.throughput import count_ops


def _chain_step(n_tanh: int, batch: int = 3, d_in: int = 5, d_out: int = 4) -> dict[str, int]:
    lin = nn.Linear(d_in, d_out, bias=False)
    x = torch.randn(batch, d_in)  # no grad: backward computes only the weight's gradient

    def loss_fn() -> torch.Tensor:
        h = lin(x)
        for _ in range(n_tanh):
            h = torch.tanh(h)
        return h.sum()

    return count_ops(loss_fn, torch.optim.SGD(lin.parameters(), lr=0.1))


@pytest.mark.parametrize("batch, d_in, d_out", [(3, 5, 4), (8, 16, 2)])
def test_flops_are_the_matmuls_of_forward_and_backward(batch: int, d_in: int, d_out: int) -> None:
    counts = _chain_step(2, batch, d_in, d_out)
    # x W^T forward, then dL/dW = g^T x: 2 * B * d_in * d_out multiply-adds each
    assert counts["flops_per_step"] == 2 * (2 * batch * d_in * d_out)


def test_each_op_adds_its_autograd_node_and_its_aten_calls() -> None:
    few, many = _chain_step(3), _chain_step(8)
    assert many["autograd_nodes_per_step"] - few["autograd_nodes_per_step"] == 5
    # each tanh: tanh forward, tanh_backward, and a detach of each when autograd saves its
    # output for backward and when backward unpacks it (the dispatcher sees those too)
    assert many["aten_calls_per_step"] - few["aten_calls_per_step"] == 4 * 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_gpu_check_without_a_gpu_says_so_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and "--device cpu" in err
    assert not list(tmp_path.iterdir())


def test_gpu_check_dry_run_on_the_cpu_reports_both_models(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    argv = ["--device", "cpu", "--preset", "small", "--seq-len", "32", "--batch", "2"]
    assert gpu_check.main([*argv, "--steps", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    hope, transformer = result["models"]["hope"], result["models"]["transformer"]
    assert abs(transformer["params"] - hope["params"]) <= 0.1 * hope["params"]
    for row in (hope, transformer):
        assert row["nonfinite_losses"] == 0 and row["tokens_per_s"] > 0
        assert row["peak_memory_gib"] is None and row["dtype"] == "float32"
    assert [p.name for p in tmp_path.iterdir()] == ["gpu_check.json"]  # no temporary file left
