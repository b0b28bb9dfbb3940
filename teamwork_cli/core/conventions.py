"""Colour, normal and material conventions (docs/conventions.md section 1), for numpy arrays and torch tensors.

Every function takes a numpy array or a torch tensor and returns the same kind (integer arrays become
float32).  Functions that act on vectors take `axis`, the component axis: -1 for H x W x C arrays (what
`materials.read.read_map` returns), -3 for C x H x W or B x C x H x W tensors.  torch is never imported here: a tensor
can only come from a caller that already imported it, so numpy-only users do not pay for the import.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

A = TypeVar("A", np.ndarray, "torch.Tensor")

DIELECTRIC_F0 = 0.04  # glTF 2.0 metal-roughness: the specular reflectance of every non-metal
DEFAULT_GAMMA = 2.2  # plain gamma of the published checkpoints' training images (docs/conventions.md 6)


# --- numpy/torch neutral helpers -------------------------------------------------------------------


def _is_torch(x: Any) -> bool:
    torch_mod = sys.modules.get("torch")
    return torch_mod is not None and isinstance(x, torch_mod.Tensor)


def _float(x: Any) -> Any:
    if _is_torch(x):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def _where(cond: Any, a: Any, b: Any) -> Any:
    return sys.modules["torch"].where(cond, a, b) if _is_torch(cond) else np.where(cond, a, b)


def _clip(x: Any, lo: float | None, hi: float | None) -> Any:
    return x.clamp(lo, hi) if _is_torch(x) else np.clip(x, lo, hi)


def _sum(x: Any, axis: int) -> Any:
    return x.sum(dim=axis, keepdim=True) if _is_torch(x) else x.sum(axis=axis, keepdims=True)


def _cat(xs: list[Any], axis: int) -> Any:
    return sys.modules["torch"].cat(xs, dim=axis) if _is_torch(xs[0]) else np.concatenate(xs, axis=axis)


def _stack(xs: list[Any], axis: int) -> Any:
    return sys.modules["torch"].stack(xs, dim=axis) if _is_torch(xs[0]) else np.stack(xs, axis=axis)


def _roll(x: Any, shift: int, axis: int) -> Any:
    return sys.modules["torch"].roll(x, shift, dims=axis) if _is_torch(x) else np.roll(x, shift, axis=axis)


def _component(x: Any, i: int, axis: int) -> Any:
    """Component i along `axis`, keeping that axis (size 1) so results broadcast back."""
    return x.narrow(axis, i, 1) if _is_torch(x) else np.take(x, [i], axis=axis)


def _check_components(x: Any, n: int, axis: int, name: str) -> None:
    if x.shape[axis] != n:
        raise ValueError(f"{name} must have {n} components along axis {axis}, got shape {tuple(x.shape)}")


# --- transfer functions ----------------------------------------------------------------------------


def srgb_to_linear(x: A) -> A:
    """sRGB-encoded values to linear (IEC 61966-2-1:1999, section 5.2, the exact piecewise curve).

    Values above 1 follow the power segment and values below 0 the linear one, so nothing is clipped.
    """
    x = _float(x)
    # The power branch is evaluated on a clamped copy so the unused side never sees a negative base
    # (NaN in numpy, NaN gradients in torch).
    power = ((_clip(x, 0.04045, None) + 0.055) / 1.055) ** 2.4
    return _where(x <= 0.04045, x / 12.92, power)


def linear_to_srgb(x: A) -> A:
    """Linear values to sRGB encoding (IEC 61966-2-1:1999, inverse of `srgb_to_linear`)."""
    x = _float(x)
    power = 1.055 * _clip(x, 0.0031308, None) ** (1 / 2.4) - 0.055
    return _where(x <= 0.0031308, x * 12.92, power)


def gamma_to_linear(x: A, gamma: float = DEFAULT_GAMMA) -> A:
    """Plain gamma decode, x ** gamma (negative inputs clip to 0): the published checkpoints' convention."""
    return _clip(_float(x), 0.0, None) ** gamma


def linear_to_gamma(x: A, gamma: float = DEFAULT_GAMMA) -> A:
    """Plain gamma encode, x ** (1 / gamma) (negative inputs clip to 0)."""
    return _clip(_float(x), 0.0, None) ** (1 / gamma)


# --- vectors and normals ---------------------------------------------------------------------------


def normalize(v: A, *, axis: int = -1, eps: float = 1e-12) -> A:
    """Unit vectors along `axis`, v / max(|v|, eps); a 3-vector of length at most eps becomes +Z (a flat normal)
    instead of NaN. Differentiable for tensors.

    Tensors take v * rsqrt(max(v.v, eps^2)): three elementwise kernels and a reduction, whose backward is as
    cheap, where v / norm(v) has norm's backward (several times the forward; the photo fit normalises its normals
    at every step). The +Z replacement only runs when some vector needs it."""
    v = _float(v)
    sq = _sum(v * v, axis)
    unit = v * sq.clamp_min(eps * eps).rsqrt() if _is_torch(v) else v / np.sqrt(np.maximum(sq, eps * eps))
    flat = sq <= eps * eps
    if v.shape[axis] != 3 or not flat.any():
        return unit
    up = _component(v, 2, axis) * 0
    up = _cat([up, up, up + 1], axis)  # +Z with the right shape, dtype and device for either library
    return _where(flat, up, unit)


