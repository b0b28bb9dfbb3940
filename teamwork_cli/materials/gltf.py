"""glTF 2.0 export of a material: one textured quad with a metal-roughness material.

Spec: https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html (sections cited below as "glTF 3.x").
The quad is the patch of docs/conventions.md section 3: 2 x 2 units in the XY plane, facing +Z, with the
image's top row at +Y.  Textures are the map files themselves, referenced by relative URI; only what
glTF cannot take as it is gets written beside the .gltf (as 8-bit PNG, what every viewer loads):
- `<stem>_metallicroughness.png`: glTF 3.9.2 samples roughness from G and metalness from B, linear;
- PNG copies of EXR/TIFF maps (glTF 3.8.1 images are PNG or JPEG only);
- `<stem>_basecolor.png` and `<stem>_metallic.png` when only diffuse/specular maps exist.
Normal maps need no change: glTF 3.9.3 normal textures are tangent space with +Y up, as ours.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np

from teamwork_cli.core.conventions import DIELECTRIC_F0, diffuse_specular_to_basecolor
from teamwork_cli.materials.files import OutputExistsError, map_path
from teamwork_cli.materials.read import read_map
from teamwork_cli.materials.write import write_map

_IMAGE_EXTS = (".png", ".jpg", ".jpeg")  # glTF 3.8.1: image/png and image/jpeg
# glTF 5.x enums: component types, buffer view targets, sampler filters and wrap modes.
_FLOAT, _USHORT = 5126, 5123
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
DEFAULT_ROUGHNESS = 0.5  # what materials/folders.py uses for a missing roughness map


def _quad() -> list[tuple[str, str, np.ndarray]]:
    """(attribute, accessor type, data) of the quad, vertices counter-clockwise seen from +Z (glTF 3.7.2.1)."""
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    # glTF 3.7.2.1: UV (0, 0) is the first pixel of the image's first row, so v runs down from y = +1.
    uv = np.stack([(pos[:, 0] + 1) / 2, (1 - pos[:, 1]) / 2], axis=1).astype(np.float32)
    normal = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    # Bitangent = cross(normal, tangent.xyz) * w = +Y, towards the top row: the normal map's +Y (glTF 3.7.2.1).
    tangent = np.tile(np.array([1, 0, 0, 1], np.float32), (4, 1))
    return [
        ("POSITION", "VEC3", pos),
        ("NORMAL", "VEC3", normal),
        ("TANGENT", "VEC4", tangent),
        ("TEXCOORD_0", "VEC2", uv),
    ]


def _mesh_json() -> tuple[dict, dict]:
    """Buffer, buffer views and accessors of the quad (one embedded buffer), and the mesh primitive."""
    blob, views, accessors, attributes = b"", [], [], {}
    for name, kind, data in _quad():
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": data.nbytes, "target": _ARRAY_BUFFER})
        acc = {"bufferView": len(views) - 1, "componentType": _FLOAT, "count": len(data), "type": kind}
        if name == "POSITION":  # glTF 3.6.2.4 (accessor bounds): required for positions
            acc |= {"min": data.min(axis=0).tolist(), "max": data.max(axis=0).tolist()}
        attributes[name] = len(accessors)
        accessors.append(acc)
        blob += data.astype("<f4").tobytes()
    indices = np.array([0, 1, 2, 0, 2, 3], "<u2")
    views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": indices.nbytes, "target": _ELEMENT_ARRAY_BUFFER})
    accessors.append({"bufferView": len(views) - 1, "componentType": _USHORT, "count": len(indices), "type": "SCALAR"})
    blob += indices.tobytes()
    blob += b"\0" * (-len(blob) % 4)
    uri = "data:application/octet-stream;base64," + base64.b64encode(blob).decode("ascii")
    parts = {"buffers": [{"byteLength": len(blob), "uri": uri}], "bufferViews": views, "accessors": accessors}
    return parts, {"attributes": attributes, "indices": len(accessors) - 1, "material": 0, "mode": 4}


def _uri(path: Path, base: Path) -> str:
    """Relative URI of `path` from folder `base`, percent-encoded (glTF 3.3: URIs follow RFC 3986)."""
    return quote(Path(os.path.relpath(path.resolve(), base.resolve())).as_posix())


def _plan(out_dir: Path, stem: str, maps: dict[str, Path]) -> tuple[dict[str, Path], dict[str, Callable[[], None]]]:
    """Image file of each texture, and the writers of the files that must be made for them."""
    made: dict[str, Callable[[], None]] = {}  # key: output path as str
    images: dict[str, Path] = {}

    def png(channel: str, make: Callable[[Path], None]) -> Path:
        p = map_path(out_dir, stem, channel, "png")
        made[str(p)] = lambda: make(p)
        return p

    if "basecolor" not in maps:
        if "diffuse" not in maps:
            raise ValueError(
                f"glTF export of {stem!r}: needs a basecolor or a diffuse map, got {', '.join(sorted(maps)) or 'none'}"
            )
        base_metal: list[np.ndarray] = []

        def derive() -> list[np.ndarray]:
            if not base_metal:
                d = read_map(maps["diffuse"], "diffuse")
                s = d * 0 + DIELECTRIC_F0
                if "specular" in maps:
                    s = read_map(maps["specular"], "specular", size=d.shape[:2])
                base_metal.extend(diffuse_specular_to_basecolor(d, s))
            return base_metal

        images["basecolor"] = png("basecolor", lambda p: _write(p, derive()[0], "basecolor"))
        metallic = png("metallic", lambda p: _write(p, derive()[1], "metallic"))
        maps = {**maps, "metallic": metallic}  # read back by the packer below, after it is written
    else:
        images["basecolor"] = maps["basecolor"]
    if "normals" in maps:
        images["normals"] = maps["normals"]
    for c, p in list(images.items()):
        if p.suffix.lower() not in _IMAGE_EXTS and str(p) not in made:
            images[c] = png(c, lambda q, src=p, ch=c: _write(q, read_map(src, ch), ch))
    if "roughness" in maps or "metallic" in maps:
        images["metallicroughness"] = png("metallicroughness", lambda p: _write(p, _pack(maps), "metallicroughness"))
    return images, made


def _pack(maps: dict[str, Path]) -> np.ndarray:
    """R = 1 (unused by glTF; 1 also reads as 'no occlusion' where packed ORM maps are expected), G = roughness,
    B = metallic (glTF 3.9.2), at the roughness map's size (or the metallic one's)."""
    first = read_map(maps.get("roughness") or maps["metallic"], "roughness" if "roughness" in maps else "metallic")
    hw = first.shape[:2]
    rough = read_map(maps["roughness"], "roughness", size=hw) if "roughness" in maps else first * 0 + DEFAULT_ROUGHNESS
    metal = read_map(maps["metallic"], "metallic", size=hw) if "metallic" in maps else first * 0
    return np.concatenate([first * 0 + 1, rough, metal], axis=2)


def _write(p: Path, value: np.ndarray, channel: str) -> None:
    write_map(p, value, channel, bits=8, overwrite=True)  # existence was checked for all files up front


def export_gltf(out_dir: Path, stem: str, maps: dict[str, Path], *, overwrite: bool = False) -> Path:
    """Write `out_dir/<stem>.gltf`: a 2 x 2 quad in the XY plane facing +Z with the material of `maps`
    (channel -> file of already written maps: basecolor (or diffuse + specular), metallic, roughness, normals;
    others are ignored).  Writes the extra textures of the module docstring beside it.  All files appear
    atomically, and none if any fails; existing files are refused unless `overwrite`.  Returns the .gltf path."""
    out_dir = Path(out_dir)
    maps = {c: Path(p) for c, p in maps.items()}
    gltf_path = out_dir / f"{stem}.gltf"
    images, made = _plan(out_dir, stem, maps)
    outputs = [gltf_path, *map(Path, made)]
    if not overwrite:
        exist = [str(p) for p in outputs if p.exists()]
        if exist:
            raise OutputExistsError(f"{exist[0]}: already exists; pass --overwrite (overwrite=True) to replace it")
    fresh = {p for p in outputs if not p.exists()}  # what a failure removes again (replaced files stay new)
    done: list[Path] = []
    try:
        for path, make in made.items():
            make()
            done.append(Path(path))
        _write_text(gltf_path, json.dumps(_document(stem, images, out_dir), indent=1), overwrite)
    except BaseException:
        for p in done:
            if p in fresh:
                p.unlink(missing_ok=True)
        raise
    return gltf_path


def gltf_files(out_dir: Path, stem: str, maps: dict[str, Path]) -> list[Path]:
    """Every file `export_gltf(out_dir, stem, maps)` writes, the .gltf first; the maps need not exist yet."""
    _, made = _plan(Path(out_dir), stem, {c: Path(p) for c, p in maps.items()})
    return [Path(out_dir) / f"{stem}.gltf", *map(Path, made)]


def _document(stem: str, images: dict[str, Path], out_dir: Path) -> dict:
    order = list(images)  # texture i uses image i
    pbr: dict = {"baseColorTexture": {"index": order.index("basecolor")}}
    if "metallicroughness" in images:
        pbr |= {
            "metallicFactor": 1.0,
            "roughnessFactor": 1.0,
            "metallicRoughnessTexture": {"index": order.index("metallicroughness")},
        }
    else:
        pbr |= {"metallicFactor": 0.0, "roughnessFactor": DEFAULT_ROUGHNESS}
    material: dict = {"name": stem, "pbrMetallicRoughness": pbr}
    if "normals" in images:
        material["normalTexture"] = {"index": order.index("normals"), "scale": 1.0}
    parts, primitive = _mesh_json()
    return {
        "asset": {"version": "2.0", "generator": "teamwork (teamwork_cli.materials.gltf)"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": stem}],
        "meshes": [{"name": stem, "primitives": [primitive]}],
        "materials": [material],
        "textures": [{"sampler": 0, "source": i} for i in range(len(order))],
        "images": [{"uri": _uri(images[c], out_dir), "name": f"{stem}_{c}"} for c in order],
        "samplers": [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _REPEAT, "wrapT": _REPEAT}],
        **parts,
    }


def _write_text(p: Path, text: str, overwrite: bool) -> None:
    """Atomic write: a hidden temporary file in the same folder, then a rename (or a hard link, which fails
    rather than replace a file that appeared meanwhile)."""
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{secrets.token_hex(4)}")
    try:
        tmp.write_text(text, encoding="utf-8")
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise OutputExistsError(f"{p}: already exists; pass --overwrite to replace it") from None
    finally:
        tmp.unlink(missing_ok=True)
