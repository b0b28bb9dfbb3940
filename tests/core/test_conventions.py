"""Conventions (docs/conventions.md section 1): transfer curves, normals, material conversions, shading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from teamwork_cli.core import conventions as cv

RNG = np.random.default_rng(7)


def test_srgb_reference_values_and_round_trip() -> None:
    # IEC 61966-2-1: mid grey 0.5 encodes 0.21404 linear; the two segments meet at 0.04045.
    assert cv.srgb_to_linear(np.float32(0.5)) == pytest.approx(0.214041, abs=1e-6)
    assert cv.srgb_to_linear(np.array([0.0, 1.0])) == pytest.approx([0.0, 1.0])
    edge = np.array([0.04045 - 1e-7, 0.04045 + 1e-7])
    assert abs(np.diff(cv.srgb_to_linear(edge))[0]) < 1e-6
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(cv.linear_to_srgb(cv.srgb_to_linear(x)) - x).max() < 1e-6
    t = torch.linspace(0, 1, 101)
    assert torch.allclose(cv.srgb_to_linear(cv.linear_to_srgb(t)), t, atol=1e-6)


def test_srgb_extends_beyond_unit_range_without_nan() -> None:
    x = np.array([-0.5, 2.0])
    assert np.isfinite(cv.srgb_to_linear(x)).all() and np.isfinite(cv.linear_to_srgb(x)).all()
    assert cv.srgb_to_linear(cv.linear_to_srgb(x)) == pytest.approx(x)
    t = torch.tensor([0.0, 0.5], requires_grad=True)
    cv.srgb_to_linear(t).sum().backward()
    assert torch.isfinite(t.grad).all()


def test_gamma_round_trip() -> None:
    x = np.linspace(0, 1, 11)
    assert cv.gamma_to_linear(np.float64(0.5)) == pytest.approx(0.5**2.2)
    assert cv.linear_to_gamma(cv.gamma_to_linear(x)) == pytest.approx(x)


def _unit(shape: tuple[int, ...]) -> np.ndarray:
    v = RNG.normal(size=shape)
    v[..., 2] = np.abs(v[..., 2])
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_normals_gl_dx_flip_y() -> None:
    n = _unit((4, 5, 3))
    dx = cv.normals_gl_to_dx(n)
    assert dx[..., 1] == pytest.approx(-n[..., 1]) and dx[..., ::2] == pytest.approx(n[..., ::2])
    assert cv.normals_dx_to_gl(dx) == pytest.approx(n)
    t = torch.from_numpy(n).permute(2, 0, 1)  # channels first
    assert torch.allclose(cv.normals_gl_to_dx(t, axis=-3)[1], -t[1])
    with pytest.raises(ValueError, match="3 components"):
        cv.normals_gl_to_dx(np.zeros((2, 2, 2)))


def test_normal_encoding_round_trip_and_zero_vector() -> None:
    n = _unit((6, 6, 3))
    e = cv.encode_normals(n)
    assert e.min() >= 0 and e.max() <= 1
    assert cv.decode_normals(e) == pytest.approx(n, abs=1e-6)
    coarse = np.round(e * 255) / 255  # 8-bit quantisation, then renormalised
    assert np.linalg.norm(cv.decode_normals(coarse), axis=-1) == pytest.approx(1.0, abs=1e-6)
    assert cv.decode_normals(np.full((1, 1, 3), 0.5)) == pytest.approx(np.array([[[0, 0, 1.0]]]))


@pytest.mark.parametrize("axis", [-1, -3])
def test_normalize_matches_the_straightforward_formula(axis: int) -> None:
    rng = np.random.default_rng(5)
    shape = (2, 7, 5, 3) if axis == -1 else (2, 3, 7, 5)
    v = rng.normal(size=shape) * rng.choice([1e-3, 1.0, 1e3], size=shape)  # lengths over six decades
    straight = v / np.sqrt((v * v).sum(axis=axis, keepdims=True))
    assert np.abs(cv.normalize(v, axis=axis) - straight).max() < 1e-6
    t = torch.tensor(v, dtype=torch.float32)
    got = cv.normalize(t, axis=axis)
    assert got.dtype == torch.float32 and got.shape == t.shape
    assert (got.double() - torch.tensor(straight)).abs().max() < 1e-6
    # Its gradient is the formula's, which autograd differentiates through v / |v| (float64: the short vectors'
    # gradients are large, and float32 cancellation would blur the comparison).
    a, b = (torch.tensor(v).requires_grad_(True) for _ in range(2))
    w = torch.tensor(rng.random(shape))
    (cv.normalize(a, axis=axis) * w).sum().backward()
    (b / (b * b).sum(axis, keepdim=True).sqrt() * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12 * b.grad.abs().max().item())


def test_normalize_zero_vectors_and_other_sizes() -> None:
    v = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0], [1e-13, 0.0, 0.0]])
    assert cv.normalize(v) == pytest.approx(np.array([[0, 0, 1.0], [0.6, 0, 0.8], [0, 0, 1.0]]))
    t = torch.zeros(1, 3, 2, 2)
    t[0, :, 0, 0] = torch.tensor([0.0, 2.0, 0.0])
    got = cv.normalize(t, axis=-3)
    assert got[0, :, 0, 0].tolist() == [0.0, 1.0, 0.0] and got[0, :, 1, 1].tolist() == [0.0, 0.0, 1.0]
    two = cv.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))  # not 3-vectors: no +Z, zeros stay zeros
    assert two == pytest.approx(np.array([[0.6, 0.8], [0.0, 0.0]]))
    assert cv.normalize(torch.tensor([[5.0, 0.0, 12.0]], dtype=torch.float64)).dtype == torch.float64


def test_roughness_glossiness() -> None:
    r = RNG.random((3, 3))
    assert cv.roughness_to_glossiness(r) == pytest.approx(1 - r)
    assert cv.glossiness_to_roughness(cv.roughness_to_glossiness(r)) == pytest.approx(r)


def _materials() -> tuple[np.ndarray, np.ndarray]:
    base = RNG.random((24, 24, 3)).astype(np.float32)
    metal = RNG.random((24, 24, 1)).astype(np.float32)
    metal[:4], metal[4:8] = 0.0, 1.0  # pure dielectrics and pure metals
    base[8:10] = 0.0
    return base, metal


def test_metal_roughness_forward() -> None:
    base, metal = _materials()
    d, s = cv.basecolor_to_diffuse_specular(base, metal)
    assert d[:4] == pytest.approx(base[:4]) and s[:4] == pytest.approx(0.04)
    assert d[4:8] == pytest.approx(0.0) and s[4:8] == pytest.approx(base[4:8])


@pytest.mark.parametrize("use_torch", [False, True])
def test_metal_roughness_inverse_exact_on_forward_data(use_torch: bool) -> None:
    base, metal = _materials()
    d, s = cv.basecolor_to_diffuse_specular(base, metal)
    if use_torch:
        d, s = torch.from_numpy(d).double(), torch.from_numpy(s).double()
    b2, m2 = cv.diffuse_specular_to_basecolor(d, s)
    b2, m2 = np.asarray(b2), np.asarray(m2)
    assert m2.shape == metal.shape
    assert np.abs(m2 - metal).max() < 1e-5
    # Where metallic is 1 the diffuse is 0 and fixes nothing; otherwise basecolor is recovered.
    assert np.abs(b2 - base).max() < 1e-5


def test_metal_roughness_inverse_stays_in_range_on_arbitrary_data() -> None:
    d, s = RNG.random((8, 8, 3)), RNG.random((8, 8, 3))
    b, m = cv.diffuse_specular_to_basecolor(d, s)
    assert 0 <= b.min() and b.max() <= 1 and 0 <= m.min() and m.max() <= 1
    # The chosen metallic is at least as good as any on a fine grid (least squares).
    best = min(cv._fit_metallic(d, s, np.full_like(m, k / 200), -1)[1].sum() for k in range(201))
    assert cv._fit_metallic(d, s, m, -1)[1].sum() <= best + 1e-9


def test_metal_roughness_inverse_agrees_with_a_finer_search_on_random_and_real_maps() -> None:
    from teamwork_cli.materials.read import read_map

    root = Path(__file__).resolve().parents[2] / "examples" / "material"
    real = [read_map(root / f"{c}.png", c) for c in ("diffuse", "specular")]
    noisy = [RNG.random((64, 64, 3)), RNG.random((64, 64, 3)) * 0.3]  # arbitrary pairs, metals and dielectrics
    for d, s in (real, noisy):
        for x, y in ((d, s), (torch.from_numpy(d), torch.from_numpy(s))):  # float32 tensors, as svbrdf runs it
            b, m = cv.diffuse_specular_to_basecolor(x, y)
            b64, m64 = cv.diffuse_specular_to_basecolor(x, y, iterations=64)
            assert np.abs(np.asarray(m) - np.asarray(m64)).max() < 1e-4
            assert np.abs(np.asarray(b) - np.asarray(b64)).max() < 1e-4


def test_inverse_shading_round_trip() -> None:
    s = np.array([0.0, 0.25, 1.0, 3.0, 50.0])
    v = cv.inverse_shading(s)
    assert v[2] == pytest.approx(0.5 ** (1 / 2.2)) and v[0] == 0 and v.max() < 1
    assert cv.shading_from_inverse(v) == pytest.approx(s, rel=1e-6)
    assert cv.shading_from_inverse(np.float64(1.0)) == pytest.approx(1e4)
    assert torch.allclose(cv.shading_from_inverse(cv.inverse_shading(torch.tensor(s))), torch.tensor(s))


def test_height_to_normals_tilted_plane() -> None:
    rows, cols = np.mgrid[0:8, 0:10].astype(np.float64)
    h = 0.3 * cols - 0.2 * rows  # rises to the right and towards the top row (+Y)
    strength = 2.0
    expect = np.array([-strength * 0.3, -strength * 0.2, 1.0])
    expect /= np.linalg.norm(expect)
    n = cv.height_to_normals(h, strength, wrap=False)
    assert n.shape == (8, 10, 3) and n == pytest.approx(np.broadcast_to(expect, n.shape))
    wrapped = cv.height_to_normals(h, strength)  # edges see the wrap-around jump, the inside does not
    assert wrapped[1:-1, 1:-1] == pytest.approx(np.broadcast_to(expect, (6, 8, 3)))
    t = cv.height_to_normals(torch.from_numpy(h)[None], strength, wrap=False, axis=-3)
    assert t.shape == (1, 3, 8, 10) and torch.allclose(t[0, :, 3, 4], torch.from_numpy(expect))


def test_height_to_normals_tiles_seamlessly() -> None:
    j = np.arange(16)
    h = np.sin(2 * np.pi * j / 16)[None, :] * np.cos(2 * np.pi * j / 16)[:, None]
    n = cv.height_to_normals(h)
    tiled = cv.height_to_normals(np.tile(h, (3, 3)))[16:32, 16:32]
    assert n == pytest.approx(tiled)
