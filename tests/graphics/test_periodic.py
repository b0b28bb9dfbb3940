"""The periodic-plus-smooth decomposition (Moisan 2011) and the seamless maps made from it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.graphics.periodic import (
    boundary_image,
    edge_taper,
    periodic_component,
    seam_score,
    seamless,
    seamless_maps,
    smooth_component,
)


def textured(n: int = 2, c: int = 3, h: int = 96, w: int = 80, seed: int = 0) -> torch.Tensor:
    """Smooth noise on a ramp: a picture that does not tile (a strong jump at both wrap seams)."""
    g = torch.Generator().manual_seed(seed)
    noise = F.avg_pool2d(torch.rand(n, c, h + 4, w + 4, generator=g), 5, 1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return 0.2 + 0.3 * noise + 0.4 * xx * yy


def periodic_laplacian(x: torch.Tensor) -> torch.Tensor:
    return sum(torch.roll(x, s, d) for s in (1, -1) for d in (-2, -1)) - 4 * x


def free_laplacian(x: torch.Tensor) -> torch.Tensor:
    """The Laplacian with the free boundary condition: only neighbours inside the frame count."""
    out = torch.zeros_like(x)
    for dim in (-2, -1):
        d = x.diff(dim=dim)
        out.narrow(dim, 0, x.shape[dim] - 1).add_(d)
        out.narrow(dim, 1, x.shape[dim] - 1).sub_(d)
    return out


def test_a_picture_that_does_not_tile_becomes_periodic():
    u = textured().double()
    assert seam_score(u) > 3
    p = periodic_component(u)
    assert seam_score(p) < 1.1  # the wrap seam no rougher than the interior
    # p's periodic Laplacian is u's own inside the frame (Moisan's defining property), and its mean is u's.
    torch.testing.assert_close(periodic_laplacian(p), free_laplacian(u), atol=1e-9, rtol=0)
    torch.testing.assert_close(p.mean((-2, -1)), u.mean((-2, -1)), atol=1e-9, rtol=0)


def test_smooth_component_solves_the_periodic_poisson_equation_and_has_zero_mean():
    u = textured(1, 1, 64, 64, seed=3).double()
    s = smooth_component(u)
    torch.testing.assert_close(periodic_laplacian(s), boundary_image(u), atol=1e-9, rtol=0)
    assert s.mean().abs() < 1e-12


def test_an_image_whose_edges_already_meet_is_unchanged():
    # Moisan's p leaves u alone exactly where the boundary image is zero: each last row (column) repeats the first
    g = torch.Generator().manual_seed(1)
    u = torch.rand(1, 3, 64, 48, generator=g, dtype=torch.float64)
    u[..., -1, :] = u[..., 0, :]
    u[..., :, -1] = u[..., :, 0]
    assert boundary_image(u).abs().max() == 0
    torch.testing.assert_close(periodic_component(u), u, atol=1e-12, rtol=0)
    const = torch.full((2, 1, 16, 16), 0.25)
    torch.testing.assert_close(seamless(const, 4), const)


def test_a_smooth_periodic_image_moves_by_less_than_one_neighbour_step():
    # One that wraps with an ordinary step across the seam is not a fixed point (the seam's step is treated as a
    # jump and smoothed), but it changes by less than its own steps, and only near the edges.
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    wave = (torch.sin(2 * math.pi * 3 * xx / 48) * torch.cos(2 * math.pi * 2 * yy / 64)).double()[None, None]
    step = max(wave.diff(dim=d).abs().max().item() for d in (-2, -1))
    change = (periodic_component(wave) - wave).abs()
    assert change.max() < step
    assert change[..., 16:-16, 16:-16].max() < change.max() / 4


def test_shapes_and_dtypes_are_kept():
    for shape in ((32, 24), (3, 32, 24), (2, 3, 17, 9)):
        for dtype in (torch.float32, torch.float64):
            u = torch.rand(shape, dtype=dtype)
            for out in (periodic_component(u), seamless(u, 4), smooth_component(u)):
                assert out.shape == u.shape and out.dtype == u.dtype


def test_the_band_keeps_the_interior_and_the_seam_of_the_whole_decomposition():
    u = textured().double()
    band = 12
    out = seamless(u, band)
    torch.testing.assert_close(out[..., band:-band, band:-band], u[..., band:-band, band:-band], atol=0, rtol=0)
    p = periodic_component(u)
    for dim in (-2, -1):  # the edge pixels are p's, so the seam is p's seam
        for i in (0, -1):
            torch.testing.assert_close(out.select(dim, i), p.select(dim, i), atol=1e-12, rtol=0)
    assert seam_score(out) < 1.1
    t = edge_taper(40, 30, 8)
    assert t.shape == (40, 30) and t[0].eq(1).all() and t[:, -1].eq(1).all() and t[8:-8, 8:-8].eq(0).all()
    assert (t[1:8, 15].diff() < 0).all()  # falls monotonically into the frame


def test_seamless_maps_treats_a_team_jointly_in_its_encodings():
    g = torch.Generator().manual_seed(2)
    u = textured(1, 3, 64, 64)
    normals = F.normalize(torch.cat([u[:, :2] - 0.5, torch.ones(1, 1, 64, 64)], 1), dim=1)
    maps = {"diffuse": u, "roughness": u[:, :1], "normals": normals, "depth": torch.rand(1, 1, 64, 64, generator=g)}
    band = 10
    out = seamless_maps(maps, band)
    assert out.keys() == maps.keys()
    for c, x in out.items():
        assert x.shape == maps[c].shape and x.dtype == maps[c].dtype
        assert torch.equal(x[..., band:-band, band:-band], maps[c][..., band:-band, band:-band])
    torch.testing.assert_close(out["normals"].norm(dim=1), torch.ones(1, 64, 64))  # renormalised
    assert seam_score(out["roughness"]) < 1.1 and seam_score(out["diffuse"]) < 1.1
    # the encoding is what tiles: the sRGB-encoded diffuse map is the seamless one of the encoded input
    torch.testing.assert_close(
        encode("diffuse", out["diffuse"]), seamless(encode("diffuse", u), band), atol=1e-5, rtol=0
    )
    # values a float file holds beyond the encoding's range survive outside the band
    hdr = {"roughness": torch.full((1, 1, 32, 32), 1.5)}
    assert torch.equal(seamless_maps(hdr, 4)["roughness"][..., 4:-4, 4:-4], hdr["roughness"][..., 4:-4, 4:-4])


def test_seam_score_reads_a_seam_and_a_flat_image():
    u = textured(1, 1, 32, 32)
    assert seam_score(u) > 3 and seam_score(torch.roll(u, (16, 16), (-2, -1))) < 1.5  # rolled: the wrap is inside
    assert math.isnan(seam_score(torch.ones(8, 8)))


def _reference_smooth(u: torch.Tensor) -> torch.Tensor:
    """Moisan's s by eq. 12 as written: the 2-D FFT of the whole boundary image, in float64."""
    h, w = u.shape[-2:]
    q, r = torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64)
    denom = 2 * torch.cos(2 * math.pi * q / h)[:, None] + 2 * torch.cos(2 * math.pi * r / w)[None, :] - 4
    denom[0, 0] = 1.0
    s_hat = torch.fft.fft2(boundary_image(u.double())) / denom
    s_hat[..., 0, 0] = 0
    return torch.fft.ifft2(s_hat).real.to(u.dtype)


