"""`teamwork blender-addon -o teamwork_addon.zip`: the Blender add-on, as a zip to install in Blender."""

from __future__ import annotations

from pathlib import Path

import typer


def blender_addon(
    out: Path = typer.Option(..., "-o", "--out", help="The zip to write, e.g. teamwork_addon.zip."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write the Blender add-on (Blender 4.2 or later) as an installable zip; prints its path.

    Install it in Blender with Edit > Preferences > Add-ons > Install from Disk, then find "Material from photo",
    "Layers from image" and "Synthesize material" in the 3D Viewport's sidebar (N), tab Teamwork. The add-on runs
    this teamwork command (set its path in the add-on's preferences if Blender does not find it on PATH).

    Example: teamwork blender-addon -o teamwork_addon.zip
    """
    from teamwork_cli.blender.bundle import write_addon_zip

    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give a file name ending in .zip", param_hint="'-o' / '--out'")
    if out.suffix.lower() != ".zip":
        raise typer.BadParameter(f"{out}: give a file name ending in .zip", param_hint="'-o' / '--out'")
    typer.echo(str(write_addon_zip(out, overwrite=overwrite)))
