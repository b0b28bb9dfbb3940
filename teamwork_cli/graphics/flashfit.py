"""Fit the global levels of estimated material maps to the flash photo they came from (analysis by synthesis).

A single-step diffusion estimate gets the spatial structure of the maps but can miss their global levels, chiefly
the roughness level, which the render error depends on most (on the real CC0 crops of benchmarks/svbrdf_quality.py
the mean roughness and the normal strength carry most of it; spatial roughness detail almost none). Those levels
are what the photo constrains best: the flash highlight's width and height fix roughness and specular, its falloff
the normal strength. So the maps are re-rendered under the known flash (docs/conventions.md section 3) and a
handful of per-image scalars is fitted to the photo by gradient descent:

    roughness' = sigmoid(logit(roughness) + a)      specular' = specular * exp(b)
    diffuse'   = diffuse * exp(c_rgb)               normals'  = normalize(exp(k) n_xy, n_z)

Six numbers per image cannot copy the photo into the maps (the failure of per-pixel refinement under one light,
Deschaintre et al. 2019 section 6); they move the estimate along the directions the network is least sure of.
This is the low-dimensional cousin of the post-optimisation of Gao et al. 2019 ("Deep inverse rendering") and
MaterialGAN (Guo et al. 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.core.conventions import normalize, srgb_to_linear
from teamwork_cli.core.rows import CHUNK_PIXELS, row_bands
from teamwork_cli.graphics import render as R

FIT_SIZE = 128  # the fit sees the photo at most this large: levels need no detail
SATURATED = 0.995  # clipped photo pixels carry no level information
# The diffuse share of a pixel's radiance below which the per-pixel solve is not trusted at all, and above which it
# is trusted wholly (between, blended). On the real flash photos of benchmarks/diffuse_holes.py, (0.05, 0.2) takes
# the pure-black share of the default diffuse from 0-11.6% to 0-0.3% at a cost of 0.0001 in CC0 render RMSE;
# wider bands remove a little more and cost more.
TRUST_SHARE = (0.05, 0.2)


def _apply(maps: dict[str, Tensor], p: dict[str, Tensor], logit_r: Tensor | None = None) -> dict[str, Tensor]:
    if logit_r is None:
        logit_r = torch.logit(maps["roughness"].clamp(1e-3, 1 - 1e-3))
    n = maps["normals"]
    view = lambda v: v.view(-1, *[1] * 3)  # noqa: E731 per-image scalar to [N, 1, 1, 1]
    tilted = torch.cat([n[:, :2] * view(p["normal"].exp()), n[:, 2:]], 1)
    return {
        "roughness": torch.sigmoid(logit_r + view(p["roughness"])),
        "specular": (maps["specular"] * view(p["specular"].exp())).clamp(0, 1),
        "diffuse": (maps["diffuse"] * p["diffuse"].exp().view(-1, 3, 1, 1)).clamp(0, 1),
        "normals": normalize(tilted, axis=1, eps=1e-6),  # rsqrt: its backward is far cheaper than F.normalize's
    }


def fit_levels(
    maps: dict[str, Tensor],
    photo: Tensor,
    *,
    fov_deg: float = 45.0,
    iters: int = 150,
    lr: float = 0.05,
    inplace: bool = False,
) -> dict[str, Tensor]:
    """Maps with their global levels fitted to `photo` (stored sRGB [N, 3, H, W]); other keys pass through.
    inplace: write the fitted levels into the given (float32) maps rather than new ones: at 12 MP the new maps and
    their temporaries would be over a GB.

    Adam (Kingma & Ba 2015, algorithm 1; beta 0.9, 0.999, eps 1e-8) on the squared error of the sRGB photo,
    written out here for six numbers per image: torch.optim's first use imports torch._dynamo, about 0.9 s.
    """
    small = {k: maps[k].float() for k in ("diffuse", "specular", "roughness", "normals")}
    n, _, h, w = small["diffuse"].shape
    scale = min(1.0, FIT_SIZE / max(h, w))
    target = photo.float()
    if target.shape[-2:] != (h, w):
        raise ValueError(f"photo is {target.shape[-1]}x{target.shape[-2]} but the maps are {w}x{h}")
    if scale < 1.0:  # area filtering keeps the levels; the fit's render uses the same (smaller) patch geometry
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = {k: F.interpolate(v, size=size, mode="area") for k, v in small.items()}
        small["normals"] = F.normalize(small["normals"], dim=1, eps=1e-6)
        target = F.interpolate(target, size=size, mode="area")
    weight = (target < SATURATED).all(1, keepdim=True).float()
    norm = weight.sum().clamp_min(1.0)
    logit_r = torch.logit(small["roughness"].clamp(1e-3, 1 - 1e-3))  # once, not per iteration
    params = {
        "roughness": torch.zeros(n),
        "specular": torch.zeros(n),
        "diffuse": torch.zeros(n, 3),
        "normal": torch.zeros(n),
    }
    moments = {k: (torch.zeros_like(v), torch.zeros_like(v)) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    with torch.enable_grad(), torch.autocast(photo.device.type, enabled=False):
        for step in range(1, iters + 1):
            for v in params.values():
                v.requires_grad_(True)
            m = _apply(small, params, logit_r)
            pred = R.to_photo(
                R.render_flash(m["diffuse"], m["specular"], m["roughness"], m["normals"], fov_deg=fov_deg)
            )
            loss = ((pred - target) ** 2 * weight).sum() / norm
            grads = torch.autograd.grad(loss, list(params.values()))
            with torch.no_grad():
                for (key, v), g in zip(params.items(), grads, strict=True):
                    m1, m2 = moments[key]
                    m1.mul_(beta1).add_(g, alpha=1 - beta1)
                    m2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = (m2 / (1 - beta2**step)).sqrt_().add_(eps)
                    params[key] = v.detach() - lr * (m1 / (1 - beta1**step)) / denom
    with torch.no_grad():
        if inplace and all(maps[k].dtype == torch.float32 for k in small):
            _apply_inplace(maps, params)
            return maps
        fitted = _apply({k: maps[k].float() for k in small}, params)
    return {**maps, **fitted}


def _apply_inplace(maps: dict[str, Tensor], p: dict[str, Tensor], rows: int = 256) -> None:
    """`_apply` written into the maps themselves, `rows` rows at a time (the same values: per-pixel operations)."""
    for i in range(0, maps["diffuse"].shape[-2], rows):
        part = {
            k: v[..., i : i + rows, :] for k, v in maps.items() if k in ("diffuse", "specular", "roughness", "normals")
        }
        fitted = _apply(part, p)
        for k, v in fitted.items():
            part[k].copy_(v)


def demodulate_diffuse(
    maps: dict[str, Tensor],
    photo: Tensor,
    *,
    fov_deg: float = 45.0,
    terms: tuple[Tensor, Tensor] | None = None,
    chunk_pixels: int = CHUNK_PIXELS,
) -> dict[str, Tensor]:
    """Maps whose diffuse is solved per pixel from the photo given the other maps (docs/conventions.md section 3):
    under the colocated flash the radiance is (d / pi + s * spec(n, r)) * E(n), linear in d, so
    d = pi * (L / E - s * spec). The solve is trusted where the diffuse term carries a fair share of the observed
    radiance; where the specular term explains nearly all of it (highlights) any error in s * spec becomes the
    diffuse, down to pure black, so there the estimate's diffuse takes over (blended by that share, between
    TRUST_SHARE). Saturated or grazing pixels keep the estimate's diffuse.
    terms: `render.flash_terms` of the maps' roughness and normals, if the caller has them already; else they are
    made chunk by chunk. chunk_pixels: rows are solved about this many pixels at a time (every step is per
    pixel, so the result is the same for any chunk): the temporaries stay a chunk's size, not a photo's."""
    d, s, r, n = (maps[k].float() for k in ("diffuse", "specular", "roughness", "normals"))
    if photo.shape[-2:] != d.shape[-2:]:
        raise ValueError(f"photo is {photo.shape[-1]}x{photo.shape[-2]} but the maps are {d.shape[-1]}x{d.shape[-2]}")
    h, w = d.shape[-2:]
    diffuse = torch.empty_like(d)
    for rows in row_bands(h, w, chunk_pixels):
        if terms is not None:
            part = (terms[0][..., rows, :], terms[1][..., rows, :])
        else:
            part = R.flash_terms(r[..., rows, :], n[..., rows, :], fov_deg=fov_deg, rows=(rows.start, h))
        diffuse[..., rows, :] = _solve_diffuse(d[..., rows, :], s[..., rows, :], photo[..., rows, :], part)
    return {**maps, "diffuse": diffuse}


def _solve_diffuse(d: Tensor, s: Tensor, photo: Tensor, terms: tuple[Tensor, Tensor]) -> Tensor:
    """`demodulate_diffuse` on one chunk of rows."""
    spec, shading = terms
    # E(n) is the radiance of d = pi, s = 0: the shading term itself.
    observed = srgb_to_linear(photo.float()).div_(shading.clamp_min(1e-6))
    solved = torch.addcmul(observed, s, spec, value=-1.0).mul_(torch.pi)
    # The diffuse share of the observation, (L/E - s spec) / (L/E), of the channel with the least.
    share = (solved / observed.mul_(torch.pi).clamp_min_(1e-6)).amin(1, keepdim=True)
    del observed
    lo, hi = TRUST_SHARE
    trust = share.sub_(lo).div_(hi - lo).clamp_(0, 1)
    trust.mul_((photo < SATURATED).all(1, keepdim=True) & (shading > 0.05).all(1, keepdim=True))
    return torch.lerp(d, solved.clamp_(0, 1), trust)


def rerender(maps: dict[str, Tensor], *, fov_deg: float = 45.0, chunk_pixels: int = CHUNK_PIXELS) -> Tensor:
    """The maps rendered under their colocated flash (`render.render_flash`), clipped to a photo's [0, 1] linear
    range, about `chunk_pixels` pixels at a time: the same values as the whole-map render, without its
    photo-sized temporaries."""
    d, s, r, n = (maps[k].float() for k in ("diffuse", "specular", "roughness", "normals"))
    h, w = d.shape[-2:]
    out = torch.empty_like(d)
    for rows in row_bands(h, w, chunk_pixels):
        terms = R.flash_terms(r[..., rows, :], n[..., rows, :], fov_deg=fov_deg, rows=(rows.start, h))
        out[..., rows, :] = R.flash_radiance(d[..., rows, :], s[..., rows, :], terms).clamp_(0, 1)
    return out
