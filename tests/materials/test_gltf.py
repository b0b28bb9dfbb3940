"""glTF export: structure read back with pygltflib, and the Khronos validator when it is available.

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
    # The image's top row (v = 0) is at +Y; u = 0 at -X.
    assert np.allclose(uv[:, 1], (1 - pos[:, 1]) / 2) and np.allclose(uv[:, 0], (pos[:, 0] + 1) / 2)
    # Both triangles wind counter-clockwise seen from +Z, the side the normals face.
    tri = _accessor(g, prim.indices).reshape(2, 3)
    for a, b, c in pos[tri]:
        assert np.cross(b - a, c - a)[2] > 0
    mat = g.materials[0]
    pbr = mat.pbrMetallicRoughness
    uri = {
        name: g.images[g.textures[t.index].source].uri
        for name, t in (
            ("base", pbr.baseColorTexture),
            ("mr", pbr.metallicRoughnessTexture),
            ("normal", mat.normalTexture),
        )
    }
    assert uri == {"base": "brick_basecolor.png", "mr": "brick_metallicroughness.png", "normal": "brick_normals.png"}
    for u in uri.values():
        assert (path.parent / u).is_file()
    # glTF 3.9.2: roughness in G, metalness in B, linear.
    packed = read_map(path.parent / uri["mr"], "mr")
    assert np.allclose(packed[..., 1], read_map(maps["roughness"], "roughness")[..., 0], atol=1 / 255)
    assert np.allclose(packed[..., 2], read_map(maps["metallic"], "metallic")[..., 0], atol=1 / 255)
    with pytest.raises(OutputExistsError):
        export_gltf(tmp_path / "maps", "brick", maps)
    export_gltf(tmp_path / "maps", "brick", maps, overwrite=True)


def test_exr_maps_get_png_copies_and_relative_uris(tmp_path: Path, make_material) -> None:
    maps = make_material(tmp_path / "maps", "brick", ext="exr")
    path = export_gltf(tmp_path / "out", "brick", maps)
    g = pygltflib.GLTF2().load(str(path))
    uris = sorted(i.uri for i in g.images)
    assert uris == ["brick_basecolor.png", "brick_metallicroughness.png", "brick_normals.png"]
    assert all((path.parent / u).is_file() for u in uris)
    png = make_material(tmp_path / "png maps", "brick", channels=ALL)
    path = export_gltf(tmp_path / "out", "other", png)
    assert "../png%20maps/brick_basecolor.png" in {i.uri for i in pygltflib.GLTF2().load(str(path)).images}


def _validator_dir() -> Path | None:
    d = os.environ.get("GLTF_VALIDATOR_DIR")
    if not d or not shutil.which("node") or not (Path(d) / "node_modules" / "gltf-validator").is_dir():
        return None
    return Path(d)


@pytest.mark.skipif(_validator_dir() is None, reason="needs node and GLTF_VALIDATOR_DIR with gltf-validator")
def test_khronos_validator_reports_no_errors(tmp_path: Path, make_material) -> None:
    exports = [
        export_gltf(tmp_path / "a", "full", make_material(tmp_path / "a", "full", channels=ALL)),
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
        issues = json.loads(done.stdout)["issues"]
        assert issues["numErrors"] == 0, issues["messages"]
        assert issues["numWarnings"] == 0, issues["messages"]
