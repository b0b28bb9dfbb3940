"""Finding a material's maps, including texture-library names such as Poly Haven's normal_opengl.jpg, and
loading them with defaults for what is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from teamwork_cli.materials.folders import find_material, load_material

SIZE = 16


def test_texture_library_names(tmp_path, write_png):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "basecolor.jpg", rng.random((8, 8, 3)))
    write_png(tmp_path / "normal_opengl.jpg", np.dstack([np.full((8, 8), 0.5)] * 2 + [np.ones((8, 8))]))
    write_png(tmp_path / "roughness.jpg", np.full((8, 8, 3), 0.8))
    m = find_material(tmp_path)
    assert set(m.files) == {"basecolor", "normals", "roughness"}
    maps = load_material(tmp_path)
    assert maps["normals"].shape == (1, 3, 8, 8)
    assert abs(float(maps["normals"][0, 2].mean()) - 1.0) < 1e-2


def test_prefixed_alias(tmp_path, write_png):
    write_png(tmp_path / "brick_diffuse.png", np.full((4, 4, 3), 0.5))
    write_png(tmp_path / "brick_normal_gl.png", np.dstack([np.full((4, 4), 0.5)] * 2 + [np.ones((4, 4))]))
    assert set(find_material(tmp_path / "brick").files) == {"diffuse", "normals"}


def test_load_material_folder_prefix_and_defaults(tmp_path: Path, make_material) -> None:
    make_material(tmp_path / "bare", stem="", channels=("diffuse",))
    m = load_material(tmp_path / "bare")
    assert {k: tuple(v.shape) for k, v in m.items()} == {
        "diffuse": (1, 3, SIZE, SIZE),
        "specular": (1, 3, SIZE, SIZE),
        "roughness": (1, 1, SIZE, SIZE),
        "normals": (1, 3, SIZE, SIZE),
    }
    assert torch.allclose(m["specular"], torch.full_like(m["specular"], 0.04))
    assert torch.allclose(m["normals"][0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    make_material(tmp_path / "two", "brick")
    make_material(tmp_path / "two", "tile", channels=("basecolor", "metallic"))
    tile = load_material(tmp_path / "two" / "tile", size=8)
    assert tile["diffuse"].shape == (1, 3, 8, 8) and "basecolor" in tile and "metallic" in tile
    # diffuse = basecolor (1 - metallic) (docs/conventions.md section 1)
    assert torch.allclose(tile["diffuse"], tile["basecolor"] * (1 - tile["metallic"]), atol=1e-6)
    assert find_material(tmp_path / "two" / "brick").files.keys() == {"diffuse", "specular", "roughness", "normals"}


def _library_folder(folder: Path, names: dict[str, str]) -> dict[str, np.ndarray]:
    """Write maps under texture-library names (channel -> file name); returns the values written."""
    from teamwork_cli.materials.write import write_map

    folder.mkdir()
    rng = np.random.default_rng(3)
    n = rng.normal(size=(8, 8, 3)).astype(np.float32) + np.float32([0, 0, 3])
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    values = {
        "basecolor": rng.random((8, 8, 3)),
        "roughness": rng.random((8, 8)),
        "metallic": rng.random((8, 8)),
        "normals": n,
    }
    for channel, name in names.items():
        write_map(folder / name, values[channel], channel)
    (folder / next(iter(names.values())).replace("diff", "arm").replace("Color", "AmbientOcclusion")).write_bytes(
        (folder / next(iter(names.values()))).read_bytes()
    )  # an extra map of the library: ignored
    return values


def test_poly_haven_names_read_without_renaming(tmp_path: Path) -> None:
    from teamwork_cli.materials.folders import read_material

    names = {
        "basecolor": "brick_diff_1k.png",
        "normals": "brick_nor_dx_1k.png",
        "roughness": "brick_rough_1k.png",
        "metallic": "brick_metal_1k.png",
    }
    values = _library_folder(tmp_path / "ph", names)
    m = find_material(tmp_path / "ph")
    assert m.stem == "brick" and set(m.files) == {"basecolor", "normals", "roughness", "metallic"}
    maps, notes = read_material(m)
    assert any("brick_diff_1k.png: read as basecolor" in n for n in notes)
    assert any("DirectX normal map by its name" in n for n in notes)
    got = maps["normals"][0].permute(1, 2, 0).numpy()
    assert np.allclose(got[..., 1], -values["normals"][..., 1], atol=2e-3)  # +Y down in the file: flipped
    assert np.allclose(got[..., 0], values["normals"][..., 0], atol=2e-3)


def test_ambientcg_names_read_without_renaming(tmp_path: Path) -> None:
    names = {
        "basecolor": "Bricks075A_1K-JPG_Color.png",
        "normals": "Bricks075A_1K-JPG_NormalGL.png",
        "roughness": "Bricks075A_1K-JPG_Roughness.png",
        "metallic": "Bricks075A_1K-JPG_Metalness.png",
    }
    values = _library_folder(tmp_path / "acg", names)
    m = find_material(tmp_path / "acg")
    assert m.stem == "Bricks075A" and set(m.files) == set(names) and not m.directx_normals
    maps = load_material(tmp_path / "acg")
    assert np.allclose(maps["normals"][0].permute(1, 2, 0).numpy(), values["normals"], atol=2e-3)  # OpenGL: as is
    assert np.allclose(maps["basecolor"][0].permute(1, 2, 0).numpy(), values["basecolor"], atol=2e-3)
