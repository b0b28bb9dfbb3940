"""glTF 2.0 export of a material: one textured quad with a metal-roughness material, as a `.gltf` whose
textures lie beside it or as one self-contained `.glb`.

Spec: https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html (sections cited below as "glTF 3.x" / "4.x"),
and the ratified extension KHR_materials_specular
(https://github.com/KhronosGroup/glTF/tree/main/extensions/2.0/Khronos/KHR_materials_specular).
The quad is the patch of docs/conventions.md section 3: by default 2 x 2 units in the XY plane, facing +Z, with
the image's top row at +Y; `size` gives its longer side in metres (glTF 3.4: glTF's unit of length) and the
maps' aspect ratio its other side.

A `.gltf` references every texture by a bare file name in its own folder, so the folder can be moved or sent
as it is. Map files that are PNG or JPEG (glTF 3.8.1 takes nothing else) and already in that folder are used as
they are; the others are copied there as `<stem>_<channel>.<ext>`, or converted to 8-bit PNG (what every viewer
loads) when they are EXR or TIFF. Made for glTF and written beside it:
- `<stem>_metallicroughness.png`: glTF 3.9.2 samples roughness from G and metalness from B, linear;
- `<stem>_specularcolor.png`: KHR_materials_specular's specular colour (see `_specular_color`);
- `<stem>_basecolor.png` and `<stem>_metallic.png` when only diffuse/specular maps exist.
A `.glb` (glTF 4.4) holds the same images in its binary chunk and needs no other file.
Normal maps need no change: glTF 3.9.3 normal textures are tangent space with +Y up, as ours; a map whose name
says DirectX (`_nor_dx`, `_NormalDX`) is converted.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from teamwork_cli.core.conventions import DIELECTRIC_F0, diffuse_specular_to_basecolor, normals_gl_to_dx
from teamwork_cli.materials.files import OutputExistsError, map_path, publish
from teamwork_cli.materials.read import header_size, read_map
from teamwork_cli.materials.write import write_map

_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}  # glTF 3.8.1
# glTF 5.x enums: component types, buffer view targets, sampler filters and wrap modes.
_FLOAT, _USHORT = 5126, 5123
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
DEFAULT_ROUGHNESS = 0.5  # what materials/folders.py uses for a missing roughness map
SPECULAR = "KHR_materials_specular"  # mapped as docs/conventions.md section 2 says (`_specular_color`)
# KHR_materials_specular: dielectric F0 = min(0.04 * specularColor, 1) * specular. A specularColorFactor of
# 1 / 0.04 (the extension allows factors above 1) makes its texture hold the dielectric F0 colour itself.
SPECULAR_COLOR_FACTOR = 1 / DIELECTRIC_F0
# Below this 1 - metallic the dielectric part has no weight and its F0 cannot be solved for: 0.04 is used.
_METAL_EPS = 1e-3
_GLB_MAGIC, _GLB_JSON, _GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942  # glTF 4.4: "glTF", chunks JSON, BIN


@dataclass(frozen=True)
class _Texture:
    """One image of the material: an existing PNG/JPEG file usable as it is, or a maker of an 8-bit PNG."""

    source: Path | None = None
    make: Callable[[Path], None] | None = None


class _Values:
    """The maps' values, read once: the glTF pair (given, or derived from diffuse and specular) and the others."""

    def __init__(self, maps: dict[str, Path]) -> None:
        self.maps = maps
        self._base_metal: tuple[np.ndarray, np.ndarray] | None = None

    def hw(self) -> tuple[int, int]:
        """(height, width) of the base colour's (or the diffuse map's) file."""
        return _image_hw(self.maps["basecolor" if "basecolor" in self.maps else "diffuse"])

    def base_metal(self) -> tuple[np.ndarray, np.ndarray]:
        """basecolor and metallic at `hw()`, linear: from their files, else from diffuse and specular."""
        if self._base_metal is None:
            m, hw = self.maps, self.hw()
            if "basecolor" in m:
                b = read_map(m["basecolor"], "basecolor", size=hw)
                metal = read_map(m["metallic"], "metallic", size=hw) if "metallic" in m else b[..., :1] * 0
            else:
                d = read_map(m["diffuse"], "diffuse", size=hw)
                s = read_map(m["specular"], "specular", size=hw) if "specular" in m else d * 0 + DIELECTRIC_F0
                b, metal = diffuse_specular_to_basecolor(d, s)
            self._base_metal = (b.astype(np.float32), metal.astype(np.float32))
        return self._base_metal


