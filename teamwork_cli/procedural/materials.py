"""Procedural SVBRDF generator: the embedded model's only training data.

Each material is drawn from one *family* (stone/concrete, cells/cobbles, bricks/tiles, wood, fabric, metal,
painted metal) with randomised feature scale, palette, roughness and bump strength, and then optionally
weathered by overlays (dirt in cavities, rust, scratches, dents).  Every map is tileable: noise is filtered
white noise on the FFT's periodic lattice, and the cell/brick/weave patterns are laid out on integer lattices
with wrap-around indexing.

Determinism: sample k of a batch is made only from `torch.Generator().manual_seed(seeds[k])`, one sample at a
time on the CPU, so the same seed gives the same material whatever batch it is in (for a given size).

Maps follow conventions.md section 1 (value domain): basecolor/diffuse/specular linear RGB, metallic and
roughness in [0, 1], normals OpenGL unit vectors, and diffuse = basecolor (1 - m), specular = 0.04 (1 - m)
+ basecolor m (glTF metal-roughness).  `height` is relative, normalised per sample to [0, 1].
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist

import torch
from torch import Tensor

from teamwork_cli.graphics import render as R

# ----------------------------------------------------------------------------------------------- random


class _Rng:
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
    r: _Rng,
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


def blobs(r: _Rng, s: int, count: int, sigma: float) -> Tensor:
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


def _uv(s: int) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates in tile units [0, 1): u along columns, v along rows (both [S, S])."""
    t = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    return t.view(1, s).expand(s, s), t.view(s, 1).expand(s, s)


def voronoi(r: _Rng, u: Tensor, v: Tensor, gx: int, gy: int, jitter: float) -> tuple[Tensor, Tensor, Tensor]:
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


