"""Training sources for the intrinsics, shade, inpaint and synthesize teams (`teamwork finetune --data
procedural:<kind>`), and the random inpainting masks that the benchmark shares.

A source returns channel -> [N, C, S, S] in [0, 1] file encoding, like `finetune.BatchSource`; a key may also
name one teammate (`image.in`) when an input must differ from the output of the same channel (inpainting's
blanked input). Training seeds are drawn below `procedural.scenes.EVAL_SEED0`; benchmarks use seeds at or above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from teamwork_cli.core.conventions import inverse_shading
from teamwork_cli.core.encoding import encode
from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.procedural import scenes
from teamwork_cli.procedural.noise import blur

Source = Callable[[int, torch.Generator], dict[str, Tensor]]
SCENE_CHANNELS = (
    "image",
    "albedo",
    "diffuse",
    "specular",
    "basecolor",
    "diffuseshading",
    "inverseshading",
    "residual",
    "normals",
    "depth",
    "roughness",
    "metallic",
)
NEUTRAL_P = 0.3  # how often an optional shading buffer is replaced by its neutral value (tasks.shade)


def _check(kind: str, layout: TeamLayout, known: set[str]) -> set[str]:
    wanted = {t.channel for t in layout.teammates}
    if not wanted <= known:
        raise ValueError(
            f"procedural:{kind} makes {', '.join(sorted(known))}; the team also needs "
            f"{', '.join(sorted(wanted - known))}"
        )
    return wanted


def _train_seeds(n: int, g: torch.Generator) -> list[int]:
    return torch.randint(0, scenes.EVAL_SEED0, (n,), generator=g).tolist()


def scene_batch(
    seeds: list[int], size: int, channels: set[str] | None = None, lighting: str = "random"
) -> dict[str, Tensor]:
    """Scene buffers in file encoding: the image as a camera stores it, shading through its bounded picture."""
    buf = scenes.generate(seeds, size, lighting=lighting)
    buf["inverseshading"] = inverse_shading(buf["diffuseshading"])
    keys = SCENE_CHANNELS if channels is None else [c for c in SCENE_CHANNELS if c in channels]
    return {c: buf["photo"] if c == "image" else encode(c, buf[c]) for c in keys}


def scene_source(layout: TeamLayout, size: int) -> Source:
    """procedural:scenes, for intrinsics (image.in -> intrinsic channels) and shade (buffers -> image.out)."""
    from teamwork_cli.graphics.buffers import DERIVED, OPTIONAL, REQUIRED, neutral, with_deferred

    wanted = _check("scenes", layout, {*SCENE_CHANNELS, DERIVED})
    names = set(layout.names)
    deferred = f"{DERIVED}.in" in names
    if deferred:  # computed from the buffers below, after the optional ones are dropped
        wanted = (wanted - {DERIVED}) | set(REQUIRED) | set(OPTIONAL)
    # Only-input optional buffers are sometimes unknown at inference (tasks.shade gives them neutral values).
    optional = [c for c in OPTIONAL if f"{c}.in" in names and f"{c}.out" not in names]
    noisy_photo = "image.in" in names and "image.out" not in names
    # A shading team (image out, not in) learns the studio rig: its input buffers carry no lighting.
    lighting = "studio" if "image.out" in names and "image.in" not in names else "random"

    def draw(n: int, g: torch.Generator) -> dict[str, Tensor]:
        data = scene_batch(_train_seeds(n, g), size, wanted, lighting)
        if noisy_photo:  # real photos carry sensor noise (as procedural.materials.generate's augmentation)
            sigma = torch.exp(torch.empty(n, 1, 1, 1).uniform_(math.log(0.002), math.log(0.02), generator=g))
            data["image"] = (data["image"] + sigma * torch.randn(data["image"].shape, generator=g)).clamp(0, 1)
        for c in optional:
            drop = (torch.rand(n, generator=g) < NEUTRAL_P).view(n, 1, 1, 1)
            data[c] = torch.where(drop, neutral(c, n, size, size), data[c])
        if deferred:  # buffers the team does not take are neutral here, as `tasks.shade.shade` makes them
            data[DERIVED] = with_deferred(
                {c: data[c] if f"{c}.in" in names else neutral(c, n, size, size) for c in (*REQUIRED, *OPTIONAL)}
            )
        return data

    return draw


# ------------------------------------------------------------------------------------------------- masks


def _segment_distance(px: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance of points px [..., 2] to the segment a-b."""
    ab = b - a
    t = (((px - a) * ab).sum(-1) / (ab * ab).sum().clamp_min(1e-12)).clamp(0, 1)
    return (px - (a + t.unsqueeze(-1) * ab)).norm(dim=-1)


