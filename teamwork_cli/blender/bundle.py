"""The installable zip of the Blender add-on (`teamwork blender-addon`): the `teamwork_material/` folder at the
archive's top level, as Blender's "Install from Disk" expects, with fixed timestamps so that one source gives one
zip, byte for byte."""

from __future__ import annotations

import zipfile
from pathlib import Path

from teamwork_cli.materials.files import publish

ADDON = "teamwork_material"
SOURCE = Path(__file__).resolve().parent / ADDON
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def addon_files() -> list[Path]:
    """The add-on's source files (no caches), sorted."""
    return sorted(p for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts)


def write_addon_zip(out: Path, *, overwrite: bool = False) -> Path:
    """Write the add-on zip to `out` atomically (refused if it exists, unless overwrite); returns `out`."""
    out = Path(out)

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in addon_files():
                info = zipfile.ZipInfo(f"{ADDON}/{p.relative_to(SOURCE).as_posix()}", _EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, p.read_bytes())

    publish(out, write, overwrite)
    return out
