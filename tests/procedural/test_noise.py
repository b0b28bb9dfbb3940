"""Building blocks of the procedural generator: the seeded random source, periodic fields, patterns, colours."""

from __future__ import annotations

import math

import pytest
import torch

from teamwork_cli.procedural import noise as N

S = 32


def test_rng_is_reproducible_and_in_range():
    a, b = N.Rng(5), N.Rng(5)
    draws = [(a.u(), a.u(2, 3), a.logu(0.1, 10), a.i(1, 3), a.p(0.5), a.pick("xyz")) for _ in range(50)]
    assert draws == [(b.u(), b.u(2, 3), b.logu(0.1, 10), b.i(1, 3), b.p(0.5), b.pick("xyz")) for _ in range(50)]
    assert all(
        0 <= u < 1 and 2 <= v < 3 and 0.1 <= lu <= 10 and i in (1, 2, 3) and c in "xyz" for u, v, lu, i, _, c in draws
    )
    assert {i for *_, i, _, _ in draws} == {1, 2, 3}  # inclusive bounds
    assert torch.equal(N.Rng(7).randn(3, 4), N.Rng(7).randn(3, 4))
    assert not torch.equal(N.Rng(7).rand(3), N.Rng(8).rand(3))
    assert N.Rng(-1).u() == N.Rng(2**64 - 1).u()  # seeds are taken modulo 2^64


def test_weighted_choice_follows_the_weights():
    r = N.Rng(0)
    picks = [r.weighted({"a": 0.8, "b": 0.2, "never": 0.0}) for _ in range(500)]
    assert 0.7 < picks.count("a") / 500 < 0.9 and "never" not in picks


@pytest.mark.parametrize("kw", [{}, {"beta": 1.0, "fmin": 4.0}, {"fmax": 6.0}, {"stretch": 8.0, "angle": 0.5}])
def test_noise_is_standardised_and_exactly_periodic(kw):
    x = N.noise(N.Rng(1), S, 2, **kw)
    assert x.shape == (2, S, S) and torch.isfinite(x).all()
    assert x.mean(dim=(-2, -1)).abs().max() < 1e-5
    torch.testing.assert_close(x.pow(2).mean(dim=(-2, -1)), torch.ones(2), atol=1e-4, rtol=0)
    # FFT-filtered: a circular shift of the spectrum's input is a circular shift of the field, no seam at the edge
    seam = (x[..., 0] - x[..., -1]).abs().mean()
    inner = (x[..., 1:] - x[..., :-1]).abs().mean()
    assert seam < 2 * inner


def test_stretched_noise_is_smoother_along_its_angle():
    x = N.noise(N.Rng(2), 64, 1, stretch=8.0, angle=0.0)[0]
    along_rows = (x[:, 1:] - x[:, :-1]).abs().mean()  # angle 0: features elongated along columns (u)
    along_cols = (x[1:] - x[:-1]).abs().mean()
    assert along_rows < 0.5 * along_cols


def test_blur_keeps_the_mean_and_removes_detail():
    x = N.Rng(3).randn(S, S)
    y = N.blur(x, 2.0 / S)
    assert y.mean().item() == pytest.approx(x.mean().item(), abs=1e-5)
    assert y.std() < 0.5 * x.std()
    torch.testing.assert_close(N.blur(x, 0.0), x, atol=1e-5, rtol=0)


def test_blobs_peak_near_one():
    b = N.blobs(N.Rng(4), 64, 3, 3.0 / 64)
    assert b.shape == (64, 64) and b.min() > -1e-4 and 0.25 < b.max() < 1.5


def test_warp_by_whole_pixels_is_a_circular_shift():
    img = N.Rng(5).rand(2, 8, 8)
    torch.testing.assert_close(N.warp(img, torch.full((8, 8), 1.0), torch.zeros(8, 8)), img.roll(-1, dims=-1))
    torch.testing.assert_close(N.warp(img, torch.zeros(8, 8), torch.full((8, 8), -2.0)), img.roll(2, dims=-2))
    half = N.warp(img, torch.full((8, 8), 0.5), torch.zeros(8, 8))
    torch.testing.assert_close(half, (img + img.roll(-1, dims=-1)) / 2)


