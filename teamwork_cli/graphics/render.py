"""Flash renderer and render-based scores (docs/conventions.md sections 3 and 4).

Everything is batched torch, [B, C, H, W], differentiable, and runs on whatever device the maps live on.
Maps are in the *value* domain: diffuse/specular linear RGB, roughness perceptual r (GGX alpha = r^2),
normals unit vectors in the tangent space of the z = 0 patch (OpenGL: +x right, +y up, +z out), which for
this flat patch is also world space.

BRDF: Cook-Torrance microfacet model with the GGX/Trowbridge-Reitz distribution (Walter et al. 2007,
"Microfacet Models for Refraction through Rough Surfaces"), Smith-Schlick visibility with k = alpha / 2 and
Schlick's Fresnel (Karis 2013, "Real Shading in Unreal Engine 4"), exactly the formulas of docs/conventions.md 3.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

EPS = 1e-6
# alpha = r^2 is floored so that a perfect mirror (r = 0) does not turn D into 0/0 at the highlight.
MIN_ALPHA = 1e-3
Vec3 = Sequence[float] | Tensor


def camera_height(fov_deg: float = 45.0) -> float:
    """Distance at which a pinhole camera with this field of view just sees the [-1, 1] patch."""
    return 1.0 / math.tan(math.radians(fov_deg) / 2.0)


def patch_positions(
    h: int,
    w: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    rows: tuple[int, int] | None = None,
) -> Tensor:
    """World positions [3, H, W] of the pixel centres: x = -1 + (2j+1)/W, y = 1 - (2i+1)/H, z = 0.
    rows: (start, stop): only those rows of the H x W patch ([3, stop - start, W]), the same values."""
    start, stop = rows if rows is not None else (0, h)
    x = -1.0 + (2.0 * torch.arange(w, device=device, dtype=dtype) + 1.0) / w
    y = 1.0 - (2.0 * torch.arange(start, stop, device=device, dtype=dtype) + 1.0) / h
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx, yy, torch.zeros_like(xx)], dim=0)


def _normalize(v: Tensor, dim: int = 1) -> Tensor:
    return v / v.norm(dim=dim, keepdim=True).clamp_min(EPS)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=1, keepdim=True)


def _as_points(p: Vec3 | None, default: tuple[float, float, float], batch: int, ref: Tensor) -> Tensor:
    """A point or direction as [B, 3, 1, 1] ([B, 3] tensor: one per sample) or [1, 3, 1, 1] (shared by the
    batch; the per-pixel geometry is then computed once, not B times, which halves the cost of a flash render)."""
    t = torch.as_tensor(default if p is None else p, dtype=ref.dtype, device=ref.device)
    if t.dim() == 2 and t.shape[0] != batch:
        raise ValueError(f"expected [{batch}, 3] positions, got {list(t.shape)}")
    return t.reshape(-1, 3, 1, 1)


def brdf(diffuse: Tensor, specular: Tensor, roughness: Tensor, normals: Tensor, wl: Tensor, wv: Tensor) -> Tensor:
    """f(l, v) of docs/conventions.md section 3 for unit vectors wl = l, wv = v broadcastable to [B, 3, H, W]."""
    n, l, v = normals, wl, wv  # noqa: E741 (names of the spec)
    hv = _normalize(l + v)
    alpha = (roughness * roughness).clamp_min(MIN_ALPHA)
    a2 = alpha * alpha
    n_h = _dot(n, hv).clamp_min(0.0)
    # Only the denominators are clamped; max(n.l, 0) in the radiance zeroes back-facing light anyway.
    n_l = _dot(n, l).clamp_min(EPS)
    n_v = _dot(n, v).clamp_min(EPS)
    v_h = _dot(v, hv).clamp(0.0, 1.0)
    d = a2 / (math.pi * (n_h * n_h * (a2 - 1.0) + 1.0) ** 2)
    k = alpha / 2.0
    g = (n_l / (n_l * (1.0 - k) + k)) * (n_v / (n_v * (1.0 - k) + k))
    f = specular + (1.0 - specular) * (1.0 - v_h) ** 5
    return diffuse / math.pi + d * f * g / (4.0 * n_l * n_v)


def render(
    diffuse: Tensor,
    specular: Tensor,
    roughness: Tensor,
    normals: Tensor,
    *,
    light: Vec3 | None = None,
    camera: Vec3 | None = None,
    intensity: float | Tensor | None = None,
    light_type: Literal["point", "directional"] = "point",
    fov_deg: float = 45.0,
) -> Tensor:
    """Linear radiance [B, 3, H, W] of the patch seen from `camera`.

    point light: L = f * I * max(n.l, 0) / d^2, light at `light` (default (0, 0, h), I = pi h^2 so that a
    white Lambertian patch centre under the default light renders to exactly 1).
    directional: `light` is the direction towards the light (default +z), L = f * E * max(n.l, 0) with
    irradiance E = `intensity` (default pi, which again makes a white Lambertian under +z light 1).
    """
    b, _, hgt, wid = diffuse.shape
    ch = camera_height(fov_deg)
    p = patch_positions(hgt, wid, diffuse.device, diffuse.dtype).unsqueeze(0)
    cam = _as_points(camera, (0.0, 0.0, ch), b, diffuse)
    v = _normalize(cam - p)
    if light_type == "point":
        lp = _as_points(light, (0.0, 0.0, ch), b, diffuse)
        to_light = lp - p
        dist2 = _dot(to_light, to_light).clamp_min(EPS)
        wl = to_light / dist2.sqrt()
        power = math.pi * ch * ch if intensity is None else intensity
        scale = power / dist2
    elif light_type == "directional":
        wl = _normalize(_as_points(light, (0.0, 0.0, 1.0), b, diffuse))
        scale = math.pi if intensity is None else intensity
    else:
        raise ValueError(f"unknown light_type {light_type!r}")
    if isinstance(scale, Tensor) and scale.dim() == 1:
        scale = scale.reshape(-1, 1, 1, 1)
    f = brdf(diffuse, specular, roughness, normals, wl, v)
    return f * scale * _dot(normals, wl).clamp_min(0.0)


# Patches up to this many pixels keep their flash geometry cached (16 bytes a pixel: 16 MB at 1 MP), which the
# fit's many small renders and training's fixed sizes reuse; a photo-sized one is made per call (and per chunk).
GEOMETRY_CACHE_PIXELS = 1 << 20


def _flash_geometry(
    h: int, w: int, fov_deg: float, device: torch.device, dtype: torch.dtype, rows: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor]:
    """View/light direction v [1, 3, H, W] and 1 / d^2 [1, 1, H, W] of the colocated flash (read-only);
    rows: (start, stop), only those rows of the H x W patch."""
    if rows is None and h * w <= GEOMETRY_CACHE_PIXELS:
        return _cached_flash_geometry(h, w, fov_deg, device, dtype)
    return _make_flash_geometry(h, w, fov_deg, device, dtype, rows)


def _make_flash_geometry(
    h: int, w: int, fov_deg: float, device: torch.device, dtype: torch.dtype, rows: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor]:
    # Cached tensors must be ordinary ones even if first made under inference_mode, or later autograd use fails.
    with torch.inference_mode(False), torch.no_grad():
        p = patch_positions(h, w, device, dtype, rows)
        cam = torch.tensor([0.0, 0.0, camera_height(fov_deg)], device=device, dtype=dtype).view(3, 1, 1)
        to_cam = cam - p
        dist2 = (to_cam * to_cam).sum(dim=0, keepdim=True)
        return (to_cam / dist2.sqrt()).unsqueeze(0), (1.0 / dist2).unsqueeze(0)


_cached_flash_geometry = functools.lru_cache(maxsize=16)(_make_flash_geometry)


def render_flash(
    diffuse: Tensor,
    specular: Tensor,
    roughness: Tensor,
    normals: Tensor,
    *,
    fov_deg: float = 45.0,
    intensity: float | Tensor | None = None,
) -> Tensor:
    """Radiance under a flash colocated with the camera at (0, 0, h): the input photo of the task.

    Same formulas as `render`, simplified for l = v = hv (so v.hv = 1 and F = F0 exactly, and
    n.hv = n.l = n.v); this is about three times cheaper and is what makes training data fast.
    """
    return flash_radiance(diffuse, specular, flash_terms(roughness, normals, fov_deg=fov_deg, intensity=intensity))


def flash_terms(
    roughness: Tensor,
    normals: Tensor,
    *,
    fov_deg: float = 45.0,
    intensity: float | Tensor | None = None,
    rows: tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """The parts of the flash render that do not depend on diffuse or specular: (spec, shading) with radiance
    = (diffuse / pi + specular * spec) * shading, so a caller that changes only those maps (the per-pixel
    diffuse solve, then the re-render) evaluates the microfacet terms once.
    rows: (start, height): the maps are the rows from `start` of a patch `height` rows high (a chunk of a large
    map: the same values as that part of the whole map's terms)."""
    h, w = normals.shape[-2:]
    if rows is None:
        v, inv_d2 = _flash_geometry(h, w, fov_deg, normals.device, normals.dtype)
    else:
        v, inv_d2 = _flash_geometry(rows[1], w, fov_deg, normals.device, normals.dtype, (rows[0], rows[0] + h))
    ch = camera_height(fov_deg)
    power = math.pi * ch * ch if intensity is None else intensity
    if isinstance(power, Tensor) and power.dim() == 1:
        power = power.reshape(-1, 1, 1, 1)
    n_v = _dot(normals, v)
    c = n_v.clamp_min(EPS)
    alpha = (roughness * roughness).clamp_min(MIN_ALPHA)
    a2 = alpha * alpha
    d = a2 / (math.pi * (c * c * (a2 - 1.0) + 1.0) ** 2)
    k = alpha / 2.0
    g1 = c / (c * (1.0 - k) + k)
    spec = d * g1 * g1 / (4.0 * c * c)
    return spec, power * inv_d2 * n_v.clamp_min(0.0)


def flash_radiance(diffuse: Tensor, specular: Tensor, terms: tuple[Tensor, Tensor]) -> Tensor:
    """Radiance from `flash_terms`."""
    spec, shading = terms
    return (diffuse / math.pi + specular * spec) * shading


def _srgb_encode(x: Tensor) -> Tensor:
    # IEC 61966-2-1 transfer function; the tiny floor keeps pow's gradient finite at 0.
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8) ** (1.0 / 2.4) - 0.055)