def _image_hw(p: Path) -> tuple[int, int]:
    with open(p, "rb") as f:
        size = header_size(p, f.read(64))
    if size is None:
        h, w = read_map(p, "diffuse").shape[:2]
        return h, w
    return size[1], size[0]


def _plan(maps: dict[str, Path], normals_directx: bool) -> tuple[dict[str, _Texture], dict[str, _Texture]]:
    """The material's images (channel -> texture, in the document's order) and the extra files a .gltf folder
    gets (the derived metallic map, so that the folder is a complete metal-roughness material)."""
    if "basecolor" not in maps and "diffuse" not in maps:
        raise ValueError(f"glTF export: needs a basecolor or a diffuse map, got {', '.join(sorted(maps)) or 'none'}")
    values = _Values(maps)
    images: dict[str, _Texture] = {}
    extra: dict[str, _Texture] = {}
    if "basecolor" in maps:
        images["basecolor"] = _as_is_or_png(maps["basecolor"], "basecolor")
    else:
        images["basecolor"] = _Texture(make=lambda p: _write(p, values.base_metal()[0], "basecolor"))
        extra["metallic"] = _Texture(make=lambda p: _write(p, values.base_metal()[1], "metallic"))
    if "normals" in maps:
        if normals_directx:  # +Y down in the file: glTF 3.9.3 wants +Y up
            images["normals"] = _Texture(
                make=lambda p: _write(p, normals_gl_to_dx(read_map(maps["normals"], "normals")), "normals")
            )
        else:
            images["normals"] = _as_is_or_png(maps["normals"], "normals")
    if "roughness" in maps or "metallic" in maps or "basecolor" not in maps:  # else glTF's factors say it all
        images["metallicroughness"] = _Texture(make=lambda p: _write(p, _pack(maps, values), "metallicroughness"))
    if "specular" in maps:
        images["specularcolor"] = _Texture(make=lambda p: _write(p, _specular_color(maps, values), "specular"))
    return images, extra


def _as_is_or_png(p: Path, channel: str) -> _Texture:
    if p.suffix.lower() in _IMAGE_TYPES:
        return _Texture(source=p)
    return _Texture(make=lambda q: _write(q, read_map(p, channel), channel))  # EXR, TIFF: 8-bit PNG


def _pack(maps: dict[str, Path], values: _Values) -> np.ndarray:
    """R = 1 (unused by glTF; 1 also reads as 'no occlusion' where packed ORM maps are expected), G = roughness,
    B = metallic (glTF 3.9.2), at the roughness map's size (or the base colour's; always that size when metallic
    is derived from diffuse and specular)."""
    derived = "basecolor" not in maps
    hw = _image_hw(maps["roughness"]) if "roughness" in maps and not derived else values.hw()
    if derived:
        metal = values.base_metal()[1]
    elif "metallic" in maps:
        metal = read_map(maps["metallic"], "metallic", size=hw)
    else:
        metal = np.zeros((*hw, 1), np.float32)
    rough = read_map(maps["roughness"], "roughness", size=hw) if "roughness" in maps else metal * 0 + DEFAULT_ROUGHNESS
    return np.concatenate([metal * 0 + 1, rough, metal], axis=2)