def normals_gl_to_dx(n: A, *, axis: int = -1) -> A:
    """OpenGL (+Y up) tangent-space normals to DirectX (+Y down): negate Y.  Its own inverse."""
    n = _float(n)
    _check_components(n, 3, axis, "normals")
    return _cat([_component(n, 0, axis), -_component(n, 1, axis), _component(n, 2, axis)], axis)


normals_dx_to_gl = normals_gl_to_dx


def encode_normals(n: A) -> A:
    """Unit vectors in [-1, 1] to the (n + 1) / 2 file encoding in [0, 1] (also used for `halfway`)."""
    return (_float(n) + 1) / 2


def decode_normals(e: A, *, axis: int = -1) -> A:
    """The (n + 1) / 2 encoding back to unit vectors, renormalised to undo quantisation."""
    return normalize(_float(e) * 2 - 1, axis=axis)


def height_to_normals(height: A, strength: float = 1.0, *, wrap: bool = True, axis: int = -1) -> A:
    """Tangent-space normals (OpenGL: +X right, +Y towards the top row, +Z out) of a height map.

    `height` has rows and columns as its last two axes (..., H, W); the normal's 3 components are inserted
    at `axis` (-1 gives (..., H, W, 3), -3 gives (..., 3, H, W)).  Slopes are central differences in height
    units per pixel, times `strength` (strength = W / 2 reads heights in the world units of the [-1, 1]
    patch of docs/conventions.md section 3).  `wrap=True` wraps around the edges so tiling textures stay
    seamless; `wrap=False` uses one-sided differences at the border.
    """
    h = _float(height)
    if h.ndim < 2:
        raise ValueError(f"height must have at least 2 dimensions (H, W), got shape {tuple(h.shape)}")
    slope_x = _d_columns(h, wrap)
    # Rows run down the image while +Y points up, so the Y slope is the negated row derivative.
    slope_y = -_d_columns(h.swapaxes(-1, -2), wrap).swapaxes(-1, -2)
    # The surface z = s h(x, y) has the (unnormalised) normal (-s dh/dx, -s dh/dy, 1).
    return normalize(_stack([-strength * slope_x, -strength * slope_y, slope_x * 0 + 1], axis), axis=axis)


def _d_columns(h: Any, wrap: bool) -> Any:
    """Central difference along the last axis, (h[j+1] - h[j-1]) / 2."""
    if h.shape[-1] < 2:
        return h * 0
    if wrap:
        return (_roll(h, -1, -1) - _roll(h, 1, -1)) / 2
    inner = (h[..., 2:] - h[..., :-2]) / 2
    return _cat([h[..., 1:2] - h[..., :1], inner, h[..., -1:] - h[..., -2:-1]], -1)


# --- material parameterisations --------------------------------------------------------------------


def roughness_to_glossiness(r: A) -> A:
    """Glossiness g = 1 - r (the specular-glossiness workflow's convention)."""
    return 1 - _float(r)


def glossiness_to_roughness(g: A) -> A:
    """Roughness r = 1 - g."""
    return 1 - _float(g)


def basecolor_to_diffuse_specular(basecolor: A, metallic: A) -> tuple[A, A]:
    """glTF metal-roughness to diffuse/specular albedo, all linear (docs/conventions.md section 1).

    diffuse = basecolor (1 - metallic), specular = 0.04 (1 - metallic) + basecolor metallic.  `metallic`
    broadcasts against `basecolor` (give it a size-1 component axis).
    """
    b, m = _float(basecolor), _float(metallic)
    return b * (1 - m), DIELECTRIC_F0 * (1 - m) + b * m


