"""The harmonic hole fill and the blank an inpainting team is shown in a hole."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.graphics.holefill import _cg, blank, harmonic_fill


def hole(size: int, lo: int, hi: int) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size)
    m[..., lo:hi, lo:hi] = 1
    return m


def test_known_pixels_stay_and_harmonic_images_are_reproduced():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    ramp = torch.stack([0.2 + 0.5 * xx, 0.7 - 0.3 * yy, 0.3 + 0.2 * xx - 0.1 * yy]).unsqueeze(0)  # affine: harmonic
    m = hole(96, 20, 70)
    noisy = ramp * (1 - m) + torch.rand_like(ramp) * m  # the hole's content must not leak into the fill
    out = harmonic_fill(noisy, m)
    assert torch.equal(out * (1 - m), noisy * (1 - m))
    torch.testing.assert_close(out, ramp, atol=1e-4, rtol=0)
    const = torch.full((2, 1, 40, 40), 0.3)
    torch.testing.assert_close(harmonic_fill(const, hole(40, 5, 30)), const)


def test_coarse_to_fine_matches_the_exact_solve_and_its_maximum_principle():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g)
    m = hole(128, 10, 100)
    exact = _cg(x, m.expand_as(x), torch.zeros_like(x), 4000, 1e-14)
    fast = harmonic_fill(x, m)  # the default 200 iterations per level
    assert (fast - exact).abs().max() < 1e-4
    inside = fast[m.expand_as(x) > 0]
    assert inside.min() >= x.min() and inside.max() <= x.max()  # a harmonic function peaks on its boundary


def test_blank_fills_and_rejects_unknown_kinds():
    x = torch.rand(1, 3, 32, 32)
    m = hole(32, 8, 24)
    assert torch.equal(blank(x, m) * m, 0.5 * m.expand_as(x))
    torch.testing.assert_close(blank(x, m, "harmonic"), harmonic_fill(x, m).clamp(0, 1))
    with pytest.raises(ValueError, match="hole fill must be one of grey, harmonic; got 'mean'"):
        blank(x, m, "mean")
