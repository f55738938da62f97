"""Device selection (cuda → mps → cpu) and mixed precision keyed on the device type."""

from __future__ import annotations

import pytest
import torch

from nested_learning.device import autocast, autocast_dtype, get_device, grad_scaler


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert get_device("auto").type == expected


def test_unavailable_accelerator_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda' was requested but is not available"):
        get_device("cuda")


def test_dtype_and_scaler_are_keyed_on_device_type(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, mps = torch.device("cpu"), torch.device("mps")
    assert autocast_dtype(cpu) == torch.float32
    assert autocast_dtype(mps) == torch.float32
    assert autocast_dtype(cpu, "bfloat16") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype(torch.device("cuda")) == torch.float16
    assert not grad_scaler(cpu, torch.float16).is_enabled()  # never a CUDA scaler off CUDA
    assert not grad_scaler(mps, torch.float16).is_enabled()


def test_cpu_autocast_runs_in_bfloat16() -> None:
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), torch.float32):
        assert (a @ a).dtype == torch.float32
