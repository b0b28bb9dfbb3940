"""Procedural 3D scenes with exact intrinsic buffers: training and evaluation data for intrinsics and shading.

A scene is a room corner (ground plane, back wall, sometimes a side wall) holding 2-5 spheres and boxes, each
with its own procedural material (`materials.generate` maps looked up by planar / box-face / triplanar
projection, or a constant colour modulated by noise), lit by 1-2 coloured point lights plus a hemispherical
ambient term, seen by a pinhole camera. One ray per pixel (no anti-aliasing) so that every buffer is exact at
every pixel; cast shadows come from shadow rays against the analytic primitives (`graphics.scene_trace`). The scene
description (`Surface`, `Light`, `Scene`) and the studio rig are `graphics.scene`'s; this module samples and renders.

Light transport, per pixel with shading normal n, view v, lights k at distance d_k with visibility V_k:
    S        = sum_k V_k I_k max(n.l_k, 0) / (pi d_k^2) + E_amb(n) / pi          (diffuse shading, RGB)
    residual = sum_k V_k I_k max(n.l_k, 0) / d_k^2 f_spec(l_k, v) + F(n.v) A_spec  (non-diffuse light)
    image    = albedo * S + residual
with f_spec the GGX/Smith/Schlick specular lobe of `graphics.render.brdf` (docs/conventions.md section 3) and albedo the
diffuse reflectance basecolor (1 - metallic) (glTF). An automatic exposure scales S and residual together.

Buffers (docs/conventions.md section 1), value domain, [B, C, H, W]: image (linear radiance), albedo (= diffuse),
diffuseshading, residual, normals (camera space: +X right, +Y up, +Z towards the viewer), depth (camera z
distance, normalised per image to [0, 1], larger is farther), roughness, metallic, basecolor, diffuse, specular.

Determinism: a scene (layout, materials, lights) is drawn only from `torch.Generator().manual_seed(seed)`, so the
same seed gives the same scene in any batch. Training draws seeds below EVAL_SEED0, evaluation at or above it.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from teamwork_cli.graphics import scene_trace as T
from teamwork_cli.graphics.scene import (
    STUDIO_BOUNCE,
    STUDIO_KEY,
    STUDIO_KEY_POWER,
    STUDIO_SKY,
    Light,
    Scene,
    Surface,
    rot_x,
    rot_y,
)
from teamwork_cli.procedural import materials as P
from teamwork_cli.procedural import noise as N

# Held-out scenes for benchmarks start here; `training.task_data` draws training seeds below it.
EVAL_SEED0 = 10_000_000
TEXTURE_SIZE = 128


# ----------------------------------------------------------------------------------------------- sampling


def _colour(r: N.Rng, sat: tuple[float, float], val: tuple[float, float]) -> Tensor:
    return torch.tensor(colorsys.hsv_to_rgb(r.u(), r.u(*sat), r.u(*val)), dtype=torch.float32)


def _plain_material(r: N.Rng) -> dict[str, Tensor]:
    """A constant colour and roughness modulated by tileable noise (cheap, and unlike the procedural families)."""
    s = 64
    noise = N.noise(r, s, 2, beta=r.u(1.2, 2.2), fmin=r.u(1.0, 3.0))
    base = (_colour(r, (0.0, 0.8), (0.15, 0.9)) ** 2.2).view(3, 1, 1) * (1 + r.u(0.0, 0.25) * noise[0]).clamp(0.5, 1.5)
    metal = 1.0 if r.p(0.12) else 0.0
    rough = (r.u(0.15, 0.9) + r.u(0.0, 0.08) * noise[1]).clamp(0.05, 1.0)
    normals = torch.zeros(3, s, s)
    normals[2] = 1
    return {
        "basecolor": base.clamp(0.02, 0.95),
        "metallic": torch.full((1, s, s), metal),
        "roughness": rough.unsqueeze(0),
        "normals": normals,
    }


def _material(r: N.Rng, seed: int, k: int, dielectric: float = 0.0) -> dict[str, Tensor]:
    """Surface k's material; with probability `dielectric` a procedural metal is repainted as a dielectric."""
    if r.p(0.35):
        return _plain_material(r)
    # k < 8, so material seeds of training scenes (< EVAL_SEED0) and held-out ones never meet.
    maps = P.generate([seed * 8 + k], TEXTURE_SIZE, augment=False)
    mat = {key: maps[key][0] for key in ("basecolor", "metallic", "roughness", "normals")}
    if r.p(dielectric):  # rooms are mostly not made of bare metal
        mat["metallic"] = torch.zeros_like(mat["metallic"])
    return mat


