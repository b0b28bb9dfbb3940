"""Finding and loading a material: the maps of one stem in a folder (docs/conventions.md sections 1 and 2).

A material is given as a folder of maps named `<stem>_<channel>.<ext>` or `<channel>.<ext>` (e.g.
`maps/brick_diffuse.png`, `brick/diffuse.png`), or as a prefix (`maps/brick` stands for `maps/brick_*`).
Channels read: diffuse, specular, roughness, normals, basecolor and metallic; other files (`_render`, `_halfway`,
glTF textures, ...) are ignored.  Missing maps get defaults a renderer can use (see `DEFAULTS`); callers that
must not guess (scoring) ask `MaterialFiles.missing()` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from teamwork_cli.core.channels import NORMAL_CONVENTIONS
from teamwork_cli.core.conventions import DIELECTRIC_F0, basecolor_to_diffuse_specular, normalize, normals_gl_to_dx
from teamwork_cli.materials.files import SUPPORTED_READ, ImageError
from teamwork_cli.materials.read import read_map

MAPS = ("diffuse", "specular", "roughness", "normals")  # what the renderer and the scores need
GLTF_MAPS = ("basecolor", "metallic")  # the glTF metal-roughness pair (docs/conventions.md section 1)
CHANNELS = (*MAPS, *GLTF_MAPS)
# If a channel has files in several formats, the most precise wins: EXR holds values, 16-bit formats next.
_PREFERENCE = (".exr", ".tif", ".tiff", ".png", ".jpg", ".jpeg")
DEFAULTS = {
    "specular": f"{DIELECTRIC_F0} grey (a dielectric)",
    "roughness": "0.5",
    "normals": "flat (0, 0, 1)",
    "metallic": "0 (a dielectric)",
}

Size = int | tuple[int, int] | None


@dataclass(frozen=True)
class MaterialFiles:
    """The map files of one material."""

    name: str  # the stem, or the folder's name for bare `<channel>.<ext>` files
    folder: Path
    stem: str  # "" for bare files
    files: dict[str, Path] = field(default_factory=dict)  # channel -> file
    matched: dict[str, str] = field(default_factory=dict)  # channel -> a texture library's name it was read from

    @property
    def directx_normals(self) -> bool:
        """The normal map's name says DirectX (+Y down), as `_nor_dx` and `_NormalDX` do."""
        return self.matched.get("normals") in DIRECTX_NAMES

    def missing(self, strict: bool = False) -> list[str]:
        """What is missing.  strict=False: only what cannot be defaulted (a diffuse or basecolor map);
        strict=True: every map of MAPS without a file (diffuse and specular count as present when both
        basecolor and metallic have files, since they follow exactly)."""
        have = set(self.files)
        if not strict:
            return [] if have & {"diffuse", "basecolor"} else ["diffuse or basecolor"]
        gltf = {"basecolor", "metallic"} <= have
        return [c for c in MAPS if c not in have and not (gltf and c in ("diffuse", "specular"))]


# Texture libraries' names for our channels (case-insensitive, after the material's name and before an optional
# resolution such as `_1k`), so their downloads load as they are: Poly Haven (`brick_diff_1k.jpg`, `brick_nor_gl_1k`,
# `brick_rough_1k`, `brick_metal_1k`), ambientCG (`Bricks075A_1K-JPG_Color.jpg`, `_NormalGL`, `_NormalDX`,
# `_Roughness`, `_Metalness`) and common words. Their colour maps are metal-roughness base colours.
ALIASES = {
    "normal_opengl": "normals",
    "normal_gl": "normals",
    "nor_gl": "normals",
    "normalgl": "normals",
    "normal": "normals",
    "normal_directx": "normals",
    "normal_dx": "normals",
    "nor_dx": "normals",
    "normaldx": "normals",
    "rough": "roughness",
    "metalness": "metallic",
    "metal": "metallic",
    "albedo": "basecolor",
    "base_color": "basecolor",
    "color": "basecolor",
    "diff": "basecolor",
}
DIRECTX_NAMES = frozenset({"normal_directx", "normal_dx", "nor_dx", "normaldx"})  # +Y down: flipped on reading
_RESOLUTION = re.compile(r"^\d+k(-(jpg|png|exr|tif))?$", re.IGNORECASE)  # `1k`, `2K`, ambientCG's `1K-JPG`


