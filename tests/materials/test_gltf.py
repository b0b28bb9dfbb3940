"""glTF export: structure read back with pygltflib (.gltf and .glb), textures that travel with the file, the
specular map in KHR_materials_specular, and the Khronos validator when it is available.

The validator runs if node is installed and GLTF_VALIDATOR_DIR names a folder with
node_modules/gltf-validator (scripts/validate_gltf.sh installs one: see its header).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from teamwork_cli.materials.files import OutputExistsError
from teamwork_cli.materials.gltf import export_gltf
from teamwork_cli.materials.read import read_map
from teamwork_cli.materials.write import write_map

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "validate_gltf.sh"
ALL = ("diffuse", "specular", "roughness", "normals", "basecolor", "metallic")


def _accessor(g: pygltflib.GLTF2, index: int) -> np.ndarray:
    acc = g.accessors[index]
    view = g.bufferViews[acc.bufferView]
    data = g.binary_blob() if g.buffers[0].uri is None else g.decode_data_uri(g.buffers[0].uri)
    dtype = {pygltflib.FLOAT: "<f4", pygltflib.UNSIGNED_SHORT: "<u2"}[acc.componentType]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc.type]
    raw = data[view.byteOffset + (acc.byteOffset or 0) :][: acc.count * width * np.dtype(dtype).itemsize]
    return np.frombuffer(raw, dtype).reshape(acc.count, width)


def _images(path: Path) -> dict[str, str]:
    """texture role -> image URI of the exported material (roles as the exporter names its files)."""
    g = pygltflib.GLTF2().load(str(path))
    mat = g.materials[0]
    pbr = mat.pbrMetallicRoughness
    refs = {"basecolor": pbr.baseColorTexture, "metallicroughness": pbr.metallicRoughnessTexture}
    refs["normals"] = mat.normalTexture
    spec = (mat.extensions or {}).get("KHR_materials_specular")
    if spec:
        refs["specularcolor"] = pygltflib.TextureInfo(**spec["specularColorTexture"])
    return {k: g.images[g.textures[t.index].source].uri for k, t in refs.items() if t is not None}


def test_export_structure(tmp_path: Path, make_material) -> None:
    maps = make_material(tmp_path / "maps", "brick", channels=ALL)
    path = export_gltf(tmp_path / "maps", "brick", maps)
    g = pygltflib.GLTF2().load(str(path))
    assert g.asset.version == "2.0"
    prim = g.meshes[0].primitives[0]
    counts = {
        name: g.accessors[getattr(prim.attributes, name)].count
        for name in ("POSITION", "NORMAL", "TANGENT", "TEXCOORD_0")
    }
    assert counts == {"POSITION": 4, "NORMAL": 4, "TANGENT": 4, "TEXCOORD_0": 4}
    assert g.accessors[prim.indices].count == 6
    pos, uv = _accessor(g, prim.attributes.POSITION), _accessor(g, prim.attributes.TEXCOORD_0)
    assert np.allclose(pos.min(axis=0), [-1, -1, 0]) and np.allclose(pos.max(axis=0), [1, 1, 0])  # 2 x 2 default
    # The image's top row (v = 0) is at +Y; u = 0 at -X.
    assert np.allclose(uv[:, 1], (1 - pos[:, 1]) / 2) and np.allclose(uv[:, 0], (pos[:, 0] + 1) / 2)
    # Both triangles wind counter-clockwise seen from +Z, the side the normals face.
    tri = _accessor(g, prim.indices).reshape(2, 3)
    for a, b, c in pos[tri]:
        assert np.cross(b - a, c - a)[2] > 0
    uri = _images(path)
    assert uri == {
        "basecolor": "brick_basecolor.png",
        "metallicroughness": "brick_metallicroughness.png",
        "normals": "brick_normals.png",
        "specularcolor": "brick_specularcolor.png",
    }
    for u in uri.values():
        assert (path.parent / u).is_file()
    assert g.extensionsUsed == ["KHR_materials_specular"] and not g.extensionsRequired
    assert g.materials[0].extensions["KHR_materials_specular"]["specularColorFactor"] == [25.0] * 3
    # glTF 3.9.2: roughness in G, metalness in B, linear.
    packed = read_map(path.parent / uri["metallicroughness"], "mr")
    assert np.allclose(packed[..., 1], read_map(maps["roughness"], "roughness")[..., 0], atol=1 / 255)
    assert np.allclose(packed[..., 2], read_map(maps["metallic"], "metallic")[..., 0], atol=1 / 255)
    with pytest.raises(OutputExistsError):
        export_gltf(tmp_path / "maps", "brick", maps)
    export_gltf(tmp_path / "maps", "brick", maps, overwrite=True)


def _gltf_f0(folder: Path, uri: dict[str, str], factor: float) -> tuple[np.ndarray, np.ndarray]:
    """glTF's F0, mix(min(0.04 * specularColor, 1), basecolor, metallic) (KHR_materials_specular), and metallic."""
    base = read_map(folder / uri["basecolor"], "basecolor")
    metal = read_map(folder / uri["metallicroughness"], "mr")[..., 2:3]
    dielectric = np.minimum(0.04 * factor * read_map(folder / uri["specularcolor"], "specular"), 1)
    return dielectric * (1 - metal) + base * metal, metal


