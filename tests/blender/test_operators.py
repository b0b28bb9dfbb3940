"""The add-on in a real Blender: it registers, "Material from photo" runs the real `teamwork svbrdf` on the bundled
photo against the embedded model and wires the maps as the conventions say, the result renders lit from the
side unlike the photo used as albedo, and failures and cancels leave nothing behind."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip(
    "bpy", reason="needs bpy (Blender as a Python module; the dev extra installs it on CPython 3.11)"
)


@pytest.fixture(scope="module")
def wood(addon, stage, tmp_path_factory) -> dict:
    """Run the operator once on a plane (CPU, --resolution 64, --fit diffuse: seconds) and record what it made,
    with renders of it and of the photo as albedo."""
    stage.new_scene()
    obj = stage.plane()
    result = bpy.ops.teamwork.material_from_photo(
        filepath=str(stage.photo), device="cpu", resolution=64, fit="diffuse", seed=3
    )
    mat = obj.active_material
    facts = {
        "result": result,
        "material": mat.name if mat else None,
        "links": stage.links(mat),
        "sources": {
            s: stage.source(mat, s) for s in ("Base Color", "Metallic", "Roughness", "Normal", "Specular Tint")
        },
        "images": {i.name: (i.colorspace_settings.name, Path(i.filepath), tuple(i.size)) for i in bpy.data.images},
        "normal_space": next(n.space for n in mat.node_tree.nodes if n.type == "NORMAL_MAP"),
    }
    facts["sources"] = {
        k: (n.name, n.image.name if n.type == "TEX_IMAGE" else None) for k, n in facts["sources"].items()
    }
    out = tmp_path_factory.mktemp("renders")
    facts["render"] = stage.render(out / "material.png")
    obj.active_material = stage.photo_material()
    facts["photo_render"] = stage.render(out / "photo.png")
    return facts


def test_addon_registers(addon) -> None:
    assert addon in bpy.context.preferences.addons
    for op in ("material_from_photo", "layers_from_image", "synthesize_material"):
        assert hasattr(bpy.ops.teamwork, op) and getattr(bpy.ops.teamwork, op).poll()
    assert hasattr(bpy.types, "TEAMWORK_PT_panel")
    prefs = bpy.context.preferences.addons[addon].preferences
    assert Path(prefs.teamwork_path).name.startswith("teamwork")


def test_material_from_photo_wires_the_maps(wood) -> None:
    assert wood["result"] == {"FINISHED"} and wood["material"] == "wood_flash"
    src = wood["sources"]
    assert src["Base Color"] == ("teamwork basecolor", "wood_flash_basecolor.png")
    assert src["Metallic"] == ("teamwork metallic", "wood_flash_metallic.png")
    assert src["Roughness"] == ("teamwork roughness", "wood_flash_roughness.png")
    assert src["Normal"][0] == "Normal Map" and wood["normal_space"] == "TANGENT"
    assert ("teamwork normals", "Color", "Normal Map", "Color") in wood["links"]
    assert src["Specular Tint"][0].startswith("Vector Math")  # the dielectric F0 / 0.04 chain
    assert ("teamwork specular", "Color", "Vector Math.001", "Vector") in wood["links"]
    spaces = {name: space for name, (space, _, _) in wood["images"].items()}
    assert spaces == {
        "wood_flash_basecolor.png": "sRGB",
        "wood_flash_specular.png": "sRGB",
        "wood_flash_metallic.png": "Non-Color",
        "wood_flash_roughness.png": "Non-Color",
        "wood_flash_normals.png": "Non-Color",
    }
    folders = {p.parent for _, p, _ in wood["images"].values()}
    assert len(folders) == 1 and all(size == (256, 256) for *_, size in wood["images"].values())  # resized back


def test_material_renders_lit_and_unlike_the_photo_as_albedo(wood) -> None:
    lit, photo = wood["render"], wood["photo_render"]
    assert lit.shape == (64, 64, 3)
    assert lit.mean() > 0.03 and lit.max() > 0.2  # not black
    assert lit[:, 40:].mean() > lit[:, :24].mean()  # brighter on the light's side (+X, the right)
    assert np.abs(lit - photo).mean() > 0.02


def test_a_failing_command_reports_its_error_and_builds_nothing(addon, stage, tmp_path) -> None:
    stage.new_scene()
    stage.plane()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a PNG at all")
    maps = Path(bpy.context.preferences.addons[addon].preferences.maps_folder)
    before = sorted(maps.iterdir())
    with pytest.raises(RuntimeError) as e:
        bpy.ops.teamwork.material_from_photo(filepath=str(bad), device="cpu")
    message = str(e.value)
    assert "Teamwork:" in message and "broken.png" in message and "hint:" in message
    assert len(bpy.data.materials) == 0 and len(bpy.data.images) == 0
    assert bpy.context.active_object.active_material is None
    assert sorted(maps.iterdir()) == before  # its run folder was removed


def test_a_missing_photo_is_refused_before_running(addon, stage, tmp_path) -> None:
    stage.new_scene()
    with pytest.raises(RuntimeError, match="no such image file"):
        bpy.ops.teamwork.material_from_photo(filepath=str(tmp_path / "nowhere.png"))
    assert len(bpy.data.materials) == 0


def test_a_build_failure_removes_what_it_made(addon, stage, tmp_path) -> None:
    import importlib

    nodes = importlib.import_module(f"{addon}.nodes")
    stage.new_scene()
    maps = {"basecolor": stage.photo, "roughness": stage.photo, "normals": tmp_path / "missing_normals.png"}
    with pytest.raises(RuntimeError):  # bpy.data.images.load: cannot read the file
        nodes.build_material("half", maps)
    assert len(bpy.data.materials) == 0 and len(bpy.data.images) == 0


def test_escape_cancels_the_running_command(addon, stage) -> None:
    """The modal path, driven by hand (no event loop here): a timer tick, then ESC ends the subprocess, removes
    its folder and builds nothing."""
    import importlib

    operators = importlib.import_module(f"{addon}.operators")
    stage.new_scene()

    class Run(operators._Run):
        bl_label = "Material from photo"

        def __init__(self) -> None:
            self.reports: list[tuple[set[str], str]] = []
            self._timer = None

        def report(self, kind: set[str], message: str) -> None:
            self.reports.append((kind, message))

        def material_name(self) -> str:
            return "cancelled"

        def command(self, exe: str, out_dir: Path) -> list[str]:
            return [exe, "svbrdf", str(stage.photo), "-o", str(out_dir), "--device", "cpu"]

    run = Run()
    run.start(bpy.context)
    folder = run._folder
    assert folder.is_dir()
    assert run.modal(bpy.context, SimpleNamespace(type="TIMER")) == {"RUNNING_MODAL"}
    assert run.modal(bpy.context, SimpleNamespace(type="MOUSEMOVE")) == {"PASS_THROUGH"}
    assert run.modal(bpy.context, SimpleNamespace(type="ESC")) == {"CANCELLED"}
    assert run._job.proc.returncode is not None and run._job.proc.returncode != 0
    assert not folder.exists()
    assert run.reports == [({"WARNING"}, "Teamwork: cancelled; nothing was made")]
    assert len(bpy.data.materials) == 0 and len(bpy.data.images) == 0


def test_layers_from_image_builds_albedo_material_with_every_layer(addon, stage) -> None:
    stage.new_scene()
    obj = stage.plane()
    assert bpy.ops.teamwork.layers_from_image(filepath=str(stage.photo), device="cpu", resolution=64) == {"FINISHED"}
    mat = obj.active_material
    assert mat.name == "wood_flash"
    assert stage.source(mat, "Base Color").image.name == "wood_flash_albedo.png"
    assert stage.source(mat, "Roughness").image.name == "wood_flash_roughness.png"
    assert stage.source(mat, "Metallic").image.name == "wood_flash_metallic.png"
    assert stage.source(mat, "Normal").type == "NORMAL_MAP"
    spaces = {i.name.removeprefix("wood_flash_"): i.colorspace_settings.name for i in bpy.data.images}
    assert spaces == {
        "albedo.png": "sRGB",
        "diffuse.png": "sRGB",
        "specular.png": "sRGB",
        "residual.png": "sRGB",
        "roughness.png": "Non-Color",
        "metallic.png": "Non-Color",
        "normals.png": "Non-Color",
        "depth.png": "Non-Color",
        "inverseshading.png": "Non-Color",
        "diffuseshading.exr": "Linear Rec.709",  # EXR: linear values, Blender's default for float files
    }
    unlinked = {n.image.name for n in mat.node_tree.nodes if n.type == "TEX_IMAGE" and not n.outputs["Color"].links}
    assert "wood_flash_depth.png" in unlinked and "wood_flash_diffuseshading.exr" in unlinked


def test_synthesize_material(addon, stage) -> None:
    stage.new_scene()
    obj = stage.plane()
    result = bpy.ops.teamwork.synthesize_material(device="cpu", size=32, steps=2, seed=5, tileable=True)
    assert result == {"FINISHED"}
    mat = obj.active_material
    assert mat.name == "material_000"
    assert stage.source(mat, "Base Color").image.name == "material_000_basecolor.png"
    assert stage.source(mat, "Specular Tint") is not None
    assert all(tuple(i.size) == (32, 32) for i in bpy.data.images)
    folder = Path(bpy.data.images["material_000_basecolor.png"].filepath).parent
    assert folder.name == "synthesized_5"