def _specular_color(maps: dict[str, Path], values: _Values) -> np.ndarray:
    """The texture of KHR_materials_specular's specularColor, to be scaled by SPECULAR_COLOR_FACTOR.

    Our specular map is the F0 colour of the whole material (docs/conventions.md section 1); glTF's F0 is
    mix(dielectric F0, basecolor, metallic) (glTF Appendix B.3.5), where KHR_materials_specular sets the
    dielectric F0 to min(0.04 * specularColor, 1) * specular (its "Implementation" section). So with
    specular = 1 the dielectric F0 that gives back our F0 is (F0 - metallic * basecolor) / (1 - metallic),
    clipped to [0, 1]; the texture holds exactly that, and specularColorFactor = 1 / 0.04 undoes the 0.04.
    A material made by the forward map of docs/conventions.md section 1 gets 0.04, i.e. specularColor = 1,
    what glTF assumes without the extension. Where metallic is 1 the dielectric has no weight: 0.04.
    glTF's diffuse weight, (1 - max F) with this F (the extension's `fresnel_mix`), is not our renderer's
    (section 3 adds the lobes); the F0 colour is what both share."""
    base, metal = values.base_metal()
    f0 = read_map(maps["specular"], "specular", size=base.shape[:2])
    rest = 1 - metal
    dielectric = np.where(rest > _METAL_EPS, (f0 - metal * base) / np.maximum(rest, _METAL_EPS), DIELECTRIC_F0)
    return np.clip(dielectric, 0, 1).astype(np.float32)


def _write(p: Path, value: np.ndarray, channel: str) -> None:
    write_map(p, value, channel, bits=8, overwrite=True)  # existence was checked for all files up front


def _local_files(
    out_dir: Path, stem: str, maps: dict[str, Path], images: dict[str, _Texture], extra: dict[str, _Texture]
) -> dict[str, tuple[Path, Callable[[Path], None] | None]]:
    """channel -> (its file in the .gltf's folder, how it is made there: None if it is there already)."""
    placed: dict[str, tuple[Path, Callable[[Path], None] | None]] = {}
    for c, t in {**images, **extra}.items():
        if t.source is not None and t.source.parent.resolve() == out_dir.resolve():
            placed[c] = (t.source, None)
        elif t.source is not None:
            placed[c] = (map_path(out_dir, stem, c, t.source.suffix), lambda p, src=t.source: _copy(src, p))
        else:
            placed[c] = (map_path(out_dir, stem, c, "png"), t.make)
    sources = {p.resolve() for p in maps.values()}
    for path, make in placed.values():
        if make is not None and path.resolve() in sources:
            raise ValueError(f"{path}: the glTF would replace a map it reads; give the glTF another name or folder")
    return placed


def _copy(src: Path, dst: Path) -> None:
    publish(dst, lambda tmp: shutil.copyfile(src, tmp), overwrite=True)  # existence was checked up front


def gltf_files(
    out_dir: Path, stem: str, maps: dict[str, Path], *, binary: bool = False, normals_directx: bool = False
) -> list[Path]:
    """Every file `export_gltf` writes, the .gltf (or .glb) first; the maps need not exist yet."""
    out_dir, maps = Path(out_dir), {c: Path(p) for c, p in maps.items()}
    if binary:
        return [out_dir / f"{stem}.glb"]
    images, extra = _plan(maps, normals_directx)
    made = [p for p, make in _local_files(out_dir, stem, maps, images, extra).values() if make is not None]
    return [out_dir / f"{stem}.gltf", *made]