def _srgb_decode(x: Tensor) -> Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0.0) + 0.055) / 1.055) ** 2.4)


def to_photo(radiance: Tensor) -> Tensor:
    """What a camera stores: clip(L, 0, 1), sRGB-encoded (docs/conventions.md section 3)."""
    return _srgb_encode(radiance.clamp(0.0, 1.0))


def halfway_map(
    h: int,
    w: int,
    fov_deg: float = 45.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Raw unit half vectors [3, H, W] of the colocated flash: hv = l = v = normalize(camera - p)."""
    p = patch_positions(h, w, device, dtype)
    cam = torch.tensor([0.0, 0.0, camera_height(fov_deg)], device=device, dtype=dtype).view(3, 1, 1)
    return _normalize(cam - p, dim=0)


Maps = Mapping[str, Tensor]


def _batched(t: Tensor) -> Tensor:
    return t.unsqueeze(0) if t.dim() == 3 else t


def _render_maps(maps: Maps, light: Vec3, fov_deg: float) -> Tensor:
    m = {k: _batched(maps[k]) for k in ("diffuse", "specular", "roughness", "normals")}
    ch = camera_height(fov_deg)
    return to_photo(render(**m, light=light, camera=(0.0, 0.0, ch), fov_deg=fov_deg))


def render_rmse(pred_maps: Maps, gt_maps: Maps, fov_deg: float = 45.0) -> float:
    """Mean over the nine lights (x, y, h), x, y in {-1, 0, 1}, of the RMSE of sRGB photos (conventions 4)."""
    ch = camera_height(fov_deg)
    errs = []
    with torch.no_grad():
        for x in (-1.0, 0.0, 1.0):
            for y in (-1.0, 0.0, 1.0):
                a = _render_maps(pred_maps, (x, y, ch), fov_deg)
                b = _render_maps(gt_maps, (x, y, ch), fov_deg)
                errs.append(((a - b) ** 2).mean().sqrt().item())
    return sum(errs) / len(errs)


def map_rmse(pred: Maps | Tensor, gt: Maps | Tensor, channel: str) -> float:
    """Per-map RMSE on [0, 1] maps: colours linear, roughness as stored, normals encoded as (n + 1) / 2."""
    a = pred[channel] if isinstance(pred, Mapping) else pred
    b = gt[channel] if isinstance(gt, Mapping) else gt
    if channel in ("normals", "halfway"):
        a, b = (a + 1.0) / 2.0, (b + 1.0) / 2.0
    return ((a.float() - b.float()) ** 2).mean().sqrt().item()
