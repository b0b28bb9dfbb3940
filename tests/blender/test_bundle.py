"""The add-on zip: what it holds, the same bytes from the same source, atomic and never overwritten unasked; and
the add-on's source imports nothing Blender's own Python lacks."""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

import pytest

import teamwork_cli
from teamwork_cli.blender import bundle
from teamwork_cli.blender.teamwork_material import bl_info
from teamwork_cli.materials.files import OutputExistsError


def test_zip_holds_the_addon_folder_at_its_top(tmp_path: Path) -> None:
    out = bundle.write_addon_zip(tmp_path / "teamwork_addon.zip")
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert z.testzip() is None
        assert z.read("teamwork_material/__init__.py") == (bundle.SOURCE / "__init__.py").read_bytes()
    assert names == sorted(names)
    assert {"teamwork_material/__init__.py", "teamwork_material/operators.py", "teamwork_material/nodes.py"} <= set(
        names
    )
    assert all(n.startswith("teamwork_material/") and n.endswith(".py") and "__pycache__" not in n for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teamwork_addon.zip"]  # no temporary file left


def test_zip_is_reproducible_and_refuses_to_overwrite(tmp_path: Path) -> None:
    a = bundle.write_addon_zip(tmp_path / "a.zip")
    with pytest.raises(OutputExistsError, match="already exists"):
        bundle.write_addon_zip(a)
    b = bundle.write_addon_zip(tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()
    a.write_bytes(b"old")
    assert bundle.write_addon_zip(a, overwrite=True).read_bytes() == b.read_bytes()


def test_addon_version_is_the_package_version() -> None:
    assert ".".join(map(str, bl_info["version"])) == teamwork_cli.__version__
    assert bl_info["blender"] >= (4, 2, 0)


def test_addon_imports_only_the_standard_library_and_bpy() -> None:
    """Blender's Python has neither torch nor teamwork (nor, in general, numpy): the add-on runs the command."""
    allowed = set(sys.stdlib_module_names) | {"bpy", "__future__"}
    for path in bundle.addon_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name}: imports {sorted(roots - allowed)}"
