"""`teamwork blender-addon`: writes the zip and prints its path; refuses to overwrite; bad names are usage errors."""

from __future__ import annotations

import zipfile
from pathlib import Path


def test_writes_the_zip_and_prints_its_path(tmp_path: Path, capsys, run) -> None:
    out = tmp_path / "teamwork_addon.zip"
    code, stdout, err = run(["blender-addon", "-o", str(out)], capsys)
    assert code == 0, err
    assert stdout.split() == [str(out)] and err == ""
    assert "teamwork_material/__init__.py" in zipfile.ZipFile(out).namelist()
    code, stdout, err = run(["blender-addon", "-o", str(out)], capsys)
    assert code == 1 and stdout == ""
    assert err.startswith("Error: ") and "already exists" in err and "Hint: " in err and "--overwrite" in err
    out.write_bytes(b"stale")
    assert run(["blender-addon", "-o", str(out), "--overwrite"], capsys)[0] == 0
    assert zipfile.is_zipfile(out)


def test_bad_output_names_are_usage_errors(tmp_path: Path, capsys, run) -> None:
    for target in (tmp_path, tmp_path / "addon.txt"):
        code, stdout, err = run(["blender-addon", "-o", str(target)], capsys)
        assert code == 2 and stdout == "" and "Error:" in err and ".zip" in err
    assert [p.name for p in tmp_path.iterdir()] == []
