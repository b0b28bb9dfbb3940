"""The add-on's preferences, operators and sidebar panel.

Each operator runs one `teamwork` command (runner.py) and builds a material from its maps (nodes.py). In
Blender's UI it runs modal: a timer polls the subprocess, its progress shows in the status bar and the window
manager's progress indicator, and ESC cancels (the subprocess is ended, its folder removed). Without a window
(`blender -b`, bpy as a module, scripts) the same run blocks until the command ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from . import nodes, runner

_DEVICE_ITEMS = [(d, d, f"teamwork --device {d}") for d in runner.DEVICES]
_FIT_ITEMS = [
    ("levels", "Levels", "Fit the maps' global levels to the photo, then solve the diffuse map (a few seconds)"),
    ("diffuse", "Diffuse", "Only solve the diffuse map per pixel (instant)"),
    ("none", "None", "The network's maps as they are"),
]


class TeamworkPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    teamwork_path: StringProperty(
        name="teamwork command",
        subtype="FILE_PATH",
        default="",
        description="The installed teamwork executable (e.g. a virtual environment's bin/teamwork); empty: the "
        "one on PATH",
    )
    maps_folder: StringProperty(
        name="Maps folder",
        subtype="DIR_PATH",
        default="",
        description="Where each run writes its maps, in a new folder of its own; empty: a 'teamwork' folder "
        "beside the saved .blend file, else Blender's user data folder",
    )

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "teamwork_path")
        self.layout.prop(self, "maps_folder")


def preferences(context: bpy.types.Context) -> TeamworkPreferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None  # None when the module was registered by hand


def maps_base(context: bpy.types.Context) -> Path:
    prefs = preferences(context)
    if prefs and prefs.maps_folder:
        return Path(bpy.path.abspath(prefs.maps_folder))
    if bpy.data.filepath:
        return Path(bpy.data.filepath).parent / "teamwork"
    return Path(bpy.utils.user_resource("DATAFILES", path="teamwork", create=True))


class _Run:
    """Shared by the operators: start the command, follow it, and build the material once it has succeeded."""

    bl_options = {"REGISTER", "UNDO"}

    device: EnumProperty(name="Device", items=_DEVICE_ITEMS, default="auto")
    seed: IntProperty(name="Seed", default=0, min=0, description="The same seed gives the same maps")
    tileable: BoolProperty(name="Tileable", default=False, description="Maps that wrap seamlessly (--tileable)")
    adapter: StringProperty(name="Adapter", default="", description="--adapter: a file or name; empty: the shipped one")
    assign: BoolProperty(name="Assign to active object", default=True)

    def command(self, exe: str, out_dir: Path) -> list[str]:
        raise NotImplementedError

    def material_name(self) -> str:
        raise NotImplementedError

    def start(self, context: bpy.types.Context) -> None:
        prefs = preferences(context)
        exe = runner.find_teamwork(prefs.teamwork_path if prefs else "")
        self._folder = runner.new_run_folder(maps_base(context), self.material_name())
        try:
            self._job = runner.Job(self.command(exe, self._folder))
        except BaseException:
            runner.discard(self._folder)
            raise
        self._started = time.monotonic()

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            self.start(context)
        except runner.RunnerError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        wm = context.window_manager
        if bpy.app.background or context.window is None:  # no event loop, no UI to keep responsive: wait here
            try:
                code = self._job.wait()
            except BaseException:
                self._job.cancel()
                runner.discard(self._folder)
                raise
            return self.finish(context, code)
        wm.progress_begin(0, 1000)
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        self.show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC":
            self._job.cancel()
            self.end(context)
            runner.discard(self._folder)
            self.report({"WARNING"}, "Teamwork: cancelled; nothing was made")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        code = self._job.poll()
        if code is None:
            self.show(context)
            return {"RUNNING_MODAL"}
        self.end(context)
        return self.finish(context, code)

    def show(self, context: bpy.types.Context) -> None:
        parser = self._job.parser
        fraction = parser.fraction()
        done, total = parser.progress or (0, 0)
        seconds = int(time.monotonic() - self._started)
        what = f"{parser.status} {done}/{total}" if total else "starting (loading the model)"
        context.window_manager.progress_update(int(1000 * (fraction or 0)))
        if context.workspace:
            context.workspace.status_text_set(f"Teamwork {self.bl_label}: {what}, {seconds} s - ESC to cancel")

    def end(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if getattr(self, "_timer", None) is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace:
            context.workspace.status_text_set(None)

    def finish(self, context: bpy.types.Context, code: int) -> set[str]:
        """Report a failure (nothing is built), or build the material from the files the command listed."""
        if code != 0:
            runner.discard(self._folder)
            for message in self._job.failure(code):
                self.report({"ERROR"}, f"Teamwork: {message}")
            return {"CANCELLED"}
        for tag, text in self._job.parser.messages:
            if tag == "Warning":
                self.report({"WARNING"}, f"Teamwork: {text}")
        groups = runner.maps_by_channel(self._job.written)
        try:
            if len(groups) != 1:
                raise ValueError(f"expected the maps of one image, got {len(groups)} sets in {self._folder}")
            ((stem, maps),) = groups.items()
            material = nodes.build_material(stem, maps, layers=self.layers())
        except Exception as e:
            runner.discard(self._folder)
            self.report({"ERROR"}, f"Teamwork: building the material failed: {e}")
            return {"CANCELLED"}
        where = ""
        if self.assign and nodes.assign(context.active_object, material):
            where = f" on {context.active_object.name}"
        self.report({"INFO"}, f"Teamwork: material {material.name!r}{where} from {self._folder}")
        return {"FINISHED"}

    def layers(self) -> bool:
        return False


class _FromImage(_Run):
    filepath: StringProperty(name="Image", subtype="FILE_PATH")
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    resolution: IntProperty(
        name="Resolution",
        default=0,
        min=0,
        description="Process with the longer side at this many pixels, then "
        "resize back (--resolution); 0: the image's own size",
    )

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def photo(self) -> Path:
        path = Path(bpy.path.abspath(self.filepath))
        if not path.is_file():
            raise runner.RunnerError(f"{path}: no such image file")
        return path

    def material_name(self) -> str:
        return Path(self.filepath).stem or "photo"


class TEAMWORK_OT_material_from_photo(_FromImage, bpy.types.Operator):
    """Estimate PBR maps from a flash photo (teamwork svbrdf) and build a Principled BSDF material"""

    bl_idname = "teamwork.material_from_photo"
    bl_label = "Material from photo"

    fit: EnumProperty(name="Fit", items=_FIT_ITEMS, default="levels")

    def command(self, exe: str, out_dir: Path) -> list[str]:
        return runner.svbrdf_command(
            exe,
            self.photo(),
            out_dir,
            tileable=self.tileable,
            resolution=self.resolution,
            adapter=self.adapter,
            device=self.device,
            seed=self.seed,
            fit=self.fit,
        )


class TEAMWORK_OT_layers_from_image(_FromImage, bpy.types.Operator):
    """Decompose an image into intrinsic layers (teamwork intrinsics): albedo, shading, normals, depth, ..."""

    bl_idname = "teamwork.layers_from_image"
    bl_label = "Layers from image"

    def command(self, exe: str, out_dir: Path) -> list[str]:
        return runner.intrinsics_command(
            exe,
            self.photo(),
            out_dir,
            tileable=self.tileable,
            resolution=self.resolution,
            adapter=self.adapter,
            device=self.device,
            seed=self.seed,
        )

    def layers(self) -> bool:
        return True


class TEAMWORK_OT_synthesize_material(_Run, bpy.types.Operator):
    """Generate a new material from noise (teamwork synthesize) and build a Principled BSDF material"""

    bl_idname = "teamwork.synthesize_material"
    bl_label = "Synthesize material"

    size: IntProperty(name="Size", default=256, min=8, description="Map size in pixels")
    steps: IntProperty(name="Steps", default=16, min=1, description="Sampling steps")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        return context.window_manager.invoke_props_dialog(self)

    def material_name(self) -> str:
        return f"synthesized_{self.seed}"

    def command(self, exe: str, out_dir: Path) -> list[str]:
        return runner.synthesize_command(
            exe,
            out_dir,
            size=self.size,
            steps=self.steps,
            tileable=self.tileable,
            adapter=self.adapter,
            device=self.device,
            seed=self.seed,
        )


class TEAMWORK_PT_panel(bpy.types.Panel):
    bl_label = "Teamwork"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Teamwork"

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column(align=True)
        col.operator(TEAMWORK_OT_material_from_photo.bl_idname, icon="IMAGE_DATA")
        col.operator(TEAMWORK_OT_layers_from_image.bl_idname, icon="RENDERLAYERS")
        col.operator(TEAMWORK_OT_synthesize_material.bl_idname, icon="SHADING_TEXTURE")


CLASSES = (
    TeamworkPreferences,
    TEAMWORK_OT_material_from_photo,
    TEAMWORK_OT_layers_from_image,
    TEAMWORK_OT_synthesize_material,
    TEAMWORK_PT_panel,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
