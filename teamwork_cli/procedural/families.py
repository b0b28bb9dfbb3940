"""Material families and weathering layers of the procedural generator.

A family (`FAMILIES`: stone/concrete, cells/cobbles, bricks/tiles, wood, fabric, metal, painted metal, each with
its sampling weight) draws one tileable `Layer` from an `Rng`: basecolor, roughness, metallic and a height field
in world units. The `add_*` overlays then weather a layer in place (micro detail, dirt in cavities, rust,
scratches, dents). `materials.material` picks the family and the overlays; the patterns come from `noise`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from teamwork_cli.procedural.noise import (
    METALS,
    Rng,
    blobs,
    blur,
    bricks,
    colour,
    mix,
    noise,
    per_cell,
    slope_scaled,
    smoothstep,
    threshold_for,
    uv,
    vary,
    voronoi,
    warp,
)

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


def _dielectric_roughness(r: Rng, lo: float = 0.65, glossy: float = 0.1) -> float:
    # Real stone, concrete, brick and plaster are mostly matte; a few are polished or sealed.
    return r.u(0.12, 0.45) if r.p(glossy) else r.u(lo, 1.0)


def fam_ground(r: Rng, s: int) -> Layer:
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


def fam_cells(r: Rng, s: int) -> Layer:
    """Cobblestones, flagstones, gravel, cracked earth: warped periodic Voronoi cells with gaps."""
    kind = r.pick(["cobble", "flag", "gravel", "cracked"])
    g = {"cobble": r.i(3, 14), "flag": r.i(3, 6), "gravel": r.i(10, 24), "cracked": r.i(3, 9)}[kind]
    gx = g
    gy = max(3, round(g * r.u(0.7, 1.4)))
    u, v = uv(s)
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


def _brick_layout(r: Rng, s: int, rows: int, aspect: float) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    cols = max(1, round(rows / aspect))
    bond = r.pick(["half", "half", "stack", "random", "third"])
    idx = torch.arange(rows, dtype=torch.float32)
    offsets = {
        "half": (idx % 2) * 0.5,
        "stack": torch.zeros(rows),
        "random": r.rand(rows),
        "third": (idx % 3) / 3.0,
    }[bond]
    u, v = uv(s)
    edge, ids, fu, fv = bricks(u, v, rows, cols, offsets)
    return edge, ids, fu, fv, rows * cols


def fam_bricks(r: Rng, s: int) -> Layer:
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


def fam_wood(r: Rng, s: int) -> Layer:
    """Wood planks: growth rings along the plank, warped by low-frequency noise, plus fine grain streaks."""
    rows = r.pick([1, 2, 4, 6, 8, 12])
    planks = rows > 1
    u, v = uv(s)
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


def fam_fabric(r: Rng, s: int) -> Layer:
    """Woven cloth: plain, twill or basket weave of two thread colours with fibre noise."""
    threads = 2 * r.i(8, 48)
    k = r.pick([2, 2, 3, 4])
    u, v = uv(s)
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


def _metal_colour(r: Rng) -> Tensor:
    c = torch.tensor(r.pick(METALS)).view(3, 1, 1)
    return (c * r.u(0.75, 1.0)).clamp(0, 1)  # slightly dulled by oxide/oil films


def fam_metal(r: Rng, s: int) -> Layer:
    """Bare metal: polished, brushed, hammered, cast, riveted plates or tread plate."""
    kind = r.pick(["polished", "brushed", "brushed", "hammered", "cast", "plates", "tread"])
    c = _metal_colour(r)
    n = noise(r, s, 2, beta=r.u(1.0, 2.0), fmin=2.0)
    rough_base = {
        "polished": r.u(0.08, 0.25),
        "brushed": r.u(0.2, 0.5),
        "hammered": r.u(0.15, 0.45),
        "cast": r.u(0.4, 0.8),
        "plates": r.u(0.2, 0.6),
        "tread": r.u(0.25, 0.6),
    }[kind]
    rough = rough_base + 0.04 * n[0]
    shape = 0.05 * n[1]
    slope = r.logu(0.005, 0.05)
    if kind == "brushed":
        ang = r.pick([0.0, math.pi / 2])
        streak = noise(r, s, 1, beta=0.6, fmin=4.0, stretch=r.u(30.0, 120.0), angle=ang)[0]
        rough = rough + 0.06 * streak
        shape = shape + 0.3 * streak
    elif kind == "hammered":
        u, v = uv(s)
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
            u, v = uv(s)
            per = r.i(8, 24)
            ru, rv = torch.frac(u * per) - 0.5, torch.frac(v * per) - 0.5
            dot = torch.sqrt(ru**2 + rv**2) * per
            shape = shape + 0.5 * (1 - smoothstep(0.0, r.u(0.05, 0.2) * per, dot)) * (rivet_d < 0.08)
        c = per_cell(r, c, ids, nn, 0.08)
        slope = r.logu(0.05, 0.3)
    elif kind == "tread":
        u, v = uv(s)
        per = r.i(4, 12)
        cu, cv = torch.frac(u * per) - 0.5, torch.frac(v * per) - 0.5
        flip = ((torch.floor(u * per) + torch.floor(v * per)) % 2) * 2 - 1
        a, b = (cu + flip * cv) / math.sqrt(2), (cu - flip * cv) / math.sqrt(2)
        bar = 1 - smoothstep(0.0, 1.0, (a / 0.35) ** 2 + (b / 0.08) ** 2)
        shape = bar + 0.02 * n[1]
        slope = r.logu(0.2, 0.8)
    return _layer(c, rough, slope_scaled(shape, slope), 1.0)


def fam_painted(r: Rng, s: int) -> Layer:
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


FAMILIES: dict[str, tuple[float, Callable[[Rng, int], Layer]]] = {
    "ground": (0.2, fam_ground),
    "cells": (0.14, fam_cells),
    "bricks": (0.2, fam_bricks),
    "wood": (0.1, fam_wood),
    "fabric": (0.08, fam_fabric),
    "metal": (0.16, fam_metal),
    "painted": (0.12, fam_painted),
}

# -------------------------------------------------------------------------------------------- overlays


def _streaks(r: Rng) -> float:
    # Weathering often runs down walls in streaks (rain, rust bleed), so masks are sometimes elongated.
    return r.pick([1.0, 1.0, 3.0, 8.0])


def add_detail(r: Rng, m: Layer, strength: float = 1.0) -> None:
    """Micro texture that real surfaces nearly always have: fine bumps, albedo grain, mid-scale blotches
    and slight roughness variation (photos of real materials look clean-cut procedural without it)."""
    s = m["height"].shape[-1]
    fine = noise(r, s, 2, beta=r.u(0.5, 1.3), fmin=r.logu(8.0, 32.0))
    blot = noise(r, s, 1, beta=1.8, fmin=r.logu(1.0, 4.0))[0]
    m["height"] = m["height"] + slope_scaled(fine[0], r.logu(0.01, 0.35) * strength)
    grain = r.logu(0.02, 0.3) * strength * fine[1] + r.u(0.0, 0.25) * blot
    m["basecolor"] = m["basecolor"] * torch.exp(grain)
    m["roughness"] = m["roughness"] + r.u(0.0, 0.05) * fine[1] + r.u(0.0, 0.08) * blot


def add_dirt(r: Rng, m: Layer) -> None:
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


def add_rust(r: Rng, m: Layer) -> None:
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


def add_scratches(r: Rng, m: Layer) -> None:
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


def add_dents(r: Rng, m: Layer) -> None:
    s = m["height"].shape[-1]
    d = blobs(r, s, r.i(3, 40), r.logu(2.0, 12.0) / s)
    m["height"] = m["height"] - slope_scaled(d, r.logu(0.02, 0.2))
