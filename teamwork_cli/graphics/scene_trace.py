"""Ray casting of a `scene.Scene`: analytic ray-primitive hits, surface attributes, and shadowed point lights.

All rays of an image at once ([P, 3] tensors), one loop iteration per primitive. Intersections are the
textbook ones (e.g. Shirley & Marschner, "Fundamentals of Computer Graphics", ch. 4; the box is the slab test of
Kay & Kajiya 1986 in the box's own frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.graphics import render as R
from teamwork_cli.graphics.scene import Scene, Surface

T_MIN = 1e-4  # hits closer than this along a ray are the surface the ray starts on
SHADOW_OFFSET = 1e-3  # shadow rays start this far off the surface, along the geometric normal


@dataclass
class Hit:
    t: Tensor  # [P] distance along each ray
    index: Tensor  # [P] long, the surface hit


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


def intersect(s: Surface, o: Tensor, d: Tensor) -> Tensor:
    """Nearest t > T_MIN of the rays o + t d (unit d [P, 3], o [3] or [P, 3]) with one surface; inf if none."""
    inf = torch.full(d.shape[:1], math.inf)
    if s.kind == "plane":
        n = s.params["normal"]
        denom = d @ n
        t = ((s.params["point"] - o) @ n) / torch.where(denom.abs() > 1e-9, denom, torch.full_like(denom, 1e-9))
        return torch.where((denom.abs() > 1e-9) & (t > T_MIN), t, inf)
    if s.kind == "sphere":
        oc = o - s.params["center"]
        b = _dot(oc.expand_as(d), d)
        c = _dot(oc, oc) - s.params["radius"] ** 2
        disc = b * b - c
        root = disc.clamp_min(0).sqrt()
        t0, t1 = -b - root, -b + root
        t = torch.where(t0 > T_MIN, t0, torch.where(t1 > T_MIN, t1, inf))
        return torch.where(disc >= 0, t, inf)
    if s.kind == "box":
        rot, half = s.params["rotation"], s.params["half"]
        lo = (o - s.params["center"]) @ rot  # the box's frame: row vectors times the local-to-world rotation
        ld = d @ rot
        ld = torch.where(ld.abs() < 1e-12, torch.full_like(ld, 1e-12), ld)
        t1, t2 = (-half - lo) / ld, (half - lo) / ld
        near = torch.minimum(t1, t2).amax(-1)
        far = torch.maximum(t1, t2).amin(-1)
        t = torch.where(near > T_MIN, near, far)
        return torch.where((far >= near) & (t > T_MIN), t, inf)
    raise ValueError(f"surface kind must be one of plane, sphere, box; got {s.kind!r}")


def first_hit(surfaces: list[Surface], o: Tensor, d: Tensor) -> Hit:
    best = torch.full(d.shape[:1], math.inf)
    index = torch.zeros(d.shape[:1], dtype=torch.long)
    for k, s in enumerate(surfaces):
        t = intersect(s, o, d)
        closer = t < best
        best = torch.where(closer, t, best)
        index = torch.where(closer, k, index)
    if torch.isinf(best).any():
        raise ValueError("some camera rays miss every surface; a scene must enclose the camera's view (e.g. a wall)")
    return Hit(best, index)


def occluded(surfaces: list[Surface], o: Tensor, d: Tensor, dist: Tensor) -> Tensor:
    """Whether anything lies between o and o + dist d (shadow rays)."""
    hit = torch.zeros(d.shape[:1], dtype=torch.bool)
    for s in surfaces:
        hit |= intersect(s, o, d) < dist - SHADOW_OFFSET
    return hit


def _frame(n: Tensor) -> tuple[Tensor, Tensor]:
    """Tangent T and bitangent B with T x B = n: B points up (+y), or away (-z) on horizontal faces."""
    up = torch.where((n[:, 1:2].abs() > 0.9), torch.tensor([0.0, 0.0, -1.0]), torch.tensor([0.0, 1.0, 0.0]))
    t = F.normalize(torch.cross(up, n, dim=-1), dim=-1)
    return t, torch.cross(n, t, dim=-1)


def lookup(tex: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Bilinear lookup [Q, C] of a tileable texture [C, S, S] at tile coordinates (u, v), wrapping around.

    +u runs along columns and +v towards the top row, like the maps' OpenGL normals (docs/conventions.md section 1).
    """
    c, s, _ = tex.shape
    x = u * s - 0.5
    y = (1.0 - v) * s - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    wx, wy = (x - x0).unsqueeze(-1), (y - y0).unsqueeze(-1)
    x0, y0 = x0.long() % s, y0.long() % s
    x1, y1 = (x0 + 1) % s, (y0 + 1) % s
    flat = tex.reshape(c, -1).T
    top = flat[y0 * s + x0] * (1 - wx) + flat[y0 * s + x1] * wx
    bot = flat[y1 * s + x0] * (1 - wx) + flat[y1 * s + x1] * wx
    return top * (1 - wy) + bot * wy


