"""Flash renderer and scores against docs/conventions.md sections 3 and 4."""

from __future__ import annotations

import math

import pytest
import torch

from teamwork_cli.graphics import render as R


def _maps(b: int, h: int, w: int, diffuse=1.0, specular=0.0, roughness=0.5) -> dict[str, torch.Tensor]:
    n = torch.zeros(b, 3, h, w)
    n[:, 2] = 1.0
    return {
        "diffuse": torch.full((b, 3, h, w), diffuse),
        "specular": torch.full((b, 3, h, w), specular),
        "roughness": torch.full((b, 1, h, w), roughness),
        "normals": n,
    }


def test_patch_positions_and_camera_height() -> None:
    p = R.patch_positions(4, 2)
    assert p.shape == (3, 4, 2)
    assert p[:, 0, 0].tolist() == pytest.approx([-0.5, 0.75, 0.0])
    assert p[:, 3, 1].tolist() == pytest.approx([0.5, -0.75, 0.0])
    assert R.camera_height() == pytest.approx(2.41421, abs=1e-5)


def test_white_lambertian_centre_renders_one() -> None:
    m = _maps(1, 33, 33)
    for out in (R.render(**m), R.render_flash(**m)):
        assert out[0, :, 16, 16].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)
        assert out.max().item() <= 1.0 + 1e-4  # the centre is the closest, most frontal point


def test_specular_peak_at_centre_under_flash() -> None:
    m = _maps(2, 65, 65, diffuse=0.0, specular=0.04, roughness=0.1)
    out = R.render_flash(**m)
    assert int(out[0, 0].argmax()) == 32 * 65 + 32
    assert out[0, 0, 32, 32] > 10 * out[0, 0, 32, 40]


