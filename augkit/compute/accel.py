"""Device and numeric precision, resolved once for every plugin that trains a network.

``precision: auto`` picks bf16 where the hardware has it (a CUDA GPU with bf16, or a CPU
with AVX-512 BF16 / AMX that oneDNN uses) and where the plugin measured that it pays; fp32
otherwise. bf16 runs under ``torch.autocast`` (weights and optimizer state stay fp32), so it
is mixed precision, not a bf16 model. Measurements: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

Precision = Literal["auto", "fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the GPU if torch sees one, else the CPU; ``cuda`` without a GPU is a clear error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda, but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                           "use device: auto or cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _cpu_bf16()


def _cpu_bf16() -> bool:
    """oneDNN's own test for fast bf16 (AVX-512 BF16 or AMX); False where torch has no oneDNN (e.g. some ARM builds)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device, *, cpu_bf16_pays: bool = True) -> str:
    """``auto`` -> ``bf16`` where supported (on a CPU only if ``cpu_bf16_pays``), else ``fp32``."""
    if precision != "auto":
        if precision == "bf16" and not bf16_supported(device):
            raise RuntimeError(f"precision: bf16, but this {device.type} has no bf16 support; use auto or fp32")
        return precision
    if device.type == "cpu" and not cpu_bf16_pays:
        return "fp32"
    return "bf16" if bf16_supported(device) else "fp32"


def autocast(device: torch.device, precision: str):
    """The context a forward pass runs in: bf16 autocast, or nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe() -> dict:
    """What environment.json records about the hardware's fast paths."""
    cuda = torch.cuda.is_available()
    return {
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": _cpu_bf16(),
        "cuda_bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "threads": torch.get_num_threads(),
    }