def export_gltf(
    out_dir: Path,
    stem: str,
    maps: dict[str, Path],
    *,
    overwrite: bool = False,
    binary: bool = False,
    size: float | None = None,
    normals_directx: bool = False,
) -> Path:
    """Write `out_dir/<stem>.gltf` with its textures beside it (binary=False) or `out_dir/<stem>.glb`: a quad
    facing +Z with the material of `maps` (channel -> file of already written maps: basecolor (or diffuse +
    specular), metallic, roughness, normals, specular; others are ignored). size: the quad's longer side in
    metres (default: 2 x 2). normals_directx: the normal map file is +Y down. All files appear atomically, and
    none if any fails; existing files are refused unless `overwrite`. Returns the .gltf or .glb path."""
    out_dir = Path(out_dir)
    maps = {c: Path(p) for c, p in maps.items()}
    if size is not None and not size > 0:
        raise ValueError(f"glTF export: the quad's size must be positive, got {size}")
    images, extra = _plan(maps, normals_directx)
    extent = _extent(_Values(maps).hw(), size)
    if binary:
        target = out_dir / f"{stem}.glb"
        if target.exists() and not overwrite:
            raise OutputExistsError(f"{target}: already exists; pass --overwrite (overwrite=True) to replace it")
        data = _glb(stem, images, extent)
        publish(target, lambda tmp: tmp.write_bytes(data), overwrite)
        return target
    placed = _local_files(out_dir, stem, maps, images, extra)
    gltf_path = out_dir / f"{stem}.gltf"
    made = {p: make for p, make in placed.values() if make is not None}
    outputs = [gltf_path, *made]
    if not overwrite:
        exist = [str(p) for p in outputs if p.exists()]
        if exist:
            raise OutputExistsError(f"{exist[0]}: already exists; pass --overwrite (overwrite=True) to replace it")
    fresh = {p for p in outputs if not p.exists()}  # what a failure removes again (replaced files stay new)
    done: list[Path] = []
    try:
        for path, make in made.items():
            make(path)  # each maker writes atomically (write_map, publish)
            done.append(path)
        uris = {c: quote(placed[c][0].name) for c in images}  # glTF 3.3: RFC 3986 URIs, relative to the .gltf
        doc = _document(stem, list(images), extent)
        parts, _ = _mesh_buffers(extent, "normals" in images)
        blob = b"".join(parts)
        doc["buffers"] = [{"byteLength": len(blob), "uri": _data_uri(blob)}]
        doc["images"] = [{"uri": uris[c], "name": f"{stem}_{c}"} for c in images]
        _write_text(gltf_path, json.dumps(doc, indent=1), overwrite)
    except BaseException:
        for p in done:
            if p in fresh:
                p.unlink(missing_ok=True)
        raise
    return gltf_path


def _extent(hw: tuple[int, int], size: float | None) -> tuple[float, float]:
    """The quad's width (X) and height (Y): 2 x 2 by default, else `size` along the maps' longer side."""
    if size is None:
        return 2.0, 2.0
    h, w = hw
    return (size, size * h / w) if w >= h else (size * w / h, size)


def _quad(extent: tuple[float, float], tangents: bool) -> list[tuple[str, str, np.ndarray]]:
    """(attribute, accessor type, data) of the quad, vertices counter-clockwise seen from +Z (glTF 3.7.2.1);
    tangents only for a normal texture (without one the validator notes them as unused)."""
    unit = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    pos = unit * np.array([extent[0] / 2, extent[1] / 2, 0], np.float32)
    # glTF 3.7.2.1: UV (0, 0) is the first pixel of the image's first row, so v runs down from the top (+Y) edge.
    uv = np.stack([(unit[:, 0] + 1) / 2, (1 - unit[:, 1]) / 2], axis=1).astype(np.float32)
    normal = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    # Bitangent = cross(normal, tangent.xyz) * w = +Y, towards the top row: the normal map's +Y (glTF 3.7.2.1).
    tangent = np.tile(np.array([1, 0, 0, 1], np.float32), (4, 1))
    return [
        ("POSITION", "VEC3", pos),
        ("NORMAL", "VEC3", normal),
        *([("TANGENT", "VEC4", tangent)] if tangents else []),
        ("TEXCOORD_0", "VEC2", uv),
    ]


def _mesh_buffers(extent: tuple[float, float], tangents: bool) -> tuple[list[bytes], dict]:
    """The quad's bytes (4-byte aligned parts of buffer 0, from offset 0) and its buffer views, accessors and
    primitive."""
    parts, views, accessors, attributes, offset = [], [], [], {}, 0
    for name, kind, data in _quad(extent, tangents):
        raw = data.astype("<f4").tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(raw), "target": _ARRAY_BUFFER})
        acc = {"bufferView": len(views) - 1, "componentType": _FLOAT, "count": len(data), "type": kind}
        if name == "POSITION":  # glTF 3.6.2.4 (accessor bounds): required for positions
            acc |= {"min": data.min(axis=0).tolist(), "max": data.max(axis=0).tolist()}
        attributes[name] = len(accessors)
        accessors.append(acc)
        parts.append(raw)
        offset += len(raw)
    indices = np.array([0, 1, 2, 0, 2, 3], "<u2").tobytes()
    views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(indices), "target": _ELEMENT_ARRAY_BUFFER})
    accessors.append({"bufferView": len(views) - 1, "componentType": _USHORT, "count": 6, "type": "SCALAR"})
    parts.append(indices + b"\0" * (-len(indices) % 4))
    primitive = {"attributes": attributes, "indices": len(accessors) - 1, "material": 0, "mode": 4}
    return parts, {"bufferViews": views, "accessors": accessors, "primitive": primitive}