def random_mask(size: int, g: torch.Generator) -> Tensor:
    """One binary mask [1, S, S] (1 = fill): brush strokes, blobs, rectangles or a union of two kinds, covering
    roughly 3-50% of the image (free-form masks as in Yu et al. 2019, "Free-Form Image Inpainting with Gated
    Convolution", plus the blobs and boxes users draw)."""
    u = lambda a, b: a + (b - a) * float(torch.rand((), generator=g))  # noqa: E731
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    px = torch.stack([xx, yy], -1)
    kinds = torch.randperm(3, generator=g)[: 1 if u(0, 1) < 0.7 else 2].tolist()
    mask = torch.zeros(size, size, dtype=torch.bool)
    for kind in kinds:
        if kind == 0:  # strokes: random polylines of a random brush width
            for _ in range(int(u(1, 4))):
                width = u(0.01, 0.06)
                p = torch.rand(2, generator=g)
                for _ in range(int(u(2, 7))):
                    angle, step = u(0, 2 * math.pi), u(0.05, 0.3)
                    q = (p + step * torch.tensor([math.cos(angle), math.sin(angle)])).clamp(0, 1)
                    mask |= _segment_distance(px, p, q) < width
                    p = q
        elif kind == 1:  # blobs: a smooth random field above the level that leaves `coverage` of the pixels
            field = blur(torch.randn(size, size, generator=g), u(0.03, 0.12))
            mask |= field > torch.quantile(field.flatten(), 1 - u(0.05, 0.35))
        else:  # rectangles
            for _ in range(int(u(1, 3))):
                w, h = u(0.1, 0.5), u(0.1, 0.5)
                x0, y0 = u(0, 1 - w), u(0, 1 - h)
                mask |= (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
    if not mask.any():
        mask[size // 4 : size // 2, size // 4 : size // 2] = True
    return mask.float().unsqueeze(0)


def random_masks(n: int, size: int, g: torch.Generator) -> Tensor:
    return torch.stack([random_mask(size, g) for _ in range(n)])


# --------------------------------------------------------------------------------------- inpaint, synthesize


def inpaint_source(
    layout: TeamLayout, size: int, pool: Callable[[], dict[str, Tensor]], hole_fill: str = "grey"
) -> Source:
    """procedural:inpaint: a channel that is both X.in and X.out gets X.in blanked under a random mask (the hole
    mid grey, or its harmonic fill: `graphics.holefill.blank`).

    Images (preset inpaint) are scene photos and material flash photos, half and half; materials (preset
    inpaint-material) are views of the procedural material pool.
    """
    from teamwork_cli.graphics.holefill import blank
    from teamwork_cli.training.data import encoded_views

    material_channels = {"image", "halfway", "diffuse", "specular", "roughness", "normals"}
    wanted = _check("inpaint", layout, material_channels | {"mask"})
    if "mask" not in wanted:
        raise ValueError("procedural:inpaint needs a team with mask.in (preset inpaint or inpaint-material)")
    filled = [t.channel for t in layout.outputs if layout.has(f"{t.channel}.in")]
    image_only = wanted - {"mask"} == {"image"}

    def draw(n: int, g: torch.Generator) -> dict[str, Tensor]:
        data = {k: v for k, v in encoded_views(pool(), n, size, g).items() if k in wanted}
        if image_only:  # half of the images are scene photos instead of material close-ups
            k = int(torch.randint(0, n + 1, (), generator=g))
            if k:
                data["image"][:k] = scene_batch(_train_seeds(k, g), size, {"image"})["image"]
        data["mask"] = random_masks(n, size, g)
        for c in filled:
            data[f"{c}.in"] = blank(data[c], data["mask"], hole_fill)
        return data

    return draw


def synthesize_source(layout: TeamLayout, size: int, pool: Callable[[], dict[str, Tensor]]) -> Source:
    """procedural:synthesize: views of pool materials with their exact flash render (no photo augmentation)."""
    from teamwork_cli.training.data import encoded_views

    wanted = _check("synthesize", layout, {"image", "halfway", "diffuse", "specular", "roughness", "normals"})
    return lambda n, g: {k: v for k, v in encoded_views(pool(), n, size, g, augment=False).items() if k in wanted}
