"""A real Blender (bpy, the `dev` extra where it installs) for the add-on's tests: the add-on installed from the
zip `teamwork blender-addon` writes, a 64x64 Cycles CPU stage (plane, camera of docs/conventions.md section 3,
a light from the side), and the `teamwork` command of this environment for the add-on to run.

bpy is imported by the test modules (pytest.importorskip), not here, so the tests that need no Blender run
without it. Blender's user folders (where add-ons install) are pointed at a temporary folder before that import.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "examples" / "wood_flash.png"
TEAMWORK = Path(sys.executable).with_name("teamwork.exe" if sys.platform == "win32" else "teamwork")
_HOME = Path(tempfile.mkdtemp(prefix="teamwork-blender-home-"))
for _var in ("RESOURCES", "CONFIG", "SCRIPTS", "EXTENSIONS", "DATAFILES"):
    os.environ.setdefault(f"BLENDER_USER_{_var}", str(_HOME / _var.lower()))
SIDE_LIGHT = (2.0, 0.0, 1.5)  # as `teamwork render --sheet`'s "light right": low enough for relief to show
CAMERA_HEIGHT = 1 / math.tan(math.radians(22.5))  # docs/conventions.md section 3: 45 degrees across the patch


@pytest.fixture(scope="session", autouse=True)
def _blender_home():
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def addon(tmp_path_factory):
    """The add-on, installed from its zip and enabled, its preferences set to this environment's teamwork and a
    temporary maps folder; yields the add-on's module name."""
    import addon_utils
    import bpy

    from teamwork_cli.blender.bundle import ADDON, write_addon_zip

    assert TEAMWORK.is_file(), f"{TEAMWORK}: the package's command is not installed in this environment"
    zip_path = write_addon_zip(tmp_path_factory.mktemp("addon") / "teamwork_addon.zip")
    bpy.ops.preferences.addon_install(filepath=str(zip_path))
    bpy.ops.preferences.addon_enable(module=ADDON)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.teamwork_path = str(TEAMWORK)
    prefs.maps_folder = str(tmp_path_factory.mktemp("maps"))
    yield ADDON
    addon_utils.disable(ADDON)


class Stage:
    """Scenes, materials and renders for the tests (the `stage` fixture)."""

    photo = PHOTO
    teamwork = TEAMWORK

    @staticmethod
    def new_scene() -> None:
        """An empty file: no objects, materials or images (the preferences, and so the add-on, stay)."""
        import bpy

        bpy.ops.wm.read_homefile(use_empty=True)

    @staticmethod
    def plane():
        """A 2 x 2 plane at z = 0 facing +Z with UVs: the patch of docs/conventions.md section 3."""
        import bpy

        bpy.ops.mesh.primitive_plane_add(size=2)
        return bpy.context.active_object

    @staticmethod
    def photo_material():
        """The photo as albedo: Principled BSDF with the photo (sRGB) as base colour, every other input its default."""
        import bpy

        mat = bpy.data.materials.new("photo as albedo")
        mat.use_nodes = True
        bsdf = mat.node_tree.nodes["Principled BSDF"]
        tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
        tex.image = bpy.data.images.load(str(PHOTO), check_existing=False)
        tex.image.colorspace_settings.name = "sRGB"
        mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        return mat

    @staticmethod
    def render(path: Path) -> np.ndarray:
        """Render the current scene from above, lit from the side, at 64 x 64 with Cycles on the CPU (16 samples);
        returns the picture as H x W x 3 sRGB values in [0, 1]."""
        import bpy
        from PIL import Image

        scene = bpy.context.scene
        cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
        cam.data.angle = math.radians(45)
        cam.location = (0.0, 0.0, CAMERA_HEIGHT)  # looking down -Z, image up = +Y
        light = bpy.data.objects.new("side light", bpy.data.lights.new("side light", "POINT"))
        light.data.energy = 150.0  # W: the plane's lit side near mid-grey, its far side darker, nothing clipped
        light.data.shadow_soft_size = 0.0
        light.location = SIDE_LIGHT
        for obj in (cam, light):
            scene.collection.objects.link(obj)
        scene.camera = cam
        world = bpy.data.worlds.new("black")
        world.color = (0.0, 0.0, 0.0)
        scene.world = world
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = 16
        scene.cycles.use_denoising = False
        scene.render.threads_mode = "FIXED"
        scene.render.threads = 2
        scene.render.resolution_x = scene.render.resolution_y = 64
        scene.render.resolution_percentage = 100
        scene.view_settings.view_transform = "Standard"  # plain sRGB out, as the maps' own renders
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGB"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255

    @staticmethod
    def links(material) -> set[tuple[str, str, str, str]]:
        """(from node name, output, to node name, input) of every link of a material's node tree."""
        return {
            (k.from_node.name, k.from_socket.name, k.to_node.name, k.to_socket.name) for k in material.node_tree.links
        }

    @staticmethod
    def source(material, socket: str):
        """The node linked into the Principled BSDF's `socket`, or None."""
        bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        found = bsdf.inputs[socket].links
        return found[0].from_node if found else None


@pytest.fixture(scope="session")
def stage() -> type[Stage]:
    """Stage: new_scene(), plane(), photo_material(), render(path), links(material), source(material, socket)."""
    return Stage