def test_specular_map_is_carried_by_khr_materials_specular(tmp_path: Path, levels) -> None:
    """The exported textures give back our F0 (the specular map) through glTF's metal-roughness F0 with the
    extension; a material made by the forward map (docs/conventions.md section 1) gets specularColor = 1."""
    rng = np.random.default_rng(5)
    base = levels((12, 12, 3), 8)
    metal = np.where(rng.random((12, 12, 1)) < 0.5, 0.0, rng.random((12, 12, 1)) * 0.9).astype(np.float32)
    folder = tmp_path / "m"
    folder.mkdir()
    files = {"basecolor": folder / "a_basecolor.png", "metallic": folder / "a_metallic.png"}
    write_map(files["basecolor"], base, "basecolor")
    write_map(files["metallic"], metal, "metallic")
    base, metal = read_map(files["basecolor"], "basecolor"), read_map(files["metallic"], "metallic")
    for name, f0 in (
        ("forward", 0.04 * (1 - metal) + base * metal),
        ("free", (0.02 + 0.1 * rng.random((12, 12, 3))) * (1 - metal) + base * metal),  # dielectric F0 in [0.02, 0.12]
    ):
        files["specular"] = write_map(folder / f"a_{name}_specular.png", f0.astype(np.float32), "specular")
        path = export_gltf(tmp_path / name, "a", files)
        uri = _images(path)
        factor = pygltflib.GLTF2().load(str(path)).materials[0].extensions["KHR_materials_specular"]
        assert factor["specularColorFactor"] == [25.0] * 3 and "specularFactor" not in factor
        got, _ = _gltf_f0(path.parent, uri, 25.0)
        stored = read_map(files["specular"], "specular")
        assert np.abs(got - stored).max() < 0.004, name  # 8-bit sRGB texture steps around F0 = 0.04-0.12
        if name == "forward":
            colour = read_map(path.parent / uri["specularcolor"], "specular")
            assert np.abs(colour - 0.04).max() < 0.002  # specularColor = 25 * 0.04 = 1: glTF's own dielectric


def test_textures_lie_beside_the_gltf_so_the_folder_moves(tmp_path: Path, make_material) -> None:
    exr = make_material(tmp_path / "maps", "brick", ext="exr")
    path = export_gltf(tmp_path / "out", "brick", exr)
    uris = sorted(_images(path).values())
    assert uris == [f"brick_{c}.png" for c in ("basecolor", "metallicroughness", "normals", "specularcolor")]
    png = make_material(tmp_path / "png maps", "brick", channels=ALL)
    path = export_gltf(tmp_path / "out", "other", png)
    uris = _images(path)
    assert set(uris.values()) == {
        f"other_{c}.png" for c in ("basecolor", "metallicroughness", "normals", "specularcolor")
    }
    # copied as they are, not re-encoded: the maps' own bytes
    assert (path.parent / uris["basecolor"]).read_bytes() == png["basecolor"].read_bytes()
    assert (path.parent / uris["normals"]).read_bytes() == png["normals"].read_bytes()
    moved = shutil.move(tmp_path / "out", tmp_path / "elsewhere" / "out")
    shutil.rmtree(tmp_path / "maps")
    shutil.rmtree(tmp_path / "png maps")
    for gltf in Path(moved).glob("*.gltf"):
        for u in _images(gltf).values():
            assert "/" not in u and ".." not in u and (gltf.parent / u).is_file()