def diffuse_specular_to_basecolor(diffuse: A, specular: A, *, axis: int = -1, iterations: int = 24) -> tuple[A, A]:
    """Inverse of `basecolor_to_diffuse_specular`: (basecolor, metallic), linear values.

    Per pixel, picks metallic m in [0, 1] and basecolor b in [0, 1] minimising the squared error of both
    equations over all components.  For a given m the best b is a per-component 1-D least-squares solution
    (clipped, which is exact for a convex 1-D quadratic), so only m is searched.  Candidates: the best of a
    17-point grid refined by golden section, and the roots of the component-averaged equation
    m d - (1 - m) (s - 0.04 (1 - m)) = 0, which hold the exact answer for data made by the forward map.
    Forward-map data is recovered to float precision (float64 for numpy; float32 tensors lose digits on
    near-black metals).  Black or very dark grey colours have two exact solutions (a dark dielectric and a
    dark metal): among equally good candidates the smallest metallic wins.  metallic has a size-1
    component axis.  iterations: golden-section steps; 24 pin m to 1e-6 (the bracket shrinks 0.618x a step
    from 1/8), so basecolor and metallic agree with a 64-step search to 1e-5.  Cost: about 45 evaluations of a
    few array operations.
    """
    d, s = _float(diffuse), _float(specular)
    if not _is_torch(d):
        # Residuals are sums of squares, so their resolution in m is float precision: use float64.
        d, s = d.astype(np.float64), s.astype(np.float64)

    def residual(m: Any) -> Any:
        return _fit_metallic(d, s, m, axis)[1]

    grid = 16
    zero = _component(d, 0, axis) * 0
    best_m, best_r = zero, residual(zero)
    for k in range(1, grid + 1):
        m = zero + k / grid
        r = residual(m)
        best_m, best_r = _where(r < best_r, m, best_m), _where(r < best_r, r, best_r)
    fine = _golden_section(residual, best_m, 1 / grid, iterations=iterations)
    candidates = [_where(residual(fine) < best_r, fine, best_m)]  # keeps exact grid points on ties
    # Averaged equation: 0.04 m^2 + (D + S - 0.08) m + (0.04 - S) = 0; roots by the cancellation-free form.
    n = d.shape[axis]
    lin, const = (_sum(d, axis) + _sum(s, axis)) / n - 2 * DIELECTRIC_F0, DIELECTRIC_F0 - _sum(s, axis) / n
    root = _clip(lin * lin - 4 * DIELECTRIC_F0 * const, 0.0, None) ** 0.5
    q = -0.5 * (lin + _where(lin >= 0, root, -root))
    candidates += [_clip(q / DIELECTRIC_F0, 0.0, 1.0), _clip(const / _where(q == 0, q + 1, q), 0.0, 1.0)]
    residuals = [residual(c) for c in candidates]
    lowest = residuals[0]
    for r in residuals[1:]:
        lowest = _where(r < lowest, r, lowest)
    # "Equally good" is relative to the pixel's own magnitude, so dark pixels are not all ties.
    tie = lowest + 1e-9 * _sum(d * d + s * s, axis) / n + 1e-30
    best_m = zero + 2  # above every candidate
    for c, r in zip(candidates, residuals, strict=True):
        best_m = _where((r <= tie) & (c < best_m), c, best_m)
    base = _fit_metallic(d, s, best_m, axis)[0]
    if not _is_torch(base):
        dtype = _float(diffuse).dtype
        base, best_m = base.astype(dtype), best_m.astype(dtype)
    return base, best_m


def _fit_metallic(d: Any, s: Any, m: Any, axis: int) -> tuple[Any, Any]:
    """Best basecolor for metallic m, and the squared residual summed over components."""
    a = 1 - m
    t = s - DIELECTRIC_F0 * a  # specular minus its dielectric part: should equal b m
    if not _is_torch(d):
        b = _clip((a * d + m * t) / (a * a + m * m), 0.0, 1.0)
        return b, _sum((b * a - d) ** 2 + (b * m - t) ** 2, axis)
    # The same operations in the same order (so the same values, bit for bit), into three buffers instead of a dozen
    # new tensors: the search evaluates this about 45 times on the whole map.
    b = (a * d).add_(m * t).div_(a * a + m * m).clamp_(0.0, 1.0)
    err = (b * a).sub_(d).square_()
    dev = (b * m).sub_(t).square_()
    return b, err.add_(dev).sum(dim=axis, keepdim=True)


def _golden_section(f: Any, centre: Any, half_width: float, iterations: int) -> Any:
    """Per-element minimum of f on [centre - half_width, centre + half_width] clipped to [0, 1]."""
    g = (math.sqrt(5) - 1) / 2
    lo, hi = _clip(centre - half_width, 0.0, 1.0), _clip(centre + half_width, 0.0, 1.0)
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(iterations):
        left = f1 < f2  # the minimum lies in [lo, x2]
        hi, lo = _where(left, x2, hi), _where(left, lo, x1)
        new = _where(left, hi - g * (hi - lo), lo + g * (hi - lo))
        fn = f(new)
        x1, x2, f1, f2 = (
            _where(left, new, x2),
            _where(left, x1, new),
            _where(left, fn, f2),
            _where(left, f1, fn),
        )
    return (lo + hi) / 2


# --- intrinsic shading -----------------------------------------------------------------------------


def inverse_shading(shading: A) -> A:
    """The bounded picture of diffuse shading S: (S / (1 + S)) ** (1 / 2.2), S clipped at 0."""
    s = _clip(_float(shading), 0.0, None)
    return (s / (1 + s)) ** (1 / DEFAULT_GAMMA)


def shading_from_inverse(v: A, *, max_shading: float = 1e4) -> A:
    """Inverse of `inverse_shading`; v = 1 means S = infinity, so S is capped at `max_shading`."""
    t = _clip(_float(v), 0.0, 1.0) ** DEFAULT_GAMMA
    t = _clip(t, None, max_shading / (1 + max_shading))
    return t / (1 - t)
