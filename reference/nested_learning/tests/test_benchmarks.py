"""The benchmarks' own instruments: the op and FLOP counts that throughput.py reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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