def _hand_radiance(i: int, j: int, size: int, light: tuple, cam: tuple, n: tuple, rho, f0, r: float):
    """docs/conventions.md section 3 worked in plain Python for one pixel."""

    def norm(a):
        s = math.sqrt(sum(x * x for x in a))
        return [x / s for x in a]

    def dot(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    p = (-1 + (2 * j + 1) / size, 1 - (2 * i + 1) / size, 0.0)
    to_l = [a - b for a, b in zip(light, p, strict=True)]
    d2 = dot(to_l, to_l)
    lv, vv = norm(to_l), norm([a - b for a, b in zip(cam, p, strict=True)])
    hv = norm([a + b for a, b in zip(lv, vv, strict=True)])
    n = norm(n)
    alpha = r * r
    nh, nl, nv, vh = dot(n, hv), dot(n, lv), dot(n, vv), dot(vv, hv)
    dd = alpha**2 / (math.pi * (nh * nh * (alpha**2 - 1) + 1) ** 2)
    k = alpha / 2

    def g1(x):
        return x / (x * (1 - k) + k)

    out = []
    for c in range(3):
        f = f0[c] + (1 - f0[c]) * (1 - vh) ** 5
        brdf = rho[c] / math.pi + dd * f * g1(nl) * g1(nv) / (4 * nl * nv)
        out.append(brdf * math.pi * R.camera_height() ** 2 * max(nl, 0) / d2)
    return out


@pytest.mark.parametrize("light_xy", [(0.0, 0.0), (1.0, -1.0), (-0.5, 0.7)])
def test_matches_hand_computation(light_xy: tuple[float, float]) -> None:
    size, h = 9, R.camera_height()
    rho, f0, rough, nvec = (0.2, 0.5, 0.1), (0.9, 0.6, 0.3), 0.4, (0.3, -0.2, 1.0)
    n = torch.tensor(nvec) / torch.tensor(nvec).norm()
    maps = {
        "diffuse": torch.tensor(rho).view(1, 3, 1, 1).expand(1, 3, size, size),
        "specular": torch.tensor(f0).view(1, 3, 1, 1).expand(1, 3, size, size),
        "roughness": torch.full((1, 1, size, size), rough),
        "normals": n.view(1, 3, 1, 1).expand(1, 3, size, size),
    }
    light = (light_xy[0], light_xy[1], h)
    out = R.render(**maps, light=light, camera=(0.0, 0.0, h)).double()
    for i, j in [(0, 0), (4, 4), (2, 7), (8, 3)]:
        want = _hand_radiance(i, j, size, light, (0.0, 0.0, h), nvec, rho, f0, rough)
        assert out[0, :, i, j].tolist() == pytest.approx(want, rel=1e-4)
    if light_xy == (0.0, 0.0):  # the colocated fast path is the same formula
        assert torch.allclose(R.render_flash(**maps), out.float(), rtol=1e-4)


def test_batched_light_tensor_and_directional() -> None:
    m = _maps(2, 8, 8, specular=0.04)
    lights = torch.tensor([[0.0, 0.0, R.camera_height()], [1.0, 1.0, R.camera_height()]])
    out = R.render(**m, light=lights)
    assert torch.allclose(out[0], R.render_flash(**m)[0], rtol=1e-4)
    assert not torch.allclose(out[1], out[0])
    flat = R.render(**_maps(1, 8, 8), light=(0.0, 0.0, 1.0), light_type="directional")
    assert flat.min().item() > 0.98 and flat.max().item() < 1.02  # white Lambertian under E = pi


def test_halfway_map_is_normalized_camera_direction() -> None:
    hw = R.halfway_map(6, 10, fov_deg=30.0)
    p = R.patch_positions(6, 10)
    cam = torch.tensor([0.0, 0.0, R.camera_height(30.0)]).view(3, 1, 1)
    want = (cam - p) / (cam - p).norm(dim=0, keepdim=True)
    assert torch.allclose(hw, want, atol=1e-6)


def test_to_photo_is_clipped_srgb() -> None:
    x = torch.tensor([-1.0, 0.0, 0.001, 0.5, 1.0, 3.0])
    y = R.to_photo(x)
    assert y[0] == 0 and y[-1] == pytest.approx(1.0) and y[4] == pytest.approx(1.0)
    assert y[2] == pytest.approx(0.01292, rel=1e-4)
    assert y[3] == pytest.approx(1.055 * 0.5 ** (1 / 2.4) - 0.055, rel=1e-5)


def test_scores() -> None:
    gt = _maps(2, 16, 16, diffuse=0.3, specular=0.04)
    assert R.render_rmse(gt, gt) == 0.0
    assert R.map_rmse(gt, gt, "normals") == 0.0
    pred = dict(gt, diffuse=gt["diffuse"] + 0.1)
    assert R.map_rmse(pred, gt, "diffuse") == pytest.approx(0.1, rel=1e-4)
    assert R.render_rmse(pred, gt) > 0.01
    flipped = dict(gt, normals=-gt["normals"])
    assert R.map_rmse(flipped, gt, "normals") == pytest.approx(math.sqrt(1 / 3), rel=1e-4)  # z: 0 vs 1


def test_gradients_flow() -> None:
    m = {k: v.clone().requires_grad_() for k, v in _maps(1, 8, 8, diffuse=0.5, specular=0.2).items()}
    (R.to_photo(R.render(**m, light=(0.5, 0.5, 2.0))).sum() + R.render_flash(**m).sum()).backward()
    for k, v in m.items():
        assert v.grad is not None and torch.isfinite(v.grad).all(), k
        assert v.grad.abs().sum() > 0, k


@pytest.mark.parametrize(("h", "w"), [(37, 23), (8, 64)])
def test_flash_terms_of_a_band_of_rows_are_that_part_of_the_whole(h, w) -> None:
    g = torch.Generator().manual_seed(4)
    rough = torch.rand(2, 1, h, w, generator=g)
    normals = torch.nn.functional.normalize(torch.randn(2, 3, h, w, generator=g).abs() + 0.1, dim=1)
    spec, shading = R.flash_terms(rough, normals)
    for start, stop in ((0, 1), (3, 11), (h - 2, h), (0, h)):
        part = R.flash_terms(rough[..., start:stop, :], normals[..., start:stop, :], rows=(start, h))
        assert torch.equal(part[0], spec[..., start:stop, :]) and torch.equal(part[1], shading[..., start:stop, :])
    assert torch.equal(R.patch_positions(h, w, rows=(1, h - 1)), R.patch_positions(h, w)[:, 1 : h - 1])


def test_flash_geometry_is_cached_for_small_patches_only(monkeypatch) -> None:
    small = R._flash_geometry(16, 16, 45.0, torch.device("cpu"), torch.float32)
    assert R._flash_geometry(16, 16, 45.0, torch.device("cpu"), torch.float32)[0] is small[0]
    monkeypatch.setattr(R, "GEOMETRY_CACHE_PIXELS", 255)  # 16 x 16 is now a large patch: made per call
    fresh = R._flash_geometry(16, 16, 45.0, torch.device("cpu"), torch.float32)
    assert fresh[0] is not small[0] and torch.equal(fresh[0], small[0]) and torch.equal(fresh[1], small[1])
