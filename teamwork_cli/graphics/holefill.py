"""Classical hole filling: the harmonic (membrane) fill, solved by conjugate gradients, coarse to fine.

Inside the mask the fill solves Laplace's equation with the known pixels as boundary values (Neumann at the image
border): the smoothest continuation of the surroundings, the classical diffusion inpainting (Bertalmio et al. 2000
take its transport form). It is the benchmark's inpainting baseline, and an inpainting adapter trained with
`--hole-fill harmonic` sees its holes pre-filled with it, so the team refines a sound guess instead of inventing the
hole's colour from grey.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BLANK = 0.5  # mid grey in the file encoding
HOLE_FILLS = ("grey", "harmonic")
COARSE = 32  # below this size one CG solve converges in a few dozen iterations


def _lap(v: Tensor) -> Tensor:
    """Graph Laplacian with replicate (Neumann) borders: symmetric positive definite on the masked unknowns."""
    p = F.pad(v, (1, 1, 1, 1), mode="replicate")
    return 4 * v - p[..., :-2, 1:-1] - p[..., 2:, 1:-1] - p[..., 1:-1, :-2] - p[..., 1:-1, 2:]


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).flatten(1).sum(1).view(-1, 1, 1, 1)


def _cg(x: Tensor, m: Tensor, guess: Tensor, iters: int, tol: float) -> Tensor:
    """Conjugate gradients on the masked unknowns (Shewchuk 1994, "An Introduction to the Conjugate Gradient
    Method Without the Agonizing Pain", B2), per image of the batch."""
    known = x * (1 - m)
    v = guess * m
    r = -_lap(known + v) * m  # b - A v, with b = -lap(known) on the mask
    d = r.clone()
    rr = _dot(r, r)
    for _ in range(iters):
        if rr.max() < tol:
            break
        ad = _lap(d) * m
        alpha = rr / _dot(d, ad).clamp_min(1e-20)
        v = v + alpha * d
        r = r - alpha * ad
        rr_new = _dot(r, r)
        d = r + rr_new / rr.clamp_min(1e-20) * d
        rr = rr_new
    return known + v * m


def harmonic_fill(x: Tensor, mask: Tensor, iters: int = 200, tol: float = 1e-10) -> Tensor:
    """x [N, C, H, W] with the region where mask [N or 1, 1, H, W] is 1 replaced by the harmonic fill.

    Coarse to fine: the half-resolution solution starts each level's CG, so a hole hundreds of pixels wide needs
    no more iterations than a small one (CG alone needs about one per pixel of hole diameter)."""
    m = (mask > 0.5).to(x.dtype).expand_as(x)
    h, w = x.shape[-2:]
    if min(h, w) >= 2 * COARSE:
        hh, ww = (h + 1) // 2, (w + 1) // 2
        known = x * (1 - m)
        weight = F.adaptive_avg_pool2d(1 - m, (hh, ww))
        # Averages of the known pixels only: a half-known coarse pixel is known, an all-hole one is solved for.
        coarse_x = F.adaptive_avg_pool2d(known, (hh, ww)) / weight.clamp_min(1e-6)
        coarse_m = (weight < 0.5).to(x.dtype)
        coarse = harmonic_fill(coarse_x * (1 - coarse_m), coarse_m, iters, tol)
        guess = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    else:
        guess = torch.zeros_like(x)
    return _cg(x, m, guess, iters, tol)


def blank(encoded: Tensor, mask: Tensor, fill: str = "grey") -> Tensor:
    """The team's view of a map with a hole: mid grey there, or the harmonic fill of the surroundings."""
    if fill not in HOLE_FILLS:
        raise ValueError(f"hole fill must be one of {', '.join(HOLE_FILLS)}; got {fill!r}")
    if fill == "harmonic":
        return harmonic_fill(encoded, mask).clamp(0, 1)
    return encoded * (1 - mask) + BLANK * mask
