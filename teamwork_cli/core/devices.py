"""Devices and dtypes: which device `auto` means, and which autocast dtype a CPU computes natively."""

from __future__ import annotations

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX). Without it bf16 is emulated: 73x slower
    than fp32 on a 2-core AVX2 EPYC (`benchmarks/dtype_speed.py`), so `auto` must not pick it. (oneDNN's own
    `_is_mkldnn_bf16_supported` is also true on plain AVX-512 CPUs, which only convert.)"""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # private probes: absent means unknown, and fp32 is the safe side
        return False


def auto_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `--dtype auto`: bf16 on a CPU that computes it natively, else none (fp32)."""
    return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None


def resolve_device(device: str = "auto") -> torch.device:
    """`auto`: under `accelerate launch`, this process's own device; else CUDA, MPS or the CPU."""
    if device == "auto":
        from teamwork_cli.core import distributed

        if distributed.launched():
            return distributed.current().device
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"device must be one of auto, cpu, cuda, cuda:N, mps; got {device!r}")
    return torch.device(device)


__all__ = ["DTYPES", "auto_dtype", "cpu_has_fast_bf16", "resolve_device"]
