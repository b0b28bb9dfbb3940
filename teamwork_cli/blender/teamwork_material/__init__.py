"""Teamwork materials: a Blender add-on that runs the installed `teamwork` command and builds materials from its
maps ("Material from photo", "Layers from image", "Synthesize material"; 3D Viewport > Sidebar > Teamwork).

Installed from the zip `teamwork blender-addon -o teamwork_addon.zip` writes (Edit > Preferences > Add-ons >
Install from Disk). Blender's Python has no torch: the add-on never imports teamwork, it runs the command set in
its preferences (default: `teamwork` on PATH) in a subprocess. bpy is imported only by register(), so `runner`
also works outside Blender.
"""

bl_info = {
    "name": "Teamwork materials",
    "author": "teamwork",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D Viewport > Sidebar > Teamwork",
    "description": "PBR materials from flash photos, intrinsic layers and synthesized materials, made by the "
    "teamwork command",
    "category": "Material",
}


def register() -> None:
    from . import operators

    operators.register()


def unregister() -> None:
    from . import operators

    operators.unregister()
