"""Building blocks of the procedural generator: the per-sample random source, tileable fields and colours.

Everything here is periodic on the tile (noise is filtered white noise on the FFT's lattice, the cell and brick
patterns wrap their integer lattices), so the material families built on it (`families`) stay tileable. `Rng`
is the only source of randomness: a material, or a scene (`scenes`), draws every number from one `Rng` made
from its seed, in a fixed order, which is what makes a seed reproduce its output.
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Sequence
from statistics import NormalDist

import torch
from torch import Tensor

# ----------------------------------------------------------------------------------------------- random


class Rng:
    """Scalar and tensor draws from one per-sample torch.Generator (CPU)."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)

    def u(self, a: float = 0.0, b: float = 1.0) -> float:
        return a + (b - a) * float(torch.rand((), generator=self.g))

    def logu(self, a: float, b: float) -> float:
        return math.exp(self.u(math.log(a), math.log(b)))

    def i(self, a: int, b: int) -> int:  # inclusive
        return int(torch.randint(a, b + 1, (), generator=self.g))

    def p(self, prob: float) -> bool:
        return self.u() < prob

    def pick(self, options: Sequence):
        return options[self.i(0, len(options) - 1)]

    def weighted(self, table: dict[str, float]) -> str:
        x = self.u(0.0, sum(table.values()))
        for key, w in table.items():
            x -= w
            if x <= 0.0:
                return key
        return key

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(shape, generator=self.g)

    def rand(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.g)


# ------------------------------------------------------------------------------------ periodic fields


@functools.lru_cache(maxsize=8)
def _freq_grid(s: int) -> tuple[Tensor, Tensor]:
    """Frequencies in cycles per tile on the rfft2 grid: fy [S, 1], fx [1, S//2+1]."""
    fy = torch.fft.fftfreq(s, d=1.0 / s).view(s, 1)
    fx = torch.fft.rfftfreq(s, d=1.0 / s).view(1, -1)
    return fy, fx


def _filter(x: Tensor, amp: Tensor) -> Tensor:
    s = x.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(x) * amp, s=(s, s))


def _standardize(x: Tensor) -> Tensor:
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    return x * torch.rsqrt((x * x).mean(dim=(-2, -1), keepdim=True).clamp_min(1e-16))


def noise(
    r: Rng,
    s: int,
    n: int = 1,
    *,
    beta: float = 1.8,
    fmin: float = 1.0,
    fmax: float | None = None,
    stretch: float = 1.0,
    angle: float = 0.0,
) -> Tensor:
    """n tileable fractal noise fields [n, S, S], zero mean, unit variance.

    White noise shaped by an amplitude spectrum f^-beta between fmin and fmax cycles per tile (power law
    noise, e.g. Perlin 1985 / "fBm"); stretch > 1 elongates the features along `angle` (radians).
    Filtering on the FFT lattice makes the result exactly periodic.
    """
    fy, fx = _freq_grid(s)
    c, si = math.cos(angle), math.sin(angle)
    a = fx * c + fy * si
    b = -fx * si + fy * c
    f = torch.sqrt((a * stretch) ** 2 + b**2)
    amp = f.clamp_min(1e-3) ** (-beta) * (1.0 - torch.exp(-((f / fmin) ** 2)))
    if fmax is not None:
        amp = amp * torch.exp(-((f / fmax) ** 2))
    amp[0, 0] = 0.0
    return _standardize(_filter(r.randn(n, s, s), amp))


def blur(x: Tensor, sigma: float) -> Tensor:
    """Periodic Gaussian blur, sigma in tile units (its Fourier transform is exp(-2 pi^2 sigma^2 f^2))."""
    fy, fx = _freq_grid(x.shape[-1])
    return _filter(x, torch.exp(-2.0 * math.pi**2 * sigma**2 * (fx**2 + fy**2)))


def blobs(r: Rng, s: int, count: int, sigma: float) -> Tensor:
    """Sum of `count` random Gaussian bumps of width sigma (tile units), peak ~1: FFT-blurred impulses."""
    img = torch.zeros(s * s)
    img.index_add_(0, torch.randint(0, s * s, (count,), generator=r.g), r.rand(count) * 0.7 + 0.3)
    peak = 1.0 / (2.0 * math.pi * (sigma * s) ** 2)  # a unit impulse blurred to sigma has this peak (pixels)
    return blur(img.view(s, s), sigma) / max(peak, 1e-8)