@dataclass(frozen=True)
class _Name:
    stem: str
    channel: str
    alias: str | None  # the library name matched, if not our own channel name


def _parse_name(path: Path) -> _Name | None:
    """The material's stem and the channel of a map file name, or None if it is not a material map."""
    if path.name.startswith(".") or path.suffix.lower() not in SUPPORTED_READ or not path.is_file():
        return None
    tokens = path.stem.split("_")
    if len(tokens) > 1 and _RESOLUTION.match(tokens[-1]):
        tokens = tokens[:-1]
    for n in (2, 1):  # two-word names first: `nor_gl` before `gl`
        if len(tokens) < n:
            continue
        word = "_".join(tokens[-n:]).lower()
        channel = word if word in CHANNELS and n == 1 else ALIASES.get(word)
        if channel is None:
            continue
        rest = tokens[:-n]
        if rest and _RESOLUTION.match(rest[-1]):  # ambientCG: `<name>_1K-JPG_<channel>`
            rest = rest[:-1]
        return _Name("_".join(rest), channel, None if word == channel else word)
    return None


def map_files(folder: Path) -> dict[str, MaterialFiles]:
    """The materials of one folder's map files by stem ("" for bare `<channel>.<ext>` files), library names read."""
    return _group(sorted(folder.iterdir()), folder)


def parse_map_name(path: Path) -> tuple[str, str] | None:
    """(stem, channel) of a map file's name, library names included; None if it is not a material map."""
    return _parse(path)


def _parse(path: Path) -> tuple[str, str] | None:
    """(stem, channel) of a map file name, or None if it is not a material map."""
    name = _parse_name(path)
    return (name.stem, name.channel) if name else None


def _group(paths: list[Path], folder: Path) -> dict[str, MaterialFiles]:
    """Map files by stem; among files of the same stem and channel the most precise format wins."""
    found: dict[str, dict[str, Path]] = {}
    names = {p: n for p in paths if (n := _parse_name(p))}
    for p in sorted(names, key=lambda q: (_PREFERENCE.index(q.suffix.lower()), q.name)):
        found.setdefault(names[p].stem, {}).setdefault(names[p].channel, p)
    return {
        stem: MaterialFiles(
            stem or folder.name,
            folder,
            stem,
            files,
            matched={c: a for c, p in files.items() if (a := names[p].alias)},
        )
        for stem, files in sorted(found.items())
    }


def find_material(source: Path | str) -> MaterialFiles:
    """The map files of a folder holding one material, or of a prefix `folder/stem`."""
    src = Path(source).expanduser()
    if src.is_dir():
        stems = _group(list(src.iterdir()), src)
        if not stems:
            subs = sorted(m.name for m in find_materials(src)) if any(q.is_dir() for q in src.iterdir()) else []
            more = f"; material folders inside: {', '.join(subs)}" if subs else ""
            raise ImageError(
                f"{src}: no material maps (<stem>_<channel>.<ext> or <channel>.<ext> with channel "
                f"one of {', '.join(CHANNELS)}){more}"
            )
        if len(stems) > 1:
            names = ", ".join(repr(s) if s else "(bare <channel>.<ext>)" for s in stems)
            example = src / next(s for s in stems if s)
            raise ImageError(f"{src}: holds several materials ({names}); give a prefix such as {example}")
        material = next(iter(stems.values()))
    else:
        if not src.parent.is_dir():
            raise ImageError(f"{src}: no such folder or prefix")
        prefix = src.name + "_"
        matches = [q for q in src.parent.iterdir() if q.name.startswith(prefix)]
        material = _group(matches, src.parent).get(src.name) or MaterialFiles(src.name, src.parent, src.name)
        if not material.files:
            raise ImageError(
                f"{src}: no such folder, and no maps {src}_<channel>.<ext> (channel one of {', '.join(CHANNELS)})"
            )
    if material.missing():
        raise ImageError(
            f"{_where(material)}: no diffuse or basecolor map; at least one of them is needed "
            f"(found: {', '.join(sorted(material.files))})"
        )
    return material


