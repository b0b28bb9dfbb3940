"""A Principled BSDF material from teamwork's map files (the CLI's docs/conventions.md section 1):

- base colour: basecolor (svbrdf, synthesize) or albedo (intrinsics), sRGB;
- roughness (perceptual, as Blender's) and metallic: Non-Color;
- normals: Non-Color through a Normal Map node in tangent space; the files are OpenGL (+Y up), Blender's own
  convention, and UV u/v run along the texture's rows/columns, so the map's +X/+Y are the tangent/bitangent;
- specular (the material's F0 colour): the dielectric F0 that gives it back, (F0 - metallic * basecolor) /
  (1 - metallic), as Principled's Specular Tint relative to the 0.04 of IOR 1.5 (Blender's dielectric F0 is
  F0(IOR) * tint at Specular IOR Level 0.5) - the mapping of KHR_materials_specular the glTF export uses.
Other channels (intrinsics' shading, depth, residual, ...) are loaded as unconnected image nodes.

Everything is made only after the command succeeded, and a failure while building removes what was made.
"""

from __future__ import annotations

from pathlib import Path

import bpy

# Colour channels stored sRGB in PNG/JPEG/TIFF; EXR files hold linear values, Blender's default for them.
SRGB = frozenset({"basecolor", "albedo", "diffuse", "specular", "residual", "image", "render"})
BASE_CHANNELS = ("basecolor", "albedo", "diffuse")  # the first present is the base colour
DIELECTRIC_F0 = 0.04  # IOR 1.5; glTF's dielectric
_METAL_EPS = 1e-3


def colorspace(channel: str, path: Path) -> str | None:
    """The colour space an image node must read `path` in; None: Blender's default (linear, for float files)."""
    if Path(path).suffix.lower() == ".exr":
        return None if channel in SRGB or channel == "diffuseshading" else "Non-Color"
    return "sRGB" if channel in SRGB else "Non-Color"


class _Builder:
    def __init__(self, name: str) -> None:
        self.images: list[bpy.types.Image] = []
        self.material = bpy.data.materials.new(name)
        self.material.use_nodes = True
        self.tree = self.material.node_tree
        self.tree.nodes.clear()

    def node(self, kind: str, x: float, y: float, label: str = "") -> bpy.types.Node:
        n = self.tree.nodes.new(kind)
        n.location = (x, y)
        if label:
            n.label = label
        return n

    def image(self, channel: str, path: Path, x: float, y: float) -> bpy.types.Node:
        img = bpy.data.images.load(str(path), check_existing=False)
        self.images.append(img)
        space = colorspace(channel, path)
        if space is not None:
            img.colorspace_settings.name = space
        n = self.node("ShaderNodeTexImage", x, y, channel)
        n.name = f"teamwork {channel}"
        n.image = img
        return n

    def link(self, a: bpy.types.NodeSocket, b: bpy.types.NodeSocket) -> None:
        self.tree.links.new(a, b)

    def discard(self) -> None:
        for img in self.images:
            bpy.data.images.remove(img)
        bpy.data.materials.remove(self.material)


def build_material(name: str, maps: dict[str, Path], *, layers: bool = False) -> bpy.types.Material:
    """A material named `name` from channel -> file; layers=True also loads the channels it does not wire."""
    base_channel = next((c for c in BASE_CHANNELS if c in maps), None)
    if base_channel is None:
        raise ValueError(f"no base colour among the maps written ({', '.join(sorted(maps)) or 'none'})")
    b = _Builder(name)
    try:
        _wire(b, maps, base_channel, layers)
    except BaseException:
        b.discard()
        raise
    return b.material


