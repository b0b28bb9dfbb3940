"""Finding a material's maps, including texture-library names such as Poly Haven's normal_opengl.jpg."""

from __future__ import annotations

import numpy as np
from conftest import write_png

from teamwork_cli.materials.folders import find_material, load_material


def test_texture_library_names(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "basecolor.jpg", rng.random((8, 8, 3)))
    write_png(tmp_path / "normal_opengl.jpg", np.dstack([np.full((8, 8), 0.5)] * 2 + [np.ones((8, 8))]))
    write_png(tmp_path / "roughness.jpg", np.full((8, 8, 3), 0.8))
    m = find_material(tmp_path)
    assert set(m.files) == {"basecolor", "normals", "roughness"}
    maps = load_material(tmp_path)
    assert maps["normals"].shape == (1, 3, 8, 8)
    assert abs(float(maps["normals"][0, 2].mean()) - 1.0) < 1e-2


def test_prefixed_alias(tmp_path):
    write_png(tmp_path / "brick_diffuse.png", np.full((4, 4, 3), 0.5))
    write_png(tmp_path / "brick_normal_gl.png", np.dstack([np.full((4, 4), 0.5)] * 2 + [np.ones((4, 4))]))
    assert set(find_material(tmp_path / "brick").files) == {"diffuse", "normals"}
