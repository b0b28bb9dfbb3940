"""Exactly periodic images: the periodic-plus-smooth decomposition (Moisan, "Periodic plus smooth image
decomposition", J. Math. Imaging Vis. 39, 2011).

Any image u splits uniquely as u = p + s, with p periodic (it wraps around without a jump) and s smooth, of zero
mean. The jumps of u across its wrap-around edges are the boundary image v (section 2, eq. 8: at an edge pixel,
the pixel across the wrap minus the pixel itself, summed over the two axes); s solves the periodic Poisson
equation  Delta_per s = v,  which the 2-D DFT diagonalises (eq. 12):

    s^(q, r) = v^(q, r) / (2 cos(2 pi q / H) + 2 cos(2 pi r / W) - 4),   s^(0, 0) = 0,

so p = u - s costs two FFTs. p is the periodic image whose Laplacian equals u's own inside the frame (with the
free boundary condition at the edges): the wrap-around pairs of p take over the statistics of u's interior
steps instead of a jump. s is largest at the edges and decays into the frame; `seamless` subtracts it only within
a band of the edges, so the interior stays exactly as it was.

Arrays are torch [..., H, W] (any leading dims: each [H, W] plane separately); `seamless_maps` applies it to the
channel values of a material or intrinsic team, jointly (same band) and in each map's file encoding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from teamwork_cli.core.encoding import decode, encode


def seam_score(x: Tensor) -> float:
    """How visible the wrap-around seams of x [..., H, W] are: mean |last - first| row (column) over the mean
    |difference| of neighbouring rows (columns) inside, the larger over the two axes; 1.0: the seam reads like
    the interior, above: a seam. nan for a flat image."""
    out = []
    for dim in (-2, -1):
        inside = x.double().diff(dim=dim).abs().mean().item()
        across = (x.select(dim, -1) - x.select(dim, 0)).double().abs().mean().item()
        out.append(across / inside if inside > 0 else math.nan)
    return max(out)


def boundary_image(u: Tensor) -> Tensor:
    """Moisan's v (eq. 8): at each edge pixel, the pixel across the wrap-around seam minus the pixel itself
    (both axes add up at the corners); zero inside."""
    v = torch.zeros_like(u)
    rows = u[..., -1, :] - u[..., 0, :]
    cols = u[..., :, -1] - u[..., :, 0]
    v[..., 0, :] += rows
    v[..., -1, :] -= rows
    v[..., :, 0] += cols
    v[..., :, -1] -= cols
    return v


def smooth_component(u: Tensor) -> Tensor:
    """s of u = p + s (eq. 12), same shape and dtype as u; computed in float64 (the FFT of a large image in
    float32 loses the small jumps of a nearly periodic one). Only u's four edges enter (through v)."""
    h, w = u.shape[-2:]
    edges = (u[..., 0, :], u[..., -1, :], u[..., :, 0], u[..., :, -1])
    return _smooth_from_edges(edges, h, w, u.dtype).view(u.shape)