def find_materials(folder: Path | str) -> list[MaterialFiles]:
    """Every material of a folder: each stem of its files, and the materials of its sub-folders (one level)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    found = list(_group(list(root.iterdir()), root).values())
    for sub in sorted(q for q in root.iterdir() if q.is_dir() and not q.name.startswith(".")):
        found.extend(_group(list(sub.iterdir()), sub).values())
    names = [m.name for m in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ImageError(f"{root}: several materials are named {', '.join(twice)}; rename or split the folder")
    return found


def _where(m: MaterialFiles) -> str:
    return str(m.folder / m.stem) + "_*" if m.stem else str(m.folder)


def read_material(
    m: MaterialFiles, *, size: Size = None, normal_convention: str = "opengl"
) -> tuple[dict[str, Tensor], list[str]]:
    """Value-domain maps [1, C, H, W] (MAPS, plus basecolor/metallic if they have files) and notes on what was
    defaulted, derived or resized.  `size` is (height, width) or the longer side (keeping the aspect ratio);
    by default every map gets the diffuse (or basecolor) map's size.  normal_convention: how the normal map
    file is stored ("directx": +Y down, as Unreal and some exporters write it); the maps returned are OpenGL."""
    if normal_convention not in NORMAL_CONVENTIONS:
        raise ValueError(f"normal_convention must be one of {', '.join(NORMAL_CONVENTIONS)}; got {normal_convention!r}")
    arrays = {c: read_map(p, c) for c, p in m.files.items()}
    h, w = arrays["diffuse" if "diffuse" in arrays else "basecolor"].shape[:2]
    if isinstance(size, int):
        hw = (max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w))))
    else:
        hw = size or (h, w)
    notes = [f"{m.files[c].name}: read as {c} (a texture library's {a!r})" for c, a in m.matched.items()]
    maps: dict[str, Tensor] = {}
    for c, v in arrays.items():
        if v.shape[:2] != hw:
            if size is None:
                notes.append(f"{m.files[c]} is {v.shape[1]}x{v.shape[0]}: resized to {hw[1]}x{hw[0]}")
            v = read_map(m.files[c], c, size=hw)  # box filter when shrinking, bilinear when growing
        maps[c] = torch.from_numpy(v).permute(2, 0, 1).unsqueeze(0).contiguous()
    ones = torch.ones(1, 1, *hw)
    if "basecolor" in maps and not {"diffuse", "specular"} <= maps.keys():
        if "metallic" not in maps:
            notes.append(f"{_where(m)}: no metallic map: using {DEFAULTS['metallic']}")
        diffuse, specular = basecolor_to_diffuse_specular(maps["basecolor"], maps.get("metallic", ones * 0))
        maps.setdefault("diffuse", diffuse)
        if "specular" not in maps:
            notes.append(f"{_where(m)}: specular derived from basecolor and metallic")
            maps["specular"] = specular
    flat = torch.cat([ones * 0, ones * 0, ones], dim=1)
    for c, value in (
        ("specular", ones.repeat(1, 3, 1, 1) * DIELECTRIC_F0),
        ("roughness", ones * 0.5),
        ("normals", flat),
    ):
        if c not in maps:
            notes.append(f"{_where(m)}: no {c} map: using {DEFAULTS[c]}")
            maps[c] = value
    if (normal_convention == "directx" or m.directx_normals) and "normals" in m.files:
        maps["normals"] = normals_gl_to_dx(maps["normals"], axis=-3)  # the same Y flip both ways
        if m.directx_normals:
            notes.append(f"{m.files['normals'].name}: a DirectX normal map by its name: +Y flipped to OpenGL")
    maps["normals"] = normalize(maps["normals"], axis=-3)  # EXR normals are taken as stored: make them unit
    return maps, notes


def load_material(source: Path | str, *, size: Size = None) -> dict[str, Tensor]:
    """Value-domain maps [1, C, H, W] of the material at `source` (a folder or a prefix): diffuse, specular,
    roughness and normals (derived from basecolor/metallic, or defaulted, when missing), plus basecolor and
    metallic when they have files.  `size` is (height, width) or the longer side; default: the diffuse
    map's size."""
    return read_material(find_material(source), size=size)[0]