def _wire(b: _Builder, maps: dict[str, Path], base_channel: str, layers: bool) -> None:
    out = b.node("ShaderNodeOutputMaterial", 400, 300)
    bsdf = b.node("ShaderNodeBsdfPrincipled", 100, 300)
    b.link(bsdf.outputs["BSDF"], out.inputs["Surface"])
    if "IOR" in bsdf.inputs:
        bsdf.inputs["IOR"].default_value = 1.5  # F0 = 0.04: the dielectric the maps' conventions assume
    used = {base_channel}
    base = b.image(base_channel, maps[base_channel], -700, 500)
    b.link(base.outputs["Color"], bsdf.inputs["Base Color"])
    metal = None
    for y, channel, socket in ((200, "metallic", "Metallic"), (-50, "roughness", "Roughness")):
        if channel in maps:
            n = b.image(channel, maps[channel], -700, y)
            b.link(n.outputs["Color"], bsdf.inputs[socket])
            used.add(channel)
            metal = n if channel == "metallic" else metal
    if "normals" in maps:
        n = b.image("normals", maps["normals"], -700, -300)
        normal_map = b.node("ShaderNodeNormalMap", -300, -300)
        normal_map.space = "TANGENT"
        b.link(n.outputs["Color"], normal_map.inputs["Color"])
        b.link(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
        used.add("normals")
    tint = bsdf.inputs.get("Specular Tint")
    if "specular" in maps and base_channel == "basecolor" and tint is not None and tint.type == "RGBA":
        spec = b.image("specular", maps["specular"], -1300, 700)
        _specular_tint(b, spec.outputs["Color"], base.outputs["Color"], metal.outputs["Color"] if metal else None, tint)
        used.add("specular")
    if layers:
        rest = [c for c in sorted(maps) if c not in used]
        for k, c in enumerate(rest):
            b.image(c, maps[c], -1300 - 300 * (k // 4), -300 - 280 * (k % 4))


def _specular_tint(
    b: _Builder,
    f0: bpy.types.NodeSocket,
    base: bpy.types.NodeSocket,
    metal: bpy.types.NodeSocket | None,
    tint: bpy.types.NodeSocket,
) -> None:
    """Specular Tint = clip((F0 - metallic * base) / max(1 - metallic, eps), 0, 1) / 0.04 (module docstring)."""
    x, y = -1000, 650
    if metal is None:  # a dielectric everywhere: the dielectric F0 is the specular map itself
        scale = b.node("ShaderNodeVectorMath", x + 600, y, "Specular Tint")
        scale.operation = "SCALE"
        b.link(f0, scale.inputs[0])
        scale.inputs["Scale"].default_value = 1 / DIELECTRIC_F0
        b.link(scale.outputs["Vector"], tint)
        return
    metal_base = b.node("ShaderNodeVectorMath", x, y, "metallic * base")
    metal_base.operation = "SCALE"
    b.link(base, metal_base.inputs[0])
    b.link(metal, metal_base.inputs["Scale"])
    dielectric = b.node("ShaderNodeVectorMath", x + 200, y, "F0 - metallic * base")
    dielectric.operation = "SUBTRACT"
    b.link(f0, dielectric.inputs[0])
    b.link(metal_base.outputs["Vector"], dielectric.inputs[1])
    rest = b.node("ShaderNodeMath", x, y - 200, "1 - metallic")
    rest.operation = "SUBTRACT"
    rest.inputs[0].default_value = 1.0
    b.link(metal, rest.inputs[1])
    floor = b.node("ShaderNodeMath", x + 200, y - 200, "max(1 - metallic, eps)")
    floor.operation = "MAXIMUM"
    b.link(rest.outputs["Value"], floor.inputs[0])
    floor.inputs[1].default_value = _METAL_EPS
    gain = b.node("ShaderNodeMath", x + 400, y - 200, "1 / (0.04 (1 - metallic))")
    gain.operation = "DIVIDE"
    gain.inputs[0].default_value = 1 / DIELECTRIC_F0
    b.link(floor.outputs["Value"], gain.inputs[1])
    scaled = b.node("ShaderNodeVectorMath", x + 400, y, "dielectric F0 / 0.04")
    scaled.operation = "SCALE"
    b.link(dielectric.outputs["Vector"], scaled.inputs[0])
    b.link(gain.outputs["Value"], scaled.inputs["Scale"])
    low = b.node("ShaderNodeVectorMath", x + 600, y, "clip")
    low.operation = "MAXIMUM"
    b.link(scaled.outputs["Vector"], low.inputs[0])
    low.inputs[1].default_value = (0.0, 0.0, 0.0)
    high = b.node("ShaderNodeVectorMath", x + 800, y, "Specular Tint")
    high.operation = "MINIMUM"
    b.link(low.outputs["Vector"], high.inputs[0])
    high.inputs[1].default_value = (1 / DIELECTRIC_F0,) * 3
    b.link(high.outputs["Vector"], tint)


def assign(obj: bpy.types.Object | None, material: bpy.types.Material) -> bool:
    """Put `material` in the active slot of a mesh object (a new slot if it has none); False if not a mesh."""
    if obj is None or obj.type != "MESH":
        return False
    if obj.material_slots:
        obj.active_material = material
    else:
        obj.data.materials.append(material)
    return True