def _material_at(s: Surface, u: Tensor, v: Tensor) -> dict[str, Tensor]:
    return {k: lookup(m, u / s.tile, v / s.tile) for k, m in s.material.items()}


def _attributes(s: Surface, p: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Geometric normal, shading normal and material [Q, C] at world points p [Q, 3] on one surface."""
    if s.kind == "sphere":
        # Triplanar projection (blend weights |n|^4) for colours; no normal map, which would need a tangent field.
        rel = p - s.params["center"]
        n = F.normalize(rel, dim=-1)
        w = n.abs() ** 4
        w = w / w.sum(-1, keepdim=True)
        planes = ((rel[:, 2], rel[:, 1]), (rel[:, 0], rel[:, 2]), (rel[:, 0], rel[:, 1]))
        mats = [_material_at(s, a, b) for a, b in planes]
        mat = {k: sum(w[:, i : i + 1] * mats[i][k] for i in range(3)) for k in mats[0]}
        return n, n, mat
    if s.kind == "plane":
        n_local = s.params["normal"].expand_as(p)
        local, rot = p, torch.eye(3)
    else:  # box: the face is the axis where the local point lies furthest out, relative to the half size
        rot = s.params["rotation"]
        local = (p - s.params["center"]) @ rot
        axis = (local.abs() / s.params["half"]).argmax(-1)
        n_local = F.one_hot(axis, 3).float() * torch.sign(local.gather(1, axis[:, None]))
    tan, bit = _frame(n_local)
    mat = _material_at(s, _dot(local, tan), _dot(local, bit))
    tn = F.normalize(mat.pop("normals"), dim=-1)
    shading = F.normalize(tn[:, :1] * tan + tn[:, 1:2] * bit + tn[:, 2:] * n_local, dim=-1)
    return n_local @ rot.T, shading @ rot.T, mat


def surface_attributes(surfaces: list[Surface], index: Tensor, pos: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Per pixel: geometric normal, shading normal [P, 3] and basecolor/metallic/roughness [P, C]."""
    geo, shading = torch.zeros_like(pos), torch.zeros_like(pos)
    mat = {
        "basecolor": torch.zeros_like(pos),
        "metallic": torch.zeros_like(pos[:, :1]),
        "roughness": torch.zeros_like(pos[:, :1]),
    }
    for k, s in enumerate(surfaces):
        sel = (index == k).nonzero().flatten()
        if not len(sel):
            continue
        g, n, m = _attributes(s, pos[sel])
        geo[sel], shading[sel] = g, n
        for key in mat:
            mat[key][sel] = m[key]
    return geo, shading, {k: v.clamp(0, 1) for k, v in mat.items()}


def direct_light(
    scene: Scene,
    pos: Tensor,
    geo: Tensor,
    shading: Tensor,
    view: Tensor,
    specular: Tensor,
    roughness: Tensor,
    shadows: bool = True,
) -> tuple[Tensor, Tensor]:
    """Diffuse shading S and specular radiance [P, 3] from the point lights (with shadow rays if `shadows`)."""
    s_sum, spec_sum = torch.zeros_like(pos), torch.zeros_like(pos)
    cols = lambda x: x.T.unsqueeze(0)  # noqa: E731  [P, C] -> [1, C, P], the layout render.brdf dots over
    for light in scene.lights:
        to_l = light.position - pos
        dist = to_l.norm(dim=-1)
        wl = to_l / dist.unsqueeze(-1)
        # A light behind the geometric surface is blocked by it, whatever a normal map says.
        vis = (_dot(geo, wl) > 0).float()
        if shadows:
            vis = vis * (~occluded(scene.surfaces, pos + geo * SHADOW_OFFSET, wl, dist)).float()
        cos = _dot(shading, wl).clamp_min(0)
        irradiance = (vis * cos / (dist * dist)).unsqueeze(-1) * light.intensity
        s_sum = s_sum + irradiance / math.pi
        lobe = R.brdf(torch.zeros_like(cols(pos)), cols(specular), cols(roughness), cols(shading), cols(wl), cols(view))
        spec_sum = spec_sum + irradiance * lobe[0].T
    return s_sum, spec_sum
