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
