"""Per-pixel work on a large image a band of rows at a time.

A chain of elementwise torch operations on a 4096 x 4096 map makes a temporary of the map's size per step (200 MB
for three float32 channels), and a few alive at once decide a command's peak memory. Done on bands of rows, the
temporaries are a band's size and stay in the CPU's caches. For work that is per pixel (each output pixel
depends on the same pixel of the inputs only, across channels at most) the result is the same for any band
height: bit for bit for arithmetic, square roots and comparisons; within one float32 ulp where transcendental
functions enter (pow, exp: torch's vectorised and scalar loops, which split a tensor differently by its size and
its threads, may round them differently).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

CHUNK_PIXELS = 1 << 17  # pixels per band: its temporaries are a few MB


def row_bands(height: int, width: int, pixels: int = CHUNK_PIXELS) -> list[slice]:
    """Consecutive row slices of about `pixels` pixels each (at least one row), covering 0..height."""
    if pixels < 1:
        raise ValueError(f"pixels must be at least 1; got {pixels}")
    step = max(1, pixels // max(1, width))
    return [slice(i, min(i + step, height)) for i in range(0, height, step)]


def map_rows(fn: Callable[..., Tensor], *xs: Tensor, pixels: int = CHUNK_PIXELS) -> Tensor:
    """fn applied to bands of rows of the [..., H, W] tensors xs (all the same H and W), the bands' results written
    into one new tensor: fn(*xs) for a per-pixel fn, without its whole-image temporaries."""
    h, w = xs[0].shape[-2:]
    out: Tensor | None = None
    for rows in row_bands(h, w, pixels):
        part = fn(*(x[..., rows, :] for x in xs))
        if out is None:
            out = torch.empty((*part.shape[:-2], h, w), dtype=part.dtype, device=part.device)
        out[..., rows, :] = part
    assert out is not None  # H >= 1: at least one band
    return out


__all__ = ["CHUNK_PIXELS", "map_rows", "row_bands"]