LIGHTINGS = ("random", "studio")


def sample_scene(seed: int, lighting: str = "random") -> Scene:
    """The scene of a seed: camera at height 1-2 looking at -z, tilted down; objects rest on the ground y = 0.

    lighting: "random" (1-2 coloured point lights, random ambient and exposure) or "studio" (`graphics.scene.STUDIO_*`;
    layout and materials are those of the same seed under random lighting)."""
    if lighting not in LIGHTINGS:
        raise ValueError(f"lighting must be one of {', '.join(LIGHTINGS)}; got {lighting!r}")
    r = N.Rng(seed)
    fov = r.u(40.0, 60.0)
    pitch = -math.radians(r.u(5.0, 20.0))
    rotation = rot_y(math.radians(r.u(-12.0, 12.0))) @ rot_x(pitch)
    camera = torch.tensor([r.u(-0.3, 0.3), r.u(1.0, 2.0), 0.0])
    wall_z = -r.u(6.0, 9.0)
    k = 0
    surfaces = [
        Surface(
            "plane",
            {"point": torch.zeros(3), "normal": torch.tensor([0.0, 1.0, 0.0])},
            _material(r, seed, k, 0.75),
            tile=r.u(0.8, 3.0),
        )
    ]
    k += 1
    back = {"point": torch.tensor([0.0, 0.0, wall_z]), "normal": torch.tensor([0.0, 0.0, 1.0])}
    surfaces.append(Surface("plane", back, _material(r, seed, k, 0.75), tile=r.u(0.8, 3.0)))
    if r.p(0.5):
        side = r.pick((-1.0, 1.0))
        k += 1
        surfaces.append(
            Surface(
                "plane",
                {"point": torch.tensor([side * r.u(2.5, 4.0), 0.0, 0.0]), "normal": torch.tensor([-side, 0.0, 0.0])},
                _material(r, seed, k, 0.75),
                tile=r.u(0.8, 3.0),
            )
        )
    placed: list[tuple[float, float, float]] = []  # (x, z, footprint radius)
    for _ in range(r.i(2, 5)):
        for _attempt in range(12):  # rejection sampling of non-overlapping footprints
            z = r.u(-5.5, -2.5)
            x = r.u(-0.55, 0.55) * -z * math.tan(math.radians(fov) / 2) * 1.6
            size = r.u(0.25, 0.75)
            if all((x - px) ** 2 + (z - pz) ** 2 > (size * 1.45 + pr) ** 2 for px, pz, pr in placed):
                break
        else:
            continue
        placed.append((x, z, size * 1.45))
        k += 1
        if r.p(0.5):
            params = {"center": torch.tensor([x, size, z]), "radius": torch.tensor(size)}
            surfaces.append(Surface("sphere", params, _material(r, seed, k), tile=r.u(0.5, 1.5)))
        else:
            half = torch.tensor([size * r.u(0.6, 1.0), size * r.u(0.5, 1.4), size * r.u(0.6, 1.0)])
            params = {
                "center": torch.tensor([x, float(half[1]), z]),
                "half": half,
                "rotation": rot_y(r.u(0.0, math.pi / 2)),
            }
            surfaces.append(Surface("box", params, _material(r, seed, k), tile=r.u(0.5, 1.5)))
    lights = []
    for i in range(1 if r.p(0.5) else 2):
        pos = torch.tensor([r.u(-3.0, 3.0), r.u(2.5, 4.5), r.u(-5.0, -0.5)])
        tint = _colour(r, (0.0, 0.25), (1.0, 1.0))
        lights.append(Light(pos, tint * (10.0 if i == 0 else r.u(2.0, 7.0))))
    # Ambient well below the key light's irradiance (~0.5 at the objects), so cast shadows stay visible.
    sky = _colour(r, (0.0, 0.4), (1.0, 1.0)) * r.logu(0.03, 0.3)
    bounce = sky * r.u(0.2, 0.6)
    exposure = r.u(0.7, 1.0)
    if lighting == "studio":
        lights = [Light(camera + rotation @ torch.tensor(STUDIO_KEY), torch.full((3,), STUDIO_KEY_POWER))]
        sky, bounce = torch.full((3,), STUDIO_SKY), torch.full((3,), STUDIO_SKY * STUDIO_BOUNCE)
        return Scene(camera, rotation, fov, surfaces, lights, sky, bounce, gain=1.0)
    return Scene(camera, rotation, fov, surfaces, lights, sky, bounce, exposure=exposure)


