"""Procedural SVBRDF generator: the materials the embedded model trains on (`procedural.scenes` objects wear them too).

Each material is drawn from one *family* (stone/concrete, cells/cobbles, bricks/tiles, wood, fabric, metal,
painted metal) with randomised feature scale, palette, roughness and bump strength, and then optionally
weathered by overlays (dirt in cavities, rust, scratches, dents).  Every map is tileable: noise is filtered
white noise on the FFT's periodic lattice, and the cell/brick/weave patterns are laid out on integer lattices
with wrap-around indexing.  This module assembles a material (`material`), its training sample with the flash
photo (`sample`) and batches of them (`generate`, `material_stream`); the families and overlays live in
`families`, the random source, fields and colours they are built from in `noise`.

Determinism: sample k of a batch is made only from `torch.Generator().manual_seed(seeds[k])`, one sample at a
time on the CPU, so the same seed gives the same material whatever batch it is in (for a given size).

Maps follow docs/conventions.md section 1 (value domain): basecolor/diffuse/specular linear RGB, metallic and
roughness in [0, 1], normals OpenGL unit vectors, and diffuse = basecolor (1 - m), specular = 0.04 (1 - m)
+ basecolor m (glTF metal-roughness).  `height` is relative, normalised per sample to [0, 1].
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from teamwork_cli.graphics import render as R
from teamwork_cli.procedural.families import FAMILIES, Layer, add_dents, add_detail, add_dirt, add_rust, add_scratches
from teamwork_cli.procedural.noise import Rng, height_to_normals

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
    r = Rng(seed)
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
    r: Rng = m.pop("rng")  # type: ignore[assignment]
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


CHANNELS = {
    "diffuse": 3,
    "specular": 3,
    "roughness": 1,
    "normals": 3,
    "basecolor": 3,
    "metallic": 1,
    "height": 1,
    "image": 3,
    "halfway": 3,
}


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
    clip(L, 0, 1) of `graphics.render.render_flash` at this fov), halfway (raw unit vectors, docs/conventions.md 3).

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


def material_stream(seed0: int, size: int = 256, batch_size: int = 8, **kwargs) -> Iterator[dict[str, Tensor]]:
    """Endless batches for training: seeds seed0, seed0 + 1, ... in order (kwargs go to `generate`)."""
    start = seed0
    while True:
        yield generate(range(start, start + batch_size), size, **kwargs)
        start += batch_size