def test_uv_are_pixel_centres():
    u, v = N.uv(4)
    assert u[0].tolist() == [0.125, 0.375, 0.625, 0.875] and v[:, 0].tolist() == u[0].tolist()
    assert u.shape == v.shape == (4, 4) and (u[:, 1] == 0.375).all()


def test_voronoi_distances_and_cells():
    u, v = N.uv(S)
    f1, f2, cell = N.voronoi(N.Rng(6), u, v, 4, 4, 0.8)
    assert f1.shape == f2.shape == cell.shape == (S, S)
    assert (f1 <= f2).all() and (f1 >= 0).all()
    assert set(cell.unique().tolist()) <= set(range(16)) and len(cell.unique()) > 8
    grid = N.voronoi(N.Rng(6), u, v, 4, 4, 0.0)[2]  # no jitter: the cells are the grid squares
    assert torch.equal(grid, (torch.floor(v * 4) * 4 + torch.floor(u * 4)).long())


def test_bricks_layout():
    u, v = N.uv(S)
    edge, ids, fu, fv = N.bricks(u, v, 4, 2, torch.tensor([0.0, 0.5, 0.0, 0.5]))
    assert ids.min() == 0 and ids.max() == 7
    assert (edge >= 0).all() and edge.max() <= 0.25 and (0 <= fu).all() and (fu < 1).all() and (fv < 1).all()
    assert not torch.equal(ids[0], ids[S // 4])  # offset rows: the joints move


def test_smoothstep_and_threshold():
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert N.smoothstep(0.0, 1.0, x).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert N.threshold_for(0.5) == pytest.approx(0.0, abs=1e-9)
    assert N.threshold_for(0.16) == pytest.approx(0.994, abs=0.01)  # one sigma: 16 % above
    assert N.threshold_for(0.0) == N.threshold_for(-1.0)  # clamped, finite
    assert math.isfinite(N.threshold_for(1.0))


def test_slope_scaling_and_height_normals():
    h = N.noise(N.Rng(7), S, 1)[0]
    scaled = N.slope_scaled(h, 0.3)
    gx, gy = N._grad(scaled)
    assert torch.sqrt((gx * gx + gy * gy).mean()).item() == pytest.approx(0.3, rel=1e-4)
    n = N.height_to_normals(scaled.unsqueeze(0))
    assert n.shape == (3, S, S) and torch.allclose(n.norm(dim=0), torch.ones(S, S), atol=1e-5) and (n[2] > 0).all()
    flat = N.height_to_normals(torch.zeros(1, 4, 4))
    assert torch.equal(flat[2], torch.ones(4, 4)) and not flat[:2].any()
    ramp = N.height_to_normals((torch.arange(8.0) * 0.25).expand(8, 8).unsqueeze(0))  # rises to the right
    assert (ramp[0, :, 1:-1] < 0).all()  # n ~ (-dh/dx, ...): tilted left


def test_colours():
    for palette in N.PALETTES:
        c = N.colour(N.Rng(8), palette)
        assert c.shape == (3, 1, 1) and c.min() >= 0 and c.max() <= 1, palette
    assert all(len(m) == 3 and all(0 < x <= 1 for x in m) for m in N.METALS)
    c = N.colour(N.Rng(9), "stone")
    assert torch.equal(N.colour(N.Rng(9), "stone"), c)
    near = N.vary(N.Rng(10), c, 0.1)
    assert ((near / c).log().abs() < 0.15).all()
    ids = torch.tensor([[0, 1], [1, 2]])
    cells = N.per_cell(N.Rng(11), c, ids, 3, 0.5)
    assert cells.shape == (3, 2, 2) and torch.equal(cells[:, 0, 1], cells[:, 1, 0])
    assert N.mix(torch.tensor(1.0), torch.tensor(3.0), torch.tensor(0.25)).item() == 1.5