def _data_uri(blob: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(blob).decode("ascii")


def _document(stem: str, order: list[str], extent: tuple[float, float]) -> dict:
    """The glTF JSON without `buffers` and `images` (texture i uses image i, in `order`)."""
    pbr: dict = {"baseColorTexture": {"index": order.index("basecolor")}}
    if "metallicroughness" in order:
        pbr |= {
            "metallicFactor": 1.0,
            "roughnessFactor": 1.0,
            "metallicRoughnessTexture": {"index": order.index("metallicroughness")},
        }
    else:
        pbr |= {"metallicFactor": 0.0, "roughnessFactor": DEFAULT_ROUGHNESS}
    material: dict = {"name": stem, "pbrMetallicRoughness": pbr}
    if "normals" in order:
        material["normalTexture"] = {"index": order.index("normals"), "scale": 1.0}
    doc: dict = {"asset": {"version": "2.0", "generator": "teamwork (teamwork_cli.materials.gltf)"}}
    if "specularcolor" in order:
        material["extensions"] = {
            SPECULAR: {
                "specularColorFactor": [SPECULAR_COLOR_FACTOR] * 3,
                "specularColorTexture": {"index": order.index("specularcolor")},
            }
        }
        doc["extensionsUsed"] = [SPECULAR]  # optional: a viewer without it shows the dielectric F0 of 0.04
    _, mesh = _mesh_buffers(extent, "normals" in order)
    return doc | {
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": stem}],
        "meshes": [{"name": stem, "primitives": [mesh["primitive"]]}],
        "materials": [material],
        "textures": [{"sampler": 0, "source": i} for i in range(len(order))],
        "samplers": [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _REPEAT, "wrapT": _REPEAT}],
        "bufferViews": mesh["bufferViews"],
        "accessors": mesh["accessors"],
    }


def _glb(stem: str, images: dict[str, _Texture], extent: tuple[float, float]) -> bytes:
    """The whole .glb (glTF 4.4): the document and, in its binary chunk, the quad and every image's bytes."""
    parts, _ = _mesh_buffers(extent, "normals" in images)
    offset = sum(map(len, parts))
    doc = _document(stem, list(images), extent)
    with tempfile.TemporaryDirectory(prefix="teamwork-glb-") as tmp:
        for i, (c, t) in enumerate(images.items()):
            if t.source is not None:
                data, mime = t.source.read_bytes(), _IMAGE_TYPES[t.source.suffix.lower()]
            else:
                made = Path(tmp) / f"{i}.png"
                t.make(made)
                data, mime = made.read_bytes(), "image/png"
            doc["bufferViews"].append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
            doc.setdefault("images", []).append(
                {"bufferView": len(doc["bufferViews"]) - 1, "mimeType": mime, "name": f"{stem}_{c}"}
            )
            parts.append(data + b"\0" * (-len(data) % 4))  # zeros to 4 bytes: each view aligned, as the chunk (4.4)
            offset += len(parts[-1])
    blob = b"".join(parts)
    doc["buffers"] = [{"byteLength": len(blob)}]  # glTF 4.4: the buffer stored in the GLB has no uri
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)  # glTF 4.4: the JSON chunk is padded with spaces, to 4 bytes
    length = 12 + 8 + len(text) + 8 + len(blob)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, length),
            struct.pack("<II", len(text), _GLB_JSON),
            text,
            struct.pack("<II", len(blob), _GLB_BIN),
            blob,
        ]
    )


def _write_text(p: Path, text: str, overwrite: bool) -> None:
    """Atomic write of the .gltf (files.publish: a hidden temporary file beside it, then a rename)."""
    publish(p, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite)