@pytest.mark.parametrize(("h", "w"), [(64, 48), (33, 17), (1, 9), (2, 2)])
def test_the_smooth_component_from_the_edges_equals_the_full_fft(h, w):
    u = textured(2, 3, h, w, seed=5) if h > 1 else torch.rand(2, 3, h, w, dtype=torch.float64)
    torch.testing.assert_close(smooth_component(u.double()), _reference_smooth(u.double()), atol=1e-12, rtol=0)
    torch.testing.assert_close(smooth_component(u.float()), _reference_smooth(u.float()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("band", [3, 10, 40])
def test_seamless_maps_in_the_band_equals_seamless_on_the_whole_maps(band):
    u = textured(1, 3, 48, 40, seed=6)
    normals = F.normalize(torch.cat([u[:, :2] - 0.5, torch.ones(1, 1, 48, 40)], 1), dim=1)
    maps = {"diffuse": u, "roughness": u[:, 1:2] * 1.2, "normals": normals}
    out = seamless_maps(maps, band)
    for c, x in maps.items():  # the definition: seamless in the encoding, decoded, the given values beyond the band
        taper = edge_taper(48, 40, band)
        whole = torch.where(taper > 0, decode(c, seamless(encode(c, x), band)), x)
        torch.testing.assert_close(out[c], whole, atol=1e-6, rtol=0)
    own = {c: x.clone() for c, x in maps.items()}
    inplace = seamless_maps(own, band, inplace=True)
    for c in maps:
        assert inplace[c] is own[c] and torch.equal(inplace[c], out[c])
