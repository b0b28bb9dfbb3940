"""A material's files for inpaint --maps: the glTF pair in and back in step, DirectX normals kept DirectX."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from teamwork_cli.core.conventions import basecolor_to_diffuse_specular, diffuse_specular_to_basecolor
from teamwork_cli.tasks import inpaint_material as M


def _png(path, array):
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path


def test_diffuse_and_specular_come_from_basecolor_and_metallic(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "basecolor": _png(tmp_path / "b.png", rng.random((8, 8, 3))),
        "metallic": _png(tmp_path / "m.png", rng.random((8, 8))),
        "roughness": _png(tmp_path / "r.png", rng.random((8, 8))),
    }
    both = M.read_maps(files, ["diffuse", "specular", "roughness"])
    d, s = basecolor_to_diffuse_specular(both["basecolor"].values, both["metallic"].values)
    torch.testing.assert_close(both["diffuse"].values, d)
    torch.testing.assert_close(both["specular"].values, s)
    assert set(both) == {"basecolor", "metallic", "roughness", "diffuse", "specular"}
    # No metallic file: a dielectric.
    both = M.read_maps({"basecolor": files["basecolor"]}, ["diffuse", "specular"])
    torch.testing.assert_close(both["specular"].values, torch.full_like(both["specular"].values, 0.04))


def test_write_back_refits_the_gltf_pair_in_the_hole_only_and_flips_directx_normals():
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:5, 3:7] = 1
    hole = mask.bool()
    base, metal = torch.rand(1, 3, 8, 8, generator=g), torch.rand(1, 1, 8, 8, generator=g)
    both = {"basecolor": M.MapFile(base, base, None), "metallic": M.MapFile(metal, metal, None)}
    n = torch.nn.functional.normalize(torch.rand(1, 3, 8, 8, generator=g) + 0.5, dim=1)
    filled = {"diffuse": torch.rand(1, 3, 8, 8, generator=g), "specular": torch.rand(1, 3, 8, 8, generator=g) * 0.5}
    out = M.write_back({**filled, "normals": n}, both, mask, directx=True)
    b_fit, m_fit = diffuse_specular_to_basecolor(filled["diffuse"], filled["specular"], axis=1)
    torch.testing.assert_close(out["basecolor"], torch.where(hole, b_fit.clamp(0, 1), base))
    torch.testing.assert_close(out["metallic"], torch.where(hole, m_fit.clamp(0, 1), metal))
    flipped = n.clone()
    flipped[:, 1:2] = torch.where(hole, -n[:, 1:2], n[:, 1:2])
    assert torch.equal(out["normals"], flipped)
    assert set(M.write_back(filled, {}, mask)) == {"diffuse", "specular"}  # no glTF pair given: none written


def test_directx_normals_are_seen_as_opengl_and_kept_as_stored(tmp_path):
    rng = np.random.default_rng(2)
    f = _png(tmp_path / "n.png", rng.random((8, 8, 3)))
    plain, dx = (
        M.read_maps({"normals": f}, ["normals"])["normals"],
        M.read_maps({"normals": f}, ["normals"], directx=True),
    )
    dx = dx["normals"]
    assert torch.equal(dx.encoded[:, 1], 1 - plain.encoded[:, 1]) and torch.equal(
        dx.encoded[:, ::2], plain.encoded[:, ::2]
    )
    assert torch.equal(dx.values, plain.values)