# ---------------------------------------------------------------------------------------------- rendering


def _rays(scene: Scene, h: int, w: int) -> Tensor:
    """World directions [H*W, 3] through pixel centres; the field of view spans the image width."""
    t = math.tan(math.radians(scene.fov_deg) / 2)
    x = (-1.0 + (2.0 * torch.arange(w) + 1.0) / w) * t
    y = (1.0 - (2.0 * torch.arange(h) + 1.0) / h) * t * h / w
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    d = torch.stack([xx, yy, -torch.ones_like(xx)], -1).reshape(-1, 3)
    return torch.nn.functional.normalize(d @ scene.rotation.T, dim=-1)


def render_scene(scene: Scene, size: int | tuple[int, int] = 128, *, shadows: bool = True) -> dict[str, Tensor]:
    """All buffers of one scene, [C, H, W] each (see the module docstring). shadows=False: local shading only."""
    h, w = (size, size) if isinstance(size, int) else size
    d = _rays(scene, h, w)
    hit = T.first_hit(scene.surfaces, scene.camera, d)
    pos = scene.camera + hit.t.unsqueeze(-1) * d
    geo, shading, mat = T.surface_attributes(scene.surfaces, hit.index, pos)
    view = -d
    albedo = mat["basecolor"] * (1 - mat["metallic"])
    specular = 0.04 * (1 - mat["metallic"]) + mat["basecolor"] * mat["metallic"]
    s_light, residual = T.direct_light(scene, pos, geo, shading, view, specular, mat["roughness"], shadows)
    # Hemispherical ambient (sky above, floor bounce below): E(n) = sky (1 + n_y) / 2 + bounce (1 - n_y) / 2.
    ny = shading[:, 1:2]
    ambient = scene.sky * (1 + ny) / 2 + scene.bounce * (1 - ny) / 2
    diffuse_shading = s_light + ambient / math.pi
    n_v = (shading * view).sum(-1, keepdim=True).clamp(0, 1)
    fresnel = specular + (1 - specular) * (1 - n_v) ** 5  # Schlick: the environment seen in the reflection
    residual = residual + fresnel * (scene.sky + scene.bounce) / (2 * math.pi)
    image = albedo * diffuse_shading + residual
    lum = image @ torch.tensor([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance
    k = scene.exposure / torch.quantile(lum, 0.97).clamp_min(1e-6) if scene.gain is None else scene.gain
    diffuse_shading, residual = diffuse_shading * k, residual * k
    image = albedo * diffuse_shading + residual
    to_camera = scene.rotation  # row vectors: v_cam = v_world @ R, i.e. R^T v (R is orthonormal)
    depth = -((pos - scene.camera) @ to_camera)[:, 2]
    depth = (depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-8)
    out = {
        "image": image,
        "albedo": albedo,
        "diffuse": albedo,
        "specular": specular,
        "basecolor": mat["basecolor"],
        "diffuseshading": diffuse_shading,
        "residual": residual,
        "normals": shading @ to_camera,
        "depth": depth.unsqueeze(-1),
        "roughness": mat["roughness"],
        "metallic": mat["metallic"],
    }
    return {key: v.reshape(h, w, -1).permute(2, 0, 1).contiguous() for key, v in out.items()}


def generate(
    seeds: Sequence[int] | int, size: int | tuple[int, int] = 128, *, shadows: bool = True, lighting: str = "random"
) -> dict[str, Tensor]:
    """Buffers [B, C, H, W] of the scenes of `seeds`, plus `photo`: what a camera stores (sRGB of clip(image))."""
    from teamwork_cli.graphics.render import to_photo

    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one scene")
    scenes = [render_scene(sample_scene(int(s), lighting), size, shadows=shadows) for s in seeds]
    out = {k: torch.stack([sc[k] for sc in scenes]) for k in scenes[0]}
    out["photo"] = to_photo(out["image"])
    return out