def bricks(
    u: Tensor, v: Tensor, rows: int, cols: int, offsets: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
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


def colour(r: _Rng, palette: str) -> Tensor:
    """A linear RGB colour [3, 1, 1] from an sRGB HSV box."""
    (h0, h1), (s0, s1), (v0, v1) = PALETTES[palette]
    rgb = colorsys.hsv_to_rgb(r.u(h0, h1) % 1.0, r.u(s0, s1), r.u(v0, v1))
    return _srgb_to_linear(torch.tensor(rgb, dtype=torch.float32)).view(3, 1, 1)


def vary(r: _Rng, c: Tensor, amount: float) -> Tensor:
    """A nearby colour: brightness and per-channel multiplicative jitter of relative size `amount`."""
    gain = math.exp(r.u(-amount, amount))
    tint = torch.exp((r.rand(3) - 0.5) * amount).view(3, 1, 1)
    return c * gain * tint


def per_cell(r: _Rng, c: Tensor, ids: Tensor, n: int, amount: float) -> Tensor:
    """Colour [3, S, S] varying per cell id: brightness and tint jitter by `amount` (log scale)."""
    gain = torch.exp((r.rand(n) - 0.5) * 2 * amount)
    tint = torch.exp((r.rand(3, n) - 0.5) * amount * 0.5)
    return c * (gain * tint)[:, ids]


def mix(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    return a + (b - a) * t


# ------------------------------------------------------------------------------------------ families

Layer = dict[str, Tensor]  # basecolor [3,S,S] linear, metallic/roughness/height [S,S]; height in world units


def _layer(base: Tensor, rough: Tensor | float, height: Tensor, metal: Tensor | float = 0.0) -> Layer:
    s = height.shape[-1]
    full = torch.ones(s, s)
    return {
        "basecolor": base.expand(3, s, s).clone(),
        "roughness": (rough * full).clone(),
        "metallic": (metal * full).clone(),
        "height": height,
    }


def _dielectric_roughness(r: _Rng, lo: float = 0.65, glossy: float = 0.1) -> float:
    # Real stone, concrete, brick and plaster are mostly matte; a few are polished or sealed.
    return r.u(0.12, 0.45) if r.p(glossy) else r.u(lo, 1.0)


def fam_ground(r: _Rng, s: int) -> Layer:
    """Stone, concrete, plaster, asphalt, sand: fractal noise with speckles and pores."""
    c1 = colour(r, r.pick(["stone", "concrete", "concrete", "sand", "slate", "soil"]))
    c2 = vary(r, c1, 0.5)
    n = noise(r, s, 3, beta=r.u(1.2, 2.2), fmin=r.logu(1.0, 6.0))
    if r.p(0.4):  # domain warp for flowing, layered stone
        w = noise(r, s, 2, beta=2.0, fmin=1.0) * r.u(2.0, s / 16)
        n = warp(n, w[0], w[1])
    shape = n[0] if r.p(0.6) else 1.0 - 2.0 * n[0].abs()  # plain or ridged
    base = mix(c1, c2, smoothstep(-2.0, 2.0, n[1] * r.u(0.5, 2.0)))
    h = slope_scaled(shape, r.logu(0.03, 0.6))
    if r.p(0.6):  # aggregate / granite speckles
        sp = noise(r, s, 1, beta=r.u(0.3, 1.0), fmin=s / 16)[0]
        m = smoothstep(threshold_for(r.u(0.03, 0.3)), threshold_for(0.01), sp)
        base = mix(base, vary(r, c1, 1.2), m)
    if r.p(0.5):  # pores and pits
        pits = blobs(r, s, r.i(20, 600), r.logu(0.6, 2.0) / s) + blobs(r, s, r.i(0, 60), r.logu(2.0, 5.0) / s)
        h = h - slope_scaled(pits, r.logu(0.05, 0.4))
    rough = _dielectric_roughness(r) + 0.06 * n[2]
    return _layer(base, rough, h)


def fam_cells(r: _Rng, s: int) -> Layer:
    """Cobblestones, flagstones, gravel, cracked earth: warped periodic Voronoi cells with gaps."""
    kind = r.pick(["cobble", "flag", "gravel", "cracked"])
    g = {"cobble": r.i(3, 14), "flag": r.i(3, 6), "gravel": r.i(10, 24), "cracked": r.i(3, 9)}[kind]
    gx = g
    gy = max(3, round(g * r.u(0.7, 1.4)))
    u, v = _uv(s)
    w = noise(r, s, 2, beta=2.0, fmin=2.0) * (r.u(0.0, 0.25) / g)
    f1, f2, cell = voronoi(r, (u + w[0]) % 1.0, (v + w[1]) % 1.0, gx, gy, r.u(0.6, 1.0))
    edge = f2 - f1
    gap = {"cobble": r.u(0.04, 0.2), "flag": r.u(0.02, 0.07), "gravel": r.u(0.0, 0.1), "cracked": 0.02}[kind]
    bevel = r.u(0.05, 0.5) if kind in ("cobble", "gravel") else r.u(0.01, 0.08)
    fine = noise(r, s, 2, beta=r.u(1.3, 2.0), fmin=4.0)
    rough_edge = fine[0] * 0.03
    mask = smoothstep(gap * 0.5, gap * 0.5 + bevel, edge + rough_edge)
    lift = r.rand(gx * gy)[cell] * r.u(0.0, 0.4)
    dome = mask.sqrt() if kind in ("cobble", "gravel") else mask
    shape = dome * (1.0 + lift) + 0.05 * fine[1]
    h = slope_scaled(shape, r.logu(0.15, 1.0))
    stone = colour(r, r.pick(["stone", "stone", "sand", "slate", "concrete", "soil"]))
    stones = per_cell(r, stone, cell, gx * gy, r.u(0.05, 0.5)) * (1.0 + 0.15 * fine[1]).clamp_min(0.2)
    filler = colour(r, r.pick(["mortar", "soil", "dirt", "moss"] if kind != "cracked" else ["soil"]))
    base = mix(filler, stones, mask)
    rs = _dielectric_roughness(r, glossy={"flag": 0.1, "cobble": 0.03}.get(kind, 0.0))
    rough = mix(torch.full((s, s), r.u(0.8, 1.0)), rs + 0.05 * fine[0], mask)
    return _layer(base, rough, h)


def _brick_layout(r: _Rng, s: int, rows: int, aspect: float) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    cols = max(1, round(rows / aspect))
    bond = r.pick(["half", "half", "stack", "random", "third"])
    idx = torch.arange(rows, dtype=torch.float32)
    offsets = {
        "half": (idx % 2) * 0.5,
        "stack": torch.zeros(rows),
        "random": r.rand(rows),
        "third": (idx % 3) / 3.0,
    }[bond]
    u, v = _uv(s)
    edge, ids, fu, fv = bricks(u, v, rows, cols, offsets)
    return edge, ids, fu, fv, rows * cols


def fam_bricks(r: _Rng, s: int) -> Layer:
    """Bricks, pavers and glazed tiles with mortar, bevels, chipped edges and per-brick colour."""
    tile = r.p(0.4)
    rows = 2 * r.i(1, 6) if tile else 2 * r.i(2, 12)
    aspect = r.pick([1.0, 1.0, 2.0, 0.5]) if tile else r.u(1.8, 4.0)
    edge, ids, _, _, n = _brick_layout(r, s, rows, aspect)
    rough_n = noise(r, s, 3, beta=r.u(1.2, 2.0), fmin=2.0)
    mortar_w = r.u(0.03, 0.12) / rows
    bevel = r.u(0.005, 0.08) / rows if tile else r.u(0.02, 0.2) / rows
    chip = 0.0 if tile else r.u(0.0, 0.4) / rows
    mask = smoothstep(mortar_w / 2, mortar_w / 2 + bevel, edge + chip * rough_n[0])
    tilt = (r.rand(n)[ids] - 0.5) * r.u(0.0, 0.3)
    shape = mask * (1.0 + tilt) + (0.0 if tile else 0.04) * rough_n[1] + 0.1 * (1 - mask) * rough_n[2]
    h = slope_scaled(shape, r.logu(0.1, 0.6) if tile else r.logu(0.15, 1.0))
    c = colour(r, "tile" if tile else r.pick(["brick", "brick", "brick", "sand", "stone", "concrete"]))
    bcol = per_cell(r, c, ids, n, r.u(0.02, 0.15) if tile else r.u(0.1, 0.5))
    if not tile:
        bcol = bcol * torch.exp(0.2 * rough_n[1] * r.u(0.3, 1.5))
    mortar = colour(r, "mortar")
    base = mix(mortar * (1 + 0.1 * rough_n[2]).clamp_min(0.2), bcol, mask)
    rb = r.u(0.05, 0.35) if tile and r.p(0.7) else _dielectric_roughness(r, glossy=0.02)
    rough = mix(torch.full((s, s), r.u(0.8, 1.0)), rb + 0.04 * rough_n[2], mask)
    return _layer(base, rough, h)


def fam_wood(r: _Rng, s: int) -> Layer:
    """Wood planks: growth rings along the plank, warped by low-frequency noise, plus fine grain streaks."""
    rows = r.pick([1, 2, 4, 6, 8, 12])
    planks = rows > 1
    u, v = _uv(s)
    if planks:
        edge, ids, _, _, n = _brick_layout(r, s, rows, r.u(3.0, 12.0))
    else:
        edge, ids, n = torch.ones(s, s), torch.zeros(s, s, dtype=torch.long), 1
    offs = r.rand(n)[ids] * 10.0
    ring_f = r.i(4, 40)
    bend = noise(r, s, 1, beta=2.2, fmin=1.0, stretch=r.u(2.0, 8.0))[0]
    rings = torch.frac(ring_f * v + offs + bend * r.u(0.3, 2.0))
    ring = smoothstep(0.0, r.u(0.3, 0.9), rings) * (1 - smoothstep(0.85, 1.0, rings))
    grain = noise(r, s, 2, beta=1.0, fmin=8.0, stretch=r.u(8.0, 30.0))
    light = colour(r, "wood")
    dark = vary(r, light * r.u(0.3, 0.7), 0.3)
    base = mix(light, dark, (ring * r.u(0.4, 1.0) + 0.15 * grain[0]).clamp(0, 1))
    base = per_cell(r, base, ids, n, r.u(0.05, 0.35)) if planks else base
    gap = smoothstep(r.u(0.001, 0.006), 0.012, edge) if planks else torch.ones(s, s)
    shape = 0.02 * grain[1] + 0.05 * ring + gap
    h = slope_scaled(shape, r.logu(0.03, 0.4))
    varnish = r.p(0.35)
    rough = (r.u(0.15, 0.4) if varnish else r.u(0.5, 0.95)) + 0.05 * grain[0] + 0.2 * (1 - gap)
    return _layer(base * mix(0.3, 1.0, gap), rough, h)


def fam_fabric(r: _Rng, s: int) -> Layer:
    """Woven cloth: plain, twill or basket weave of two thread colours with fibre noise."""
    threads = 2 * r.i(8, 48)
    k = r.pick([2, 2, 3, 4])
    u, v = _uv(s)
    su, sv = u * threads, v * threads
    i, j = torch.floor(sv).long(), torch.floor(su).long()
    fu, fv = su - j, sv - i
    over = ((i + j) % k) < (k // 2 if k > 2 else 1)  # warp (vertical) thread on top
    across = torch.where(over, fu, fv)
    along = torch.where(over, fv, fu)
    profile = torch.sqrt((1 - (2 * across - 1) ** 2).clamp_min(0)) * (0.6 + 0.4 * torch.sin(math.pi * along))
    fibre = noise(r, s, 2, beta=0.8, fmin=threads / 2, stretch=4.0)
    shape = profile + 0.15 * torch.where(over, fibre[0], fibre[1])
    h = slope_scaled(shape, r.logu(0.15, 0.8))
    c1 = colour(r, "fabric")
    c2 = c1 if r.p(0.5) else colour(r, "fabric")
    base = torch.where(over, c1, c2) * (0.75 + 0.25 * profile) * torch.exp(0.1 * fibre[0])
    rough = r.u(0.75, 1.0) + 0.05 * fibre[1]
    return _layer(base, rough, h)


def _metal_colour(r: _Rng) -> Tensor:
    c = torch.tensor(r.pick(METALS)).view(3, 1, 1)
    return (c * r.u(0.75, 1.0)).clamp(0, 1)  # slightly dulled by oxide/oil films


def fam_metal(r: _Rng, s: int) -> Layer:
    """Bare metal: polished, brushed, hammered, cast, riveted plates or tread plate."""
    kind = r.pick(["polished", "brushed", "brushed", "hammered", "cast", "plates", "tread"])
    c = _metal_colour(r)
    n = noise(r, s, 2, beta=r.u(1.0, 2.0), fmin=2.0)
    rough_base = {"polished": r.u(0.08, 0.25), "brushed": r.u(0.2, 0.5), "hammered": r.u(0.15, 0.45),
                  "cast": r.u(0.4, 0.8), "plates": r.u(0.2, 0.6), "tread": r.u(0.25, 0.6)}[kind]
    rough = rough_base + 0.04 * n[0]
    shape = 0.05 * n[1]
    slope = r.logu(0.005, 0.05)
    if kind == "brushed":
        ang = r.pick([0.0, math.pi / 2])
        streak = noise(r, s, 1, beta=0.6, fmin=4.0, stretch=r.u(30.0, 120.0), angle=ang)[0]
        rough = rough + 0.06 * streak
        shape = shape + 0.3 * streak
    elif kind == "hammered":
        u, v = _uv(s)
        g = r.i(6, 20)
        f1, _, _ = voronoi(r, u, v, g, g, 1.0)
        shape = f1**2
        slope = r.logu(0.05, 0.3)
    elif kind == "cast":
        shape = noise(r, s, 1, beta=r.u(0.8, 1.5), fmin=4.0)[0]
        slope = r.logu(0.05, 0.4)
    elif kind == "plates":
        edge, ids, fu, fv, nn = _brick_layout(r, s, r.i(1, 3), r.pick([1.0, 0.5, 2.0]))
        gap = smoothstep(0.002, 0.006, edge)
        shape = gap + 0.02 * n[1]
        rivet_d = torch.minimum(torch.minimum(fu, 1 - fu), torch.minimum(fv, 1 - fv))
        if r.p(0.6):  # rows of rivets near the plate edges
            u, v = _uv(s)
            per = r.i(8, 24)
            ru, rv = torch.frac(u * per) - 0.5, torch.frac(v * per) - 0.5
            dot = torch.sqrt(ru**2 + rv**2) * per
            shape = shape + 0.5 * (1 - smoothstep(0.0, r.u(0.05, 0.2) * per, dot)) * (rivet_d < 0.08)
        c = per_cell(r, c, ids, nn, 0.08)
        slope = r.logu(0.05, 0.3)
    elif kind == "tread":
        u, v = _uv(s)
        per = r.i(4, 12)
        cu, cv = torch.frac(u * per) - 0.5, torch.frac(v * per) - 0.5
        flip = ((torch.floor(u * per) + torch.floor(v * per)) % 2) * 2 - 1
        a, b = (cu + flip * cv) / math.sqrt(2), (cu - flip * cv) / math.sqrt(2)
        bar = 1 - smoothstep(0.0, 1.0, (a / 0.35) ** 2 + (b / 0.08) ** 2)
        shape = bar + 0.02 * n[1]
        slope = r.logu(0.2, 0.8)
    return _layer(c, rough, slope_scaled(shape, slope), 1.0)


def fam_painted(r: _Rng, s: int) -> Layer:
    """Paint over metal (or over plaster), chipped where a noise mask drops below a threshold."""
    under = fam_metal(r, s) if r.p(0.75) else fam_ground(r, s)
    paint = colour(r, "paint")
    n = noise(r, s, 3, beta=r.u(1.3, 2.2), fmin=r.logu(1.0, 6.0))
    cover = r.u(0.5, 1.0)
    keep = smoothstep(threshold_for(cover) - 0.05, threshold_for(cover) + 0.05, n[0] + 0.0)
    keep = 1.0 - keep if r.p(0.5) else keep
    keep = 1.0 - keep  # keep = 1 where paint remains
    paint_rough = r.u(0.25, 0.75) + 0.04 * n[1]
    thick = r.logu(0.001, 0.01)
    out = {
        "basecolor": mix(under["basecolor"], paint * (1 + 0.05 * n[2]), keep),
        "roughness": mix(under["roughness"], paint_rough, keep),
        "metallic": under["metallic"] * (1 - keep),
        "height": under["height"] * mix(1.0, 0.3, keep) + thick * keep,
    }
    return out


FAMILIES: dict[str, tuple[float, Callable[[_Rng, int], Layer]]] = {
    "ground": (0.2, fam_ground),
    "cells": (0.14, fam_cells),
    "bricks": (0.2, fam_bricks),
    "wood": (0.1, fam_wood),
    "fabric": (0.08, fam_fabric),
    "metal": (0.16, fam_metal),
    "painted": (0.12, fam_painted),
}

# -------------------------------------------------------------------------------------------- overlays


def _streaks(r: _Rng) -> float:
    # Weathering often runs down walls in streaks (rain, rust bleed), so masks are sometimes elongated.
    return r.pick([1.0, 1.0, 3.0, 8.0])


def add_detail(r: _Rng, m: Layer, strength: float = 1.0) -> None:
    """Micro texture that real surfaces nearly always have: fine bumps, albedo grain, mid-scale blotches
    and slight roughness variation (photos of real materials look clean-cut procedural without it)."""
    s = m["height"].shape[-1]
    fine = noise(r, s, 2, beta=r.u(0.5, 1.3), fmin=r.logu(8.0, 32.0))
    blot = noise(r, s, 1, beta=1.8, fmin=r.logu(1.0, 4.0))[0]
    m["height"] = m["height"] + slope_scaled(fine[0], r.logu(0.01, 0.35) * strength)
    grain = r.logu(0.02, 0.3) * strength * fine[1] + r.u(0.0, 0.25) * blot
    m["basecolor"] = m["basecolor"] * torch.exp(grain)
    m["roughness"] = m["roughness"] + r.u(0.0, 0.05) * fine[1] + r.u(0.0, 0.08) * blot


def add_dirt(r: _Rng, m: Layer) -> None:
    """Grime that collects in cavities (height below its local mean) and in noisy patches."""
    s = m["height"].shape[-1]
    h = m["height"]
    cav = blur(h, r.u(0.005, 0.03)) - h
    cav = cav * torch.rsqrt((cav * cav).mean().clamp_min(1e-16))
    n = noise(r, s, 1, beta=r.u(1.2, 2.0), fmin=2.0, stretch=_streaks(r), angle=math.pi / 2)[0]
    t = threshold_for(r.u(0.1, 0.6))
    mask = smoothstep(t - 0.5, t + 0.5, n + r.u(0.0, 1.5) * cav) * r.u(0.4, 1.0)
    m["basecolor"] = mix(m["basecolor"], colour(r, "dirt"), mask)
    m["roughness"] = mix(m["roughness"], torch.full_like(h, r.u(0.8, 1.0)), mask)
    m["metallic"] = m["metallic"] * (1 - mask)


def add_rust(r: _Rng, m: Layer) -> None:
    """Rust patches: orange-brown, rough, bumpy, non-metallic."""
    s = m["height"].shape[-1]
    n = noise(r, s, 3, beta=r.u(1.2, 2.0), fmin=r.logu(1.0, 4.0), stretch=_streaks(r), angle=math.pi / 2)
    t = threshold_for(r.u(0.1, 0.9))
    mask = smoothstep(t - 0.15, t + 0.15, n[0])
    rust = mix(colour(r, "rust"), colour(r, "rust"), smoothstep(-1.5, 1.5, n[1]))
    bump = slope_scaled(n[2] * mask, r.logu(0.05, 0.4))
    m["basecolor"] = mix(m["basecolor"], rust, mask)
    m["roughness"] = mix(m["roughness"], 0.85 + 0.1 * n[1].clamp(-1, 1), mask)
    m["metallic"] = m["metallic"] * (1 - mask)
    m["height"] = m["height"] + bump


def add_scratches(r: _Rng, m: Layer) -> None:
    """Thin straight grooves that change roughness: points along random segments are splatted into the
    tile with wrap-around and blurred to the groove width (cheap: cost grows with total scratch length)."""
    s = m["height"].shape[-1]
    count = r.i(5, 60)
    centre, ang = r.rand(count, 2), r.rand(count) * math.pi
    if r.p(0.6):  # mostly one direction, as on worked surfaces
        ang = ang * 0.15 + r.u(0, math.pi)
    half = r.rand(count) * 0.35 + 0.05
    strength = r.rand(count) * 0.8 + 0.2
    steps = int(2 * 0.4 * s * 2)  # two samples per pixel along the longest segment
    t = torch.linspace(-1.0, 1.0, steps).view(1, -1) * half.view(-1, 1)  # [count, steps]
    x = centre[:, :1] + t * torch.cos(ang).view(-1, 1)
    y = centre[:, 1:] + t * torch.sin(ang).view(-1, 1)
    idx = (torch.floor(y * s).long() % s) * s + torch.floor(x * s).long() % s
    # Each point carries strength x its spacing in pixels, so a blurred line has density `strength` per pixel
    # and a 1D Gaussian cross-section of peak strength / (sqrt(2 pi) sigma_px).
    weight = (strength * 2 * half * s / steps).view(-1, 1).expand(-1, steps)
    img = torch.zeros(s * s).index_add_(0, idx.reshape(-1), weight.reshape(-1))
    sigma_px = r.u(0.4, 1.0)
    line = blur(img.view(s, s), sigma_px / s) * (math.sqrt(2 * math.pi) * sigma_px)
    mask = line.clamp(0, 1)
    width = sigma_px / s
    m["height"] = m["height"] - mask * width * r.u(0.5, 2.0)
    m["roughness"] = m["roughness"] + mask * r.u(-0.15, 0.25)


def add_dents(r: _Rng, m: Layer) -> None:
    s = m["height"].shape[-1]
    d = blobs(r, s, r.i(3, 40), r.logu(2.0, 12.0) / s)
    m["height"] = m["height"] - slope_scaled(d, r.logu(0.02, 0.2))


# -------------------------------------------------------------------------------------------- assembly


def _transform(m: Layer, k: int, flip: bool) -> Layer:
    """Rotate by k quarter turns and maybe mirror: keeps tileability and removes pattern orientation bias."""
    out = {}
    for key, t in m.items():
        t = torch.rot90(t, k, dims=(-2, -1))
        out[key] = torch.flip(t, dims=(-1,)) if flip else t
    return out


def material(seed: int, size: int = 256) -> dict[str, Tensor]:
    """One tileable material [C, S, S] (CPU) from its seed: basecolor (linear), metallic, roughness, height
    (world units).  The generator is left in `material["rng"]` for the photo's augmentation draws."""
    r = _Rng(seed)
    table = {k: w for k, (w, _) in FAMILIES.items()}
    fam = r.weighted(table)
    m = FAMILIES[fam][1](r, size)
    metallic = fam in ("metal", "painted")
    if r.p(0.5 if metallic else 0.9):
        add_detail(r, m, 0.3 if metallic else 1.0)
    if not metallic:  # real albedos skew dark; shift a palette colour up or (more often) down
        m["basecolor"] = m["basecolor"] * r.logu(0.45, 1.15)
    if r.p(0.5 if metallic else 0.12):
        add_rust(r, m)
    if r.p(0.35):
        add_dirt(r, m)
    if r.p(0.5 if metallic else 0.1):
        add_scratches(r, m)
    if r.p(0.25 if metallic else 0.05):
        add_dents(r, m)
    m = _transform(m, r.i(0, 3), r.p(0.5))
    metal = m["metallic"].clamp(0, 1)
    # Dielectric albedo stays in the plausible 0.02-0.9 range; metal F0 may go up to 1.
    base = m["basecolor"].clamp(0.02, 0.9) * (1 - metal) + m["basecolor"].clamp(0.0, 1.0) * metal
    return {
        "basecolor": base,
        "metallic": metal.unsqueeze(0),
        "roughness": m["roughness"].clamp(0.08, 1.0).unsqueeze(0),
        "height": m["height"].unsqueeze(0),
        "rng": r,  # type: ignore[dict-item]
    }


def sample(
    seed: int, size: int = 256, *, fov_deg: float = 45.0, crop: bool = False, augment: bool = True
) -> dict[str, Tensor]:
    """One complete training sample [C, S, S] on the CPU: maps, flash photo and halfway (see `generate`)."""
    m = material(seed, 2 * size if crop else size)
    r: _Rng = m.pop("rng")  # type: ignore[assignment]
    m["normals"] = height_to_normals(m["height"])  # before cropping, so the tile's wrap-around is used
    if crop:
        oy, ox = r.i(0, 2 * size - 1), r.i(0, 2 * size - 1)
        m = {k: torch.roll(t, (-oy, -ox), dims=(-2, -1))[:, :size, :size] for k, t in m.items()}
    base, metal, hgt = m["basecolor"], m["metallic"], m["height"]
    m["diffuse"] = base * (1 - metal)
    m["specular"] = 0.04 * (1 - metal) + base * metal
    m["height"] = (hgt - hgt.min()) / (hgt.max() - hgt.min()).clamp_min(1e-8)
    maps = [m[k].unsqueeze(0) for k in ("diffuse", "specular", "roughness", "normals")]
    radiance = R.render_flash(*maps, fov_deg=fov_deg)[0]
    gain, sigma = r.u(0.7, 1.3), r.logu(0.002, 0.02)
    if augment:
        m["image"] = (R.to_photo(radiance * gain) + sigma * r.randn(3, size, size)).clamp(0, 1)
    else:
        m["image"] = R.to_photo(radiance)
    m["halfway"] = _halfway(size, fov_deg)
    return m


@functools.lru_cache(maxsize=8)
def _halfway(size: int, fov_deg: float) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # cached: must stay an ordinary tensor
        return R.halfway_map(size, size, fov_deg)


def _fill(seeds: list[int], size: int, out: dict[str, Tensor], **kwargs) -> None:
    """Write sample(seeds[b]) into out[key][b] for every b.

    Per-sample tensors are small (S x S) and stay in cache, whereas batched full-size passes are memory-bound
    here, and on small tensors torch's intra-op threads cost more than they give (about 7x slower per op with
    2 threads on 256^2).  So samples run one per thread of a small pool, with torch limited to one intra-op
    thread meanwhile (restored afterwards), and each writes its slice of the preallocated batch itself, which
    also spreads the (slow, in a VM) first touch of the fresh output memory over the threads.
    """

    def work(b: int) -> None:
        item = sample(seeds[b], size, **kwargs)
        for k, t in out.items():
            t[b].copy_(item[k])

    # Always one intra-op thread, even for a single sample: reductions then run in the same order whatever the
    # batch, so a seed gives bit-identical maps in any batch.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if threads <= 1 or len(seeds) == 1:
            for b in range(len(seeds)):
                work(b)
        else:
            with ThreadPoolExecutor(max_workers=min(threads, len(seeds))) as pool:
                list(pool.map(work, range(len(seeds))))
    finally:
        torch.set_num_threads(threads)


CHANNELS = {"diffuse": 3, "specular": 3, "roughness": 1, "normals": 3, "basecolor": 3, "metallic": 1,
            "height": 1, "image": 3, "halfway": 3}


def generate(
    seeds: Sequence[int] | int,
    size: int = 256,
    *,
    device: torch.device | str = "cpu",
    fov_deg: float = 45.0,
    crop: bool = False,
    augment: bool = True,
) -> dict[str, Tensor]:
    """A batch of procedural materials [B, C, size, size] with their flash photos.

    Keys: diffuse, specular, basecolor (linear RGB), roughness, metallic, height (relative, [0, 1] per
    sample), normals (OpenGL unit vectors), image (the flash photo as a camera stores it: sRGB-encoded
    clip(L, 0, 1) of `render.render_flash` at this fov), halfway (raw unit vectors, conventions.md 3).

    crop: make each material at twice the size and keep a random size x size window, so the maps are no
    longer tileable and the highlight lands on an arbitrary part of the material (the render is still at
    the patch geometry).  augment: real phone photos vary in exposure and noise, so the photo (only) gets a
    random exposure gain in [0.7, 1.3] on the linear radiance and Gaussian noise (sigma 0.002-0.02) after
    encoding; maps are never augmented.  All draws come from the sample's own seed.
    """
    seeds = [seeds] if isinstance(seeds, int) else [int(sd) for sd in seeds]
    out = {k: torch.empty(len(seeds), CHANNELS[k], size, size) for k in CHANNELS}
    _fill(seeds, size, out, fov_deg=fov_deg, crop=crop, augment=augment)
    return {k: t.to(device) for k, t in out.items()}


def material_stream(
    seed0: int, size: int = 256, batch_size: int = 8, **kwargs
) -> Iterator[dict[str, Tensor]]:
    """Endless batches for training: seeds seed0, seed0 + 1, ... in order (kwargs go to `generate`)."""
    start = seed0
    while True:
        yield generate(range(start, start + batch_size), size, **kwargs)
        start += batch_size
