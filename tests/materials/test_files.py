"""File names, batch inputs and atomic publication of map files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from teamwork_cli.materials import files as tfiles
from teamwork_cli.materials.files import ImageError
from teamwork_cli.materials.write import write_map


@pytest.mark.parametrize("ext", ["png", "exr"])
def test_failure_mid_write_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str, dir_listing
) -> None:
    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tfiles.os, "link", broken)
    monkeypatch.setattr(tfiles.os, "replace", broken)
    with pytest.raises(ImageError, match=f"m.{ext}: cannot write") as caught:
        write_map(tmp_path / f"m.{ext}", np.zeros((2, 2, 3)), "diffuse")
    assert "No space left" in str(caught.value)
    assert dir_listing(tmp_path) == []


def test_expand_inputs(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "c.exr", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.tif").write_bytes(b"x")
    got = tfiles.expand_inputs([str(tmp_path), str(tmp_path / "b.png"), str(tmp_path / "sub" / "*")])
    assert [p.name for p in got] == ["a.JPG", "b.png", "c.exr", "d.tif"]
    assert [p.name for p in tfiles.expand_inputs([str(tmp_path / "*.png")])] == ["b.png"]
    for pattern, message in [
        (str(tmp_path / "*.tiff"), "matches no image"),
        (str(tmp_path / "nope.png"), "no such file or folder"),
        (str(tmp_path / "notes.txt"), "unsupported file type"),
    ]:
        with pytest.raises(ImageError, match=message) as caught:
            tfiles.expand_inputs([pattern])
        assert pattern in str(caught.value)


def test_map_path() -> None:
    assert tfiles.map_path("maps", "brick", "normals", "png") == Path("maps/brick_normals.png")
    assert tfiles.map_path(Path("o"), "x", "diffuse", ".exr") == Path("o/x_diffuse.exr")
    with pytest.raises(ValueError, match="must match"):
        tfiles.map_path("o", "x", "Normals", "png")
    assert set(tfiles.SUPPORTED_WRITE) <= set(tfiles.SUPPORTED_READ)


def test_c_libraries_stdout_goes_to_stderr_inside_and_only_inside():
    # OpenEXR prints warnings on file descriptor 1; commands keep stdout for the paths they write.
    import subprocess
    import sys

    script = (
        "import os, threading\n"
        "from teamwork_cli.materials.files import stdout_to_stderr\n"
        "print('before', flush=False)\n"
        "def lib(i):\n"
        "    with stdout_to_stderr():\n"
        "        os.write(1, f'Warning: from C {i}\\n'.encode())\n"
        "threads = [threading.Thread(target=lib, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "with stdout_to_stderr():\n"
        "    with stdout_to_stderr():\n"
        "        os.write(1, b'Warning: nested\\n')\n"
        "print('after')\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "before\nafter\n"
    assert sorted(r.stderr.splitlines()) == sorted([*(f"Warning: from C {i}" for i in range(4)), "Warning: nested"])
