"""`teamwork render` on tiny maps: sizes, lights, sheets, glTF, overwrite and error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZE = 16


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_render_flash_light_and_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run) -> None:
    make_material(tmp_path / "maps")
    flash = tmp_path / "flash.png"
    code, out, err = run(["render", str(tmp_path / "maps"), "-o", str(flash)], capsys)
    assert code == 0, err
    assert out.split() == [str(flash)]
    im = Image.open(flash)
    assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    assert flash.read_bytes()[24] == 16  # PNG IHDR bit depth: 16-bit by default (docs/conventions.md section 2)
    side = tmp_path / "side.png"
    assert run(["render", str(tmp_path / "maps"), "-o", str(side), "--light", "2,0,1", "--bits", "8"], capsys)[0] == 0
    assert side.read_bytes()[24] == 8
    assert np.abs(_pixels(side) - _pixels(flash)).mean() > 1
    sheet = tmp_path / "sheet.png"
    code, _, err = run(["render", str(tmp_path / "maps" / "brick"), "-o", str(sheet), "--sheet"], capsys)
    assert code == 0, err
    w, h = Image.open(sheet).size
    assert w > 4 * SIZE and h > 2 * SIZE


def test_render_gltf_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run) -> None:
    make_material(tmp_path / "maps")
    out = tmp_path / "prev" / "brick.png"
    code, stdout, err = run(["render", str(tmp_path / "maps"), "-o", str(out), "--gltf"], capsys)
    assert code == 0, err
    # basecolor/metallic were derived from diffuse/specular for the glTF, the normal map copied beside it (the maps
    # are in another folder); every file written is listed
    made = ("basecolor", "metallic", "metallicroughness", "specularcolor", "normals")
    derived = [out.parent / f"brick_{c}.png" for c in made]
    assert sorted(stdout.split()) == sorted(map(str, [out, out.with_suffix(".gltf"), *derived]))
    assert all(p.is_file() for p in derived)
    code, _, err = run(["render", str(tmp_path / "maps"), "-o", str(out)], capsys)
    assert code == 1 and "Error:" in err and "--overwrite" in err
    assert run(["render", str(tmp_path / "maps"), "-o", str(out), "--gltf", "--overwrite"], capsys)[0] == 0


def test_render_glb_and_gltf_size(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run) -> None:
    import pygltflib

    make_material(tmp_path / "maps")
    out = tmp_path / "prev" / "brick.png"
    code, stdout, err = run(["render", str(tmp_path / "maps"), "-o", str(out), "--glb", "--gltf-size", "0.5"], capsys)
    assert code == 0, err
    assert sorted(stdout.split()) == sorted(map(str, [out, out.with_suffix(".glb")]))
    assert sorted(p.name for p in out.parent.iterdir()) == ["brick.glb", "brick.png"]  # nothing beside the .glb
    g = pygltflib.GLTF2().load(str(out.with_suffix(".glb")))
    assert g.accessors[g.meshes[0].primitives[0].attributes.POSITION].max == [0.25, 0.25, 0.0]
    assert len(g.images) == 4 and g.extensionsUsed == ["KHR_materials_specular"]
    code, _, err = run(["render", str(tmp_path / "maps"), "-o", str(out), "--glb"], capsys)
    assert code == 1 and "already exists" in err


def test_render_gltf_of_a_directx_named_normal_map_is_opengl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run
) -> None:
    from teamwork_cli.materials.read import read_map

    maps = make_material(tmp_path / "maps", channels=("diffuse", "normals"))
    dx = maps["normals"].with_name("brick_nor_dx.png")
    maps["normals"].rename(dx)
    out = tmp_path / "prev" / "brick.png"
    code, _, err = run(["render", str(tmp_path / "maps"), "-o", str(out), "--gltf"], capsys)
    assert code == 0, err
    gl = read_map(out.parent / "brick_normals.png", "normals")
    assert np.allclose(gl[..., 1], -read_map(dx, "normals")[..., 1], atol=0.02)


def test_render_refuses_bad_output_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run
) -> None:
    make_material(tmp_path / "maps")
    for args, where in (
        (["-o", str(tmp_path / "r.webp"), "--gltf"], "--out"),
        (["-o", str(tmp_path / "r.png"), "--gltf", "--bits", "32"], "--bits"),
        (["-o", str(tmp_path / "maps")], "folder"),
        (["-o", str(tmp_path / "r.png"), "--size", "0"], "--size"),
        (["-o", str(tmp_path / "r.png"), "--gltf-size", "1"], "--gltf-size"),
        (["-o", str(tmp_path / "r.png"), "--glb", "--gltf-size", "0"], "--gltf-size"),
        (["-o", str(tmp_path / "r.png"), "--glb", "--normal-convention", "directx"], "--normal-convention"),
    ):
        code, _, err = run(["render", str(tmp_path / "maps"), *args], capsys)
        assert code == 2 and "Error:" in err and where in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]  # nothing half-written, no glTF left behind
    code, _, err = run(
        ["render", str(tmp_path / "maps"), "-o", str(tmp_path / "r.png"), "--normal-convention", "dx"], capsys
    )
    assert code == 2 and "opengl, directx" in err


def test_render_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run) -> None:
    code, _, err = run(["render", str(tmp_path / "nowhere"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "Error:" in err and "no such folder" in err
    make_material(tmp_path / "nodiffuse", channels=("roughness", "normals"))
    code, _, err = run(["render", str(tmp_path / "nodiffuse"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "Error:" in err and "diffuse or basecolor" in err
    make_material(tmp_path / "two", "brick")
    make_material(tmp_path / "two", "tile")
    code, _, err = run(["render", str(tmp_path / "two"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "several materials" in err and "brick" in err and "tile" in err
    code, _, err = run(
        ["render", str(tmp_path / "two" / "tile"), "-o", str(tmp_path / "a.png"), "--light", "1,2"], capsys
    )
    assert code == 2 and "--light" in err
    assert not (tmp_path / "a.png").exists()


def test_sigterm_mid_write_leaves_nothing_and_exits_143(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, make_material, run
) -> None:
    import os
    import signal

    from teamwork_cli.materials import files

    link_new = files.link_new

    def terminated_before_publishing(tmp: Path, p: Path) -> None:  # `timeout`/`kill` once the bytes are on disk
        assert tmp.exists()
        os.kill(os.getpid(), signal.SIGTERM)
        link_new(tmp, p)

    make_material(tmp_path / "maps")
    monkeypatch.setattr(files, "link_new", terminated_before_publishing)
    before = signal.getsignal(signal.SIGTERM)
    code, out, err = run(
        ["render", str(tmp_path / "maps"), "-o", str(tmp_path / "out" / "flash.exr"), "--bits", "32"], capsys
    )
    assert code == 143 and out == "" and err.strip() == "Error: terminated", err
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor its hidden temporary
    assert signal.getsignal(signal.SIGTERM) == before  # restored for whoever called main()
