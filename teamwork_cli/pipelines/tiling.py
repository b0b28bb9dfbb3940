"""How a `TeamPipeline` call is laid out in windows: the options (`WindowOptions`), their defaults from the
adapter, and the periodic resampling a tileable canvas needs.

A canvas is processed in windows when the call asks for tileable output (the canvas is then a torus: the windows
wrap around its edges, so every map written wraps seamlessly, all maps jointly) or when it is larger than
`window`. Otherwise the whole canvas is one pass, as without windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from teamwork_cli.pipelines.sync import SYNCS

DEFAULT_SYNC = "syncsde"


@dataclass(frozen=True)
class WindowOptions:
    """window, overlap: pixels (None: from the adapter, see `default_window`; overlap a quarter window).
    tileable: the outputs wrap around (left-right and top-bottom). sync, strength: how the windows' trajectories
    are synchronised (`pipelines/sync.py`). batch_size: windows per forward pass (memory; results do not depend
    on it); None: as many as make about a 512 x 512 pass (`windows_per_pass`).
    full_frame_pixels: with no window given and no tiling, images up to this many pixels take one pass and only
    larger ones go in windows (`automatic`); None: windows whenever the image is larger than the window."""

    window: int | None = None
    overlap: int | None = None
    tileable: bool = False
    sync: str = DEFAULT_SYNC
    strength: float = 1.0
    batch_size: int | None = None
    full_frame_pixels: int | None = None

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 16:
            raise ValueError(f"window must be at least 16 pixels; got {self.window}")
        if self.overlap is not None and self.overlap < 0:
            raise ValueError(f"overlap must be >= 0 pixels; got {self.overlap}")
        if self.sync not in SYNCS:
            raise ValueError(f"sync must be one of {', '.join(SYNCS)}; got {self.sync!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size}")
        if self.full_frame_pixels is not None and self.full_frame_pixels < 1:
            raise ValueError(f"full_frame_pixels must be at least 1; got {self.full_frame_pixels}")

    @classmethod
    def automatic(cls, **kwargs) -> WindowOptions:
        """One pass up to FULL_FRAME_PIXELS, windows of the adapter's size beyond (what the CLI does by default)."""
        return cls(full_frame_pixels=FULL_FRAME_PIXELS, **kwargs)

    def windowed(self, height: int, width: int, window: int) -> bool:
        if self.tileable:
            return True
        if self.window is None and self.full_frame_pixels is not None:
            return height * width > self.full_frame_pixels and max(height, width) > window
        return max(height, width) > window

    def windows_per_pass(self, window: int) -> int:
        """batch_size, or as many windows as make about a 512 x 512 pass: on a CPU a forward of one small window
        costs about 3x its share of a large one (per-call overheads), so small windows go in batches."""
        return self.batch_size or max(1, WINDOW_BATCH_PIXELS // (window * window))


# Up to this size one pass costs about linearly in pixels (the embedded model's mid-block attention is quadratic in
# them: at 2048 x 2048 it alone takes longer than 25 windowed passes); above it the CLI goes to windows by default.
FULL_FRAME_PIXELS = 1024 * 1024
WINDOW_BATCH_PIXELS = 512 * 512


def recorded_resolution(text: str | None) -> int | None:
    """The side of `modelspec.resolution` ("512x512", "1024"), or None."""
    nums = [int(n) for n in re.findall(r"\d+", text or "")]
    return min(nums) if nums else None


def round_to(value: int, multiple: int, *, at_least: int = 0) -> int:
    return max(at_least, round(value / multiple) * multiple)


def latent_factor(denoiser) -> int:  # noqa: ANN001 (a TeamDenoiser; typed loosely to keep this module light)
    """Pixels per latent cell: 2 for the embedded model's patches, 8 for the hub backbones' VAEs."""
    m = denoiser.pixel_multiple
    param = next(denoiser.model.parameters())
    latent = denoiser.encode(torch.zeros(1, 3, m, m, device=param.device, dtype=param.dtype))
    return m // latent.shape[-1]


def resize_periodic(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Linear resampling of a periodic image [N, C, H, W] to `size` (pixel centres as align_corners=False), with
    the neighbours of edge pixels taken across the opposite edge, so a tileable image stays tileable. For the
    small changes that round a canvas to the model's pixel multiple; it does not low-pass a large reduction."""
    for dim, new in ((-2, size[0]), (-1, size[1])):
        old = x.shape[dim]
        if new == old:
            continue
        pos = (torch.arange(new, dtype=torch.float64) + 0.5) * old / new - 0.5
        lo = torch.floor(pos)
        frac = (pos - lo).to(x.dtype)
        i0, i1 = lo.long() % old, (lo.long() + 1) % old
        shape = [1] * x.ndim
        shape[dim] = new
        frac = frac.view(shape).to(x.device)
        x = x.index_select(dim, i0.to(x.device)) * (1 - frac) + x.index_select(dim, i1.to(x.device)) * frac
    return x


def edge_weight(height: int, width: int, band: int) -> Tensor:
    """[H, W] weight: 0 on the edge pixels, rising linearly to 1 at `band` pixels in (the blend of make_periodic)."""

    def ramp(n: int) -> Tensor:
        b = max(1, min(band, n // 2))
        d = torch.minimum(torch.arange(n), torch.arange(n).flip(0)).to(torch.float32)
        return (d / b).clamp(max=1.0)

    return ramp(height)[:, None] * ramp(width)[None, :]


def make_periodic(x: Tensor, band: int) -> Tensor:
    """x [N, C, H, W] made to wrap around: within `band` pixels of each edge it is cross-faded with itself rolled
    by half its size (whose edges are x's centre, continuous across the wrap), so a photo that does not tile can
    be estimated on a torus. The centre is untouched; near the edges the content becomes a blend of the edge and
    of the centre of the photo (the classic offset-and-blend of seamless textures). The edge pixels are the pure
    half-roll: opposite edges then hold neighbouring rows (columns) of the photo."""
    h, w = x.shape[-2:]
    keep = edge_weight(h, w, band).to(x.device, x.dtype)
    return x * keep + torch.roll(x, (h // 2, w // 2), dims=(-2, -1)) * (1 - keep)


__all__ = [
    "DEFAULT_SYNC",
    "edge_weight",
    "make_periodic",
    "WindowOptions",
    "latent_factor",
    "recorded_resolution",
    "resize_periodic",
    "round_to",
]