def test_glb_is_one_file_holding_every_image(tmp_path: Path, make_material) -> None:
    maps = make_material(tmp_path / "maps", "brick", channels=ALL)
    path = export_gltf(tmp_path / "out", "brick", maps, binary=True)
    assert path.suffix == ".glb" and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["brick.glb"]
    assert path.read_bytes()[:4] == b"glTF"
    g = pygltflib.GLTF2().load(str(path))
    blob = g.binary_blob()
    assert g.buffers[0].uri is None and g.buffers[0].byteLength == len(blob)
    assert len(g.images) == 4 and all(im.uri is None and im.mimeType == "image/png" for im in g.images)
    for im in g.images:
        view = g.bufferViews[im.bufferView]
        assert view.byteOffset % 4 == 0
        assert blob[view.byteOffset : view.byteOffset + 8] == b"\x89PNG\r\n\x1a\n"
    base = g.bufferViews[
        g.images[g.textures[g.materials[0].pbrMetallicRoughness.baseColorTexture.index].source].bufferView
    ]
    assert blob[base.byteOffset : base.byteOffset + base.byteLength] == maps["basecolor"].read_bytes()
    prim = g.meshes[0].primitives[0]
    assert _accessor(g, prim.attributes.POSITION).shape == (4, 3)
    with pytest.raises(OutputExistsError):
        export_gltf(tmp_path / "out", "brick", maps, binary=True)


def test_size_sets_the_quads_extent_in_metres_with_the_maps_aspect(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    maps = {"diffuse": write_map(folder / "w_diffuse.png", np.full((10, 40, 3), 0.5, np.float32), "diffuse")}
    for size, extent in ((None, (2.0, 2.0)), (0.8, (0.8, 0.2))):
        path = export_gltf(tmp_path / str(size), "w", maps, size=size)
        g = pygltflib.GLTF2().load(str(path))
        pos = _accessor(g, g.meshes[0].primitives[0].attributes.POSITION)
        assert np.allclose(pos.max(axis=0) - pos.min(axis=0), [*extent, 0])
        assert np.allclose(g.accessors[g.meshes[0].primitives[0].attributes.POSITION].max, [*np.divide(extent, 2), 0])
    with pytest.raises(ValueError, match="positive"):
        export_gltf(tmp_path / "bad", "w", maps, size=0)


def test_directx_normals_are_flipped_for_gltf(tmp_path: Path, make_material) -> None:
    maps = make_material(tmp_path / "maps", "brick", channels=("diffuse", "normals"))
    path = export_gltf(tmp_path / "out", "brick", maps, normals_directx=True)
    gl = read_map(path.parent / _images(path)["normals"], "normals")
    dx = read_map(maps["normals"], "normals")
    assert np.allclose(gl[..., 1], -dx[..., 1], atol=0.02) and np.allclose(gl[..., [0, 2]], dx[..., [0, 2]], atol=0.02)


def test_refuses_to_replace_a_map_it_reads(tmp_path: Path, make_material) -> None:
    maps = make_material(tmp_path / "maps", "brick", channels=("diffuse", "metallic"))
    with pytest.raises(ValueError, match="replace a map it reads"):
        export_gltf(tmp_path / "maps", "brick", maps, overwrite=True)  # would write brick_metallic.png over itself
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["brick_diffuse.png", "brick_metallic.png"]


def _validator_dir() -> Path | None:
    d = os.environ.get("GLTF_VALIDATOR_DIR")
    if not d or not shutil.which("node") or not (Path(d) / "node_modules" / "gltf-validator").is_dir():
        return None
    return Path(d)


@pytest.mark.skipif(_validator_dir() is None, reason="needs node and GLTF_VALIDATOR_DIR with gltf-validator")
def test_khronos_validator_reports_no_errors(tmp_path: Path, make_material) -> None:
    full = make_material(tmp_path / "a", "full", channels=ALL)
    exports = [
        export_gltf(tmp_path / "a", "full", full),
        export_gltf(tmp_path / "a", "full", full, binary=True, size=0.25),
        export_gltf(tmp_path / "b", "exr", make_material(tmp_path / "b", "exr", ext="exr")),
        export_gltf(tmp_path / "c", "bare", make_material(tmp_path / "c", "bare", channels=("diffuse",))),
    ]
    for path in exports:
        done = subprocess.run(
            ["bash", str(SCRIPT), str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "GLTF_VALIDATOR_DIR": str(_validator_dir())},
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        issues = report["issues"]
        assert issues["numErrors"] == 0, issues["messages"]
        assert issues["numWarnings"] == 0, issues["messages"]
        assert issues["numInfos"] == 0, issues["messages"]
        if path.stem != "bare":  # a diffuse map alone has no specular map to carry
            assert report["info"]["extensionsUsed"] == ["KHR_materials_specular"]
        # every texture was found and decoded (beside the .gltf, or inside the .glb)
        images = [r for r in report["info"]["resources"] if r["pointer"].startswith("/images/")]
        assert images and all(r["image"]["width"] > 0 for r in images)
