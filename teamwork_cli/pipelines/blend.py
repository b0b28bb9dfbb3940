"""Blending decoded windows into the canvas (used by `windows.sample_windows`): each window's pixels weighted by
its taper (`windows.window_weights`), summed per canvas pixel and divided by the summed weight.

Memory: one accumulator per output map and one for the weights, each divided in place, so the result is one
canvas per output and nothing more; the windows arrive a batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from teamwork_cli.models.denoiser import TeamDenoiser
from teamwork_cli.pipelines.sampling import _decode


class _Blender:
    """Decoded windows ([b, rows, C, h, w], rows image-major then output) accumulated into the canvas with the
    windows' taper weights: one accumulator per output, each divided by the total weight in place, so the result
    holds one canvas per output map and can be freed map by map."""

    def __init__(self, rows: int, size: tuple[int, int], weights: Tensor, n_out: int = 1) -> None:
        self.rows, self.size, self.weights, self.n_out = rows, size, weights, n_out
        self.acc: list[Tensor] = []
        self.total: Tensor | None = None

    def add(self, dec: Tensor, cells: Tensor) -> None:
        b, rows, c = dec.shape[:3]
        w = self.weights.to(dec.device)
        flat = cells.to(dec.device).reshape(-1)
        if self.total is None:
            self.acc = [dec.new_zeros(rows // self.n_out, c, self.size[0] * self.size[1]) for _ in range(self.n_out)]
            self.total = dec.new_zeros(self.size[0] * self.size[1])
        per_out = dec.unflatten(1, (rows // self.n_out, self.n_out))  # [b, N, n_out, C, h, w]
        for k, acc in enumerate(self.acc):
            acc.index_add_(2, flat, (per_out[:, :, k] * w).permute(1, 2, 0, 3, 4).reshape(acc.shape[0], c, -1))
        self.total.index_add_(0, flat, w.expand(b, *w.shape).reshape(-1))

    def result(self, outs: list[str], n_img: int) -> dict[str, Tensor]:
        assert self.total is not None and len(outs) == self.n_out
        out = {}
        for n, acc in zip(outs, self.acc, strict=True):
            out[n] = acc.div_(self.total).view(n_img, -1, *self.size)
        self.acc = []  # the canvases are the caller's now
        return out


def _blend(
    denoiser: TeamDenoiser,
    latents: Tensor,
    outs: list[str],
    n_img: int,
    dtype: torch.dtype,
    cells: Callable[[int, int], Tensor],
    weights: Tensor,
    size: tuple[int, int],
    batch_size: int,
    exact: bool,
) -> dict[str, Tensor]:
    """Decode the windows ([windows, N * n_out, C, h, w]) batch_size at a time and blend them into the canvas with
    `weights` (pixels), `cells(s, e)` naming windows s..e-1's canvas pixels; one window that is the canvas is
    decoded as sample_team decodes."""
    if exact:
        return _decode(denoiser, latents[0], outs, n_img, dtype)
    n_win, rows = latents.shape[:2]
    blender = _Blender(rows, size, weights, len(outs))
    for s in range(0, n_win, batch_size):
        e = min(s + batch_size, n_win)
        blender.add(
            denoiser.decode(latents[s:e].flatten(0, 1).to(dtype)).float().unflatten(0, (e - s, rows)), cells(s, e)
        )
    return blender.result(outs, n_img)