def _smooth_from_edges(edges: tuple[Tensor, Tensor, Tensor, Tensor], h: int, w: int, dtype: torch.dtype) -> Tensor:
    """s ([planes, H, W] of `dtype`) from the edges (top, bottom rows [..., W]; left, right columns [..., H]) of
    each [H, W] plane, one plane at a time. v is zero inside, so its DFT is known in closed form from the edges'
    1-D DFTs: the rows term is R(r) at y = 0 and -R(r) at y = H - 1, i.e. R(r) (1 - e^(2 pi i q / H)), and the
    columns term likewise, C(q) (1 - e^(2 pi i r / W)). v is real, so half the spectrum (r <= W / 2) and a real
    inverse FFT suffice: a plane needs about 30 bytes a pixel, where fft2 of every plane at once took ~150."""
    top, bottom, left, right = (e.reshape(-1, e.shape[-1]).double() for e in edges)
    rows, cols = bottom - top, right - left  # the jumps across the seams, as `boundary_image` takes them
    device = rows.device
    q = torch.arange(h, dtype=torch.float64, device=device)
    r = torch.arange(w // 2 + 1, dtype=torch.float64, device=device)
    a = 1 - torch.exp(2j * math.pi * q / h)
    b = 1 - torch.exp(2j * math.pi * r / w)
    denom = 2 * torch.cos(2 * math.pi * q / h)[:, None] + 2 * torch.cos(2 * math.pi * r / w)[None, :] - 4
    denom[0, 0] = 1.0  # the mean of s: 0 (v sums to zero, so v^(0, 0) = 0 too)
    out = torch.empty(rows.shape[0], h, w, dtype=dtype, device=device)
    for k in range(rows.shape[0]):
        spec = a[:, None] * torch.fft.rfft(rows[k])[None, :]
        spec.addcmul_(torch.fft.fft(cols[k])[:, None], b[None, :])
        spec.div_(denom)
        spec[0, 0] = 0
        out[k] = torch.fft.irfft2(spec, s=(h, w))
    return out


def periodic_component(u: Tensor) -> Tensor:
    """p = u - s: u made exactly periodic, its mean kept."""
    return u - smooth_component(u)


def _ramp(n: int, band: int) -> Tensor:
    b = max(1, min(band, n // 2))
    d = torch.minimum(torch.arange(n), torch.arange(n).flip(0)).to(torch.float64)
    t = (d / b).clamp(max=1.0)
    return 0.5 + 0.5 * torch.cos(math.pi * t)


def edge_taper(h: int, w: int, band: int, *, device: torch.device | None = None) -> Tensor:
    """[H, W] weight of s in `seamless`: 1 on the edge pixels, falling smoothly (raised cosine, so the taper adds
    no kink of its own) to 0 at `band` pixels in and beyond; the max over the two axes."""
    return torch.maximum(_ramp(h, band)[:, None], _ramp(w, band)[None, :]).to(device)


def seamless(u: Tensor, band: int | None = None) -> Tensor:
    """u [..., H, W] with its wrap-around seams removed: p = u - s on the edge pixels, so opposite edges meet as
    neighbouring interior pixels do; with `band`, s is faded out over that many pixels from each edge
    (`edge_taper`) and the rest of u is returned unchanged; None: the whole periodic component p."""
    s = smooth_component(u)
    if band is not None:
        s = s * edge_taper(*u.shape[-2:], band, device=u.device).to(s.dtype)
    return u - s


def _strips(h: int, w: int, band: int) -> list[tuple[slice, slice]]:
    """The (rows, columns) blocks where `edge_taper` is positive: the top and bottom rows, then the left and right
    columns between them."""
    bh, bw = max(1, min(band, h // 2)), max(1, min(band, w // 2))
    full, middle = slice(0, w), slice(bh, h - bh)
    return [(slice(0, bh), full), (slice(h - bh, h), full), (middle, slice(0, bw)), (middle, slice(w - bw, w))]


def seamless_maps(maps: dict[str, Tensor], band: int | None = None, *, inplace: bool = False) -> dict[str, Tensor]:
    """`seamless` on each map of a team (channel values, [N, C, H, W]; keys are channel names), in its [0, 1]
    file encoding (docs/conventions.md section 1: the pixels that are written and tiled), with the same band for
    all so the maps stay aligned; decoding clips to the encoding's range and renormalises vectors (normals).
    With a band, pixels beyond it are returned exactly as given, and only the band is encoded and decoded (s
    needs the encoded edges alone); inplace: the band is written into the given maps themselves."""
    out = {}
    for c, x in maps.items():
        if band is None:
            out[c] = decode(c, seamless(encode(c, x.float()), band)).to(x.dtype)
            continue
        h, w = x.shape[-2:]
        rows, cols = encode(c, x[..., [0, h - 1], :].float()), encode(c, x[..., :, [0, w - 1]].float())
        edges = (rows[..., 0, :], rows[..., 1, :], cols[..., :, 0], cols[..., :, 1])
        s = _smooth_from_edges(edges, h, w, rows.dtype).view(*rows.shape[:-2], h, w)
        ramp_h, ramp_w = _ramp(h, band).to(x.device), _ramp(w, band).to(x.device)
        fixed = x if inplace else x.clone()
        for ys, xs in _strips(h, w, band):
            taper = torch.maximum(ramp_h[ys, None], ramp_w[None, xs])
            part = x[..., ys, xs]
            new = decode(c, encode(c, part.float()) - s[..., ys, xs] * taper.to(s.dtype)).to(x.dtype)
            # beyond the band the values are returned as given (encoding would clip a float map)
            fixed[..., ys, xs] = torch.where(taper > 0, new, part)
        out[c] = fixed
    return out


__all__ = [
    "boundary_image",
    "edge_taper",
    "periodic_component",
    "seam_score",
    "seamless",
    "seamless_maps",
    "smooth_component",
]