def warp(img: Tensor, du: Tensor, dv: Tensor) -> Tensor:
    """Bilinear resampling of [C, S, S] at (column + du, row + dv) pixels, wrapping around the tile."""
    c, s, _ = img.shape
    idx = torch.arange(s, dtype=img.dtype)
    x = idx.view(1, s) + du
    y = idx.view(s, 1) + dv
    x0, y0 = torch.floor(x), torch.floor(y)
    wx, wy = x - x0, y - y0
    x0, y0 = x0.long() % s, y0.long() % s
    x1, y1 = (x0 + 1) % s, (y0 + 1) % s
    top = img[:, y0, x0] * (1 - wx) + img[:, y0, x1] * wx
    bot = img[:, y1, x0] * (1 - wx) + img[:, y1, x1] * wx
    return top * (1 - wy) + bot * wy


def uv(s: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates in tile units [0, 1): u along columns, v along rows (both [S, S])."""
    t = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    return t.view(1, s).expand(s, s), t.view(s, 1).expand(s, s)


def voronoi(r: Rng, u: Tensor, v: Tensor, gx: int, gy: int, jitter: float) -> tuple[Tensor, Tensor, Tensor]:
    """Periodic jittered-grid Voronoi (Worley 1996) at tile coords u, v: F1, F2 (cell sizes), cell id."""
    pts = 0.5 + jitter * (r.rand(gy, gx, 2) - 0.5)
    su, sv = u * gx, v * gy
    ci, cj = torch.floor(sv).long(), torch.floor(su).long()
    fu, fv = su - cj, sv - ci
    scale_x, scale_y = math.sqrt(gy / gx), math.sqrt(gx / gy)  # world-isotropic distances for gx != gy
    dists, ids = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ni, nj = (ci + dy) % gy, (cj + dx) % gx
            p = pts[ni, nj]
            ddx = (dx + p[..., 0] - fu) * scale_x
            ddy = (dy + p[..., 1] - fv) * scale_y
            dists.append(torch.sqrt(ddx * ddx + ddy * ddy))
            ids.append(ni * gx + nj)
    d = torch.stack(dists)
    two, arg = torch.topk(d, 2, dim=0, largest=False)
    cell = torch.gather(torch.stack(ids), 0, arg[:1])[0]
    return two[0], two[1], cell


def bricks(u: Tensor, v: Tensor, rows: int, cols: int, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Brick layout: distance to the brick edge (tile units), brick id, and in-brick coords in [0, 1)."""
    sv = v * rows
    row = torch.floor(sv).long() % rows
    fv = sv - torch.floor(sv)
    su = u * cols + offsets[row]
    col = torch.floor(su).long() % cols
    fu = su - torch.floor(su)
    edge = torch.minimum(torch.minimum(fu, 1 - fu) / cols, torch.minimum(fv, 1 - fv) / rows)
    return edge, row * cols + col, fu, fv


def smoothstep(a: float | Tensor, b: float | Tensor, x: Tensor) -> Tensor:
    t = ((x - a) / (b - a + 1e-8)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def threshold_for(coverage: float) -> float:
    """Level of a unit Gaussian field above which `coverage` of the pixels lie."""
    return NormalDist().inv_cdf(min(max(1.0 - coverage, 1e-3), 1 - 1e-3))


def slope_scaled(h: Tensor, slope: float) -> Tensor:
    """Scale a height field so that its RMS slope in world units (patch = 2 units wide) equals `slope`."""
    gx, gy = _grad(h)
    rms = torch.sqrt((gx * gx + gy * gy).mean()).item()
    return h * (slope / max(rms, 1e-8))


def _grad(h: Tensor) -> tuple[Tensor, Tensor]:
    """dh/dx, dh/dy in world units, +y towards the top row (central differences with wrap-around)."""
    step = 2.0 / h.shape[-1]
    dx = (torch.roll(h, -1, dims=-1) - torch.roll(h, 1, dims=-1)) / (2 * step)
    dy = (torch.roll(h, 1, dims=-2) - torch.roll(h, -1, dims=-2)) / (2 * step)
    return dx, dy


def height_to_normals(h: Tensor) -> Tensor:
    """Unit normals (OpenGL tangent space) of the surface z = h(x, y): n ~ (-dh/dx, -dh/dy, 1)."""
    dx, dy = _grad(h)
    inv = torch.rsqrt(dx * dx + dy * dy + 1.0)  # explicit: a norm over the channel dim is ~10x slower on CPU
    return torch.cat([-dx * inv, -dy * inv, inv], dim=-3)


# ------------------------------------------------------------------------------------------- colours


def _srgb_to_linear(c: Tensor) -> Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


# HSV boxes in sRGB (hue, saturation, value ranges), picked by eye from photos of real materials.
PALETTES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "stone": ((0.04, 0.16), (0.02, 0.25), (0.30, 0.75)),
    "concrete": ((0.05, 0.6), (0.0, 0.08), (0.40, 0.75)),
    "sand": ((0.07, 0.13), (0.18, 0.45), (0.50, 0.82)),
    "slate": ((0.5, 0.7), (0.02, 0.15), (0.12, 0.35)),
    "soil": ((0.05, 0.11), (0.25, 0.6), (0.15, 0.45)),
    "brick": ((0.0, 0.06), (0.4, 0.75), (0.30, 0.68)),
    "wood": ((0.05, 0.11), (0.35, 0.75), (0.25, 0.82)),
    "mortar": ((0.07, 0.13), (0.0, 0.18), (0.40, 0.75)),
    "paint": ((0.0, 1.0), (0.0, 0.85), (0.20, 0.92)),
    "fabric": ((0.0, 1.0), (0.05, 0.7), (0.15, 0.85)),
    "rust": ((0.025, 0.08), (0.55, 0.85), (0.18, 0.55)),
    "dirt": ((0.06, 0.11), (0.15, 0.5), (0.08, 0.32)),
    "moss": ((0.17, 0.3), (0.3, 0.65), (0.18, 0.4)),
    "tile": ((0.0, 1.0), (0.0, 0.6), (0.3, 0.95)),
}

# Linear F0 of metals (Hoffman 2013, "Background: Physics and Math of Shading", SIGGRAPH PBS course;
# brass approximate).  Iron/steel listed twice because it is by far the most common metal in photos.
METALS: list[tuple[float, float, float]] = [
    (0.560, 0.570, 0.580),  # iron
    (0.560, 0.570, 0.580),  # iron / steel
    (0.913, 0.922, 0.924),  # aluminium
    (0.972, 0.960, 0.915),  # silver
    (1.000, 0.766, 0.336),  # gold
    (0.955, 0.637, 0.538),  # copper
    (0.550, 0.556, 0.554),  # chromium
    (0.660, 0.609, 0.526),  # nickel
    (0.542, 0.497, 0.449),  # titanium
    (0.910, 0.778, 0.423),  # brass
]


def colour(r: Rng, palette: str) -> Tensor:
    """A linear RGB colour [3, 1, 1] from an sRGB HSV box."""
    (h0, h1), (s0, s1), (v0, v1) = PALETTES[palette]
    rgb = colorsys.hsv_to_rgb(r.u(h0, h1) % 1.0, r.u(s0, s1), r.u(v0, v1))
    return _srgb_to_linear(torch.tensor(rgb, dtype=torch.float32)).view(3, 1, 1)


def vary(r: Rng, c: Tensor, amount: float) -> Tensor:
    """A nearby colour: brightness and per-channel multiplicative jitter of relative size `amount`."""
    gain = math.exp(r.u(-amount, amount))
    tint = torch.exp((r.rand(3) - 0.5) * amount).view(3, 1, 1)
    return c * gain * tint


def per_cell(r: Rng, c: Tensor, ids: Tensor, n: int, amount: float) -> Tensor:
    """Colour [3, S, S] varying per cell id: brightness and tint jitter by `amount` (log scale)."""
    gain = torch.exp((r.rand(n) - 0.5) * 2 * amount)
    tint = torch.exp((r.rand(3, n) - 0.5) * amount * 0.5)
    return c * (gain * tint)[:, ids]


def mix(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t
