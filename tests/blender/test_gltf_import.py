"""glTF from the CLI in Blender's own importer: a .glb, and a .gltf whose folder was moved, both import with every
texture (KHR_materials_specular's included), and the imported quad renders lit from the side, unlike the photo
used as albedo."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip(
    "bpy", reason="needs bpy (Blender as a Python module; the dev extra installs it on CPython 3.11)"
)

TEXTURES = {"basecolor", "metallicroughness", "normals", "specularcolor"}


@pytest.fixture(scope="module")
def exports(stage, tmp_path_factory) -> dict[str, Path]:
    """`teamwork svbrdf` maps of the bundled photo, then `teamwork render --gltf --glb` into another folder,
    which is then moved (and the maps deleted): the .gltf must carry everything it needs beside it."""
    root = tmp_path_factory.mktemp("gltf")
    run = [str(stage.teamwork), "svbrdf", str(stage.photo), "-o", str(root / "maps")]
    run += ["--device", "cpu", "--resolution", "64", "--fit", "diffuse"]
    subprocess.run(run, check=True, capture_output=True, timeout=600)
    out = root / "first" / "wood.png"
    run = [str(stage.teamwork), "render", str(root / "maps" / "wood_flash"), "-o", str(out), "--gltf", "--glb"]
    subprocess.run(run, check=True, capture_output=True, timeout=600)
    moved = Path(shutil.move(root / "first", root / "moved" / "here"))
    shutil.move(root / "maps", root / "kept")  # out of the .gltf's reach
    return {"gltf": moved / "wood.gltf", "glb": moved / "wood.glb", "renders": root, "maps": root / "kept"}


def _import(stage, path: Path):
    stage.new_scene()
    bpy.ops.import_scene.gltf(filepath=str(path))
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    assert len(meshes) == 1
    return meshes[0]


def _textures(material) -> dict[str, object]:
    """The imported image of each texture, by the name the exporter gave it (`<stem>_<channel>`)."""
    found = {}
    for n in material.node_tree.nodes:
        if n.type == "TEX_IMAGE" and n.image is not None:
            found[n.image.name.removeprefix("wood_").split(".")[0]] = n.image
    return found


@pytest.mark.parametrize("kind", ["gltf", "glb"])
def test_imports_with_every_texture(stage, exports, kind) -> None:
    obj = _import(stage, exports[kind])
    mat = obj.active_material
    images = _textures(mat)
    assert set(images) == TEXTURES
    for name, img in images.items():
        assert tuple(img.size) == (256, 256), name  # decoded: the maps' size
        if kind == "glb":
            assert img.packed_file is not None, name
        else:
            assert Path(bpy.path.abspath(img.filepath)).parent == exports["gltf"].parent, name
    assert stage.source(mat, "Base Color").image == images["basecolor"]
    assert stage.source(mat, "Normal").type == "NORMAL_MAP"
    assert images["basecolor"].colorspace_settings.name == "sRGB"
    assert images["normals"].colorspace_settings.name == "Non-Color"
    assert images["specularcolor"].colorspace_settings.name == "sRGB"
    # KHR_materials_specular reaches Principled's Specular Tint: 25 x the texture (the dielectric F0 / 0.04)
    assert stage.source(mat, "Specular Tint") is not None


def _lay_flat(obj) -> None:
    # Blender's importer turns glTF's +Y up into +Z up: the quad, facing glTF's +Z, faces -Y; lay it on z = 0
    # facing +Z with its top row at +Y, as the plane of the other renders.
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = (-math.pi / 2, 0.0, 0.0)


def test_imported_quad_renders_lit_and_unlike_the_photo_as_albedo(stage, exports) -> None:
    _lay_flat(_import(stage, exports["gltf"]))
    lit = stage.render(exports["renders"] / "gltf.png")
    stage.new_scene()
    stage.plane().active_material = stage.photo_material()
    photo = stage.render(exports["renders"] / "photo.png")
    assert lit.mean() > 0.03 and lit.max() > 0.2
    assert lit[:, 40:].mean() > lit[:, :24].mean()
    assert np.abs(lit - photo).mean() > 0.02


def test_imported_gltf_renders_as_the_addons_material(addon, stage, exports) -> None:
    """Two routes from the same maps, the add-on's node tree and glTF (KHR_materials_specular) through Blender's
    importer, give the same picture: the same orientation, colour spaces and specular mapping."""
    import importlib

    from teamwork_cli.blender.teamwork_material.runner import maps_by_channel

    _lay_flat(_import(stage, exports["gltf"]))
    via_gltf = stage.render(exports["renders"] / "via_gltf.png")
    stage.new_scene()
    maps = maps_by_channel(sorted(exports["maps"].iterdir()))["wood_flash"]
    stage.plane().active_material = importlib.import_module(f"{addon}.nodes").build_material("wood", maps)
    via_addon = stage.render(exports["renders"] / "via_addon.png")
    assert np.abs(via_gltf - via_addon).mean() < 0.005  # 8-bit glTF textures against 16-bit maps, 16 samples
