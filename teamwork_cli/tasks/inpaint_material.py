"""A material's map files for `inpaint --maps`, as texture libraries name and store them, and back.

Poly Haven and ambientCG downloads (`materials/folders.py` reads their names) hold a metal-roughness base colour
and metallic map, not the diffuse and specular maps the team fills, and may store normals DirectX-style (+Y down).
So the team is given diffuse/specular derived from basecolor/metallic (docs/conventions.md section 1) and OpenGL
normals; what is written keeps the files' own forms: outside the mask every map is its file's stored value, and a
material that has basecolor/metallic gets them back, refitted from the filled diffuse/specular inside the mask so
the glTF pair stays in step with the maps.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from teamwork_cli.core.conventions import basecolor_to_diffuse_specular, diffuse_specular_to_basecolor
from teamwork_cli.core.encoding import encode
from teamwork_cli.tasks.inpaint import MapFile, read_both

GLTF = ("basecolor", "metallic")


def read_maps(files: dict[str, Path], channels: list[str], *, directx: bool = False) -> dict[str, MapFile]:
    """The maps of `files` (channel -> file) the team needs for `channels`, plus the material's glTF pair.

    diffuse/specular missing but basecolor given: derived from basecolor and metallic (0 when it has no file).
    directx: the normal map is stored +Y down; the team sees it as OpenGL (its encoded green flipped), while the
    stored values (kept outside the mask) stay as the file has them."""
    both = {c: read_both(f, c) for c, f in files.items() if c in channels or c in GLTF}
    if "basecolor" in both and any(c in channels and c not in both for c in ("diffuse", "specular")):
        base = both["basecolor"].values.clamp(0, 1)
        metal = both["metallic"].values.clamp(0, 1) if "metallic" in both else torch.zeros_like(base[:, :1])
        if metal.shape[-2:] != base.shape[-2:]:
            raise ValueError(f"{files['metallic']} and {files['basecolor']} differ in size")
        derived = dict(zip(("diffuse", "specular"), basecolor_to_diffuse_specular(base, metal), strict=True))
        for c, v in derived.items():
            if c in channels and c not in both:
                both[c] = MapFile(encode(c, v).clamp(0, 1), v, None)
    if directx and "normals" in both:
        n = both["normals"]
        gl = n.encoded.clone()
        gl[:, 1] = 1 - gl[:, 1]
        both["normals"] = n._replace(encoded=gl)
    return both


def write_back(
    filled: dict[str, Tensor], both: dict[str, MapFile], mask: Tensor, *, directx: bool = False
) -> dict[str, Tensor]:
    """The filled maps in the files' forms: DirectX normals flipped back inside the mask, and basecolor/metallic
    (when the material has either) refitted from the filled diffuse/specular inside the mask, the files' values
    outside it."""
    out = dict(filled)
    hole = mask > 0.5
    if directx and "normals" in out:
        n = out["normals"].clone()
        n[:, 1:2] = torch.where(hole, -n[:, 1:2], n[:, 1:2])
        out["normals"] = n
    if any(c in both for c in GLTF) and {"diffuse", "specular"} <= set(out):
        base, metal = diffuse_specular_to_basecolor(out["diffuse"], out["specular"], axis=1)
        base, metal = base.float().clamp(0, 1), metal.float().clamp(0, 1)
        if "basecolor" in both:
            base = torch.where(hole, base, both["basecolor"].values)
        if "metallic" in both:
            metal = torch.where(hole, metal, both["metallic"].values)
        else:  # no metallic file: the material was a dielectric outside the hole
            metal = torch.where(hole, metal, torch.zeros_like(metal))
        out["basecolor"], out["metallic"] = base, metal
    return out


__all__ = ["GLTF", "read_maps", "write_back"]
