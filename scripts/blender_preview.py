"""Render the README's picture of the Blender add-on: docs/blender_wood.png.

    .venv/bin/python scripts/blender_preview.py [-o docs/blender_wood.png] [--size 160]

Needs bpy (the dev extra). Installs the add-on from the zip `teamwork blender-addon` writes into a temporary
Blender user folder, runs its "Material from photo" on examples/wood_flash.png (the real `teamwork svbrdf` of this
environment, embedded model, CPU), and renders headless with Cycles on the CPU: a plane seen from above, lit from
the side (+X), with the photo as albedo (left) and with the add-on's material (right). The same stage as
tests/blender, at a larger size, denoised, and saved as a small palette PNG.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="teamwork-blender-preview-"))
for var in ("RESOURCES", "CONFIG", "SCRIPTS", "EXTENSIONS", "DATAFILES"):  # before bpy loads: nothing in ~/.config
    os.environ[f"BLENDER_USER_{var}"] = str(HOME / var.lower())

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from teamwork_cli.blender.bundle import ADDON, write_addon_zip  # noqa: E402

PHOTO = ROOT / "examples" / "wood_flash.png"
TEAMWORK = Path(sys.executable).with_name("teamwork")


def stage(dress: Callable[[bpy.types.Object], None], out: Path, size: int) -> np.ndarray:
    """In an empty file, a 2 x 2 plane that `dress` gives its material, the camera of docs/conventions.md section
    3 and a light at (2, 0, 1.5); the render as H x W x 3 bytes."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_plane_add(size=2)
    dress(bpy.context.active_object)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    cam.data.angle = math.radians(45)
    cam.location = (0.0, 0.0, 1 / math.tan(math.radians(22.5)))
    light = bpy.data.objects.new("light", bpy.data.lights.new("light", "POINT"))
    light.data.energy = 200.0
    light.data.shadow_soft_size = 0.0
    light.location = (2.0, 0.0, 1.5)
    for obj in (cam, light):
        scene.collection.objects.link(obj)
    scene.camera = cam
    scene.world = bpy.data.worlds.new("black")
    scene.world.color = (0.0, 0.0, 0.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 32
    scene.cycles.use_denoising = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(out).convert("RGB"))


def material_from_photo(obj: bpy.types.Object) -> None:
    """The add-on's operator, with its defaults (but the CPU): it assigns its material to the active object."""
    if bpy.ops.teamwork.material_from_photo(filepath=str(PHOTO), device="cpu") != {"FINISHED"}:
        raise SystemExit("Material from photo failed")


def photo_as_albedo(obj: bpy.types.Object) -> None:
    mat = bpy.data.materials.new("photo as albedo")
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(PHOTO))
    mat.node_tree.links.new(tex.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    obj.data.materials.append(mat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "blender_wood.png")
    ap.add_argument("--size", type=int, default=160, help="Each render's side in pixels.")
    args = ap.parse_args()
    try:
        run(args.out, args.size)
    finally:
        shutil.rmtree(HOME, ignore_errors=True)


def run(out: Path, size: int) -> None:
    work = HOME / "work"
    work.mkdir()
    bpy.ops.preferences.addon_install(filepath=str(write_addon_zip(work / "teamwork_addon.zip")))
    bpy.ops.preferences.addon_enable(module=ADDON)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.teamwork_path, prefs.maps_folder = str(TEAMWORK), str(work / "maps")
    left = stage(photo_as_albedo, work / "photo.png", size)
    right = stage(material_from_photo, work / "material.png", size)
    band, gap = 18, 4
    sheet = Image.new("RGB", (2 * size + 3 * gap, size + band + 2 * gap), (31, 31, 31))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for k, (label, pic) in enumerate((("photo as albedo", left), ("Material from photo", right))):
        x = gap + k * (size + gap)
        sheet.paste(Image.fromarray(pic), (x, gap + band))
        draw.text((x + 2, gap + band // 2), label, fill=(235, 235, 235), font=font, anchor="lm")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    print(out)


if __name__ == "__main__":
    main()
