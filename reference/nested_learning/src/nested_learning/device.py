"""Device selection (cuda → mps → cpu) and mixed precision keyed on the device *type*.

Keying autocast and the gradient scaler on the device type, not on "is it CUDA", avoids the classic
bug of enabling a CUDA-only GradScaler on Apple MPS or skipping autocast there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def get_device(preference: str = "auto") -> torch.device:
    """Return the requested device, or the best available one: cuda, then mps, then cpu.

    Raises:
        RuntimeError: an explicitly requested accelerator is not available.
    """
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(preference, False):
        raise RuntimeError(
            f"device '{preference}' was requested but is not available here; "
            "use --set train.device=auto (cuda → mps → cpu) or train.device=cpu"
        )
    return torch.device(preference)


def autocast_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """Compute dtype for ``device``: bf16 on CUDA (fp16 without bf16 support), fp32 elsewhere."""
    if requested != "auto":
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # CPU and MPS: full precision is the safe default


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager[None]:
    """``torch.autocast`` for ``device.type`` when ``dtype`` is reduced, else a no-op context."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """A gradient scaler that is active only for float16 on CUDA (bf16 and fp32 need none)."""
    enabled = device.type == "cuda" and dtype == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


@contextlib.contextmanager
def default_device(device: torch.device) -> Iterator[None]:
    """Create tensors on ``device`` by default inside the block."""
    with torch.device(device):
        yield
