"""`teamwork render` and materials.py on tiny maps: sizes, lights, sheets, defaults and error paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.materials.folders import find_material, load_material
from teamwork_cli.materials.write import write_map

SIZE = 16


def make_material(folder: Path, stem: str = "brick", seed: int = 0, channels: tuple[str, ...] | None = None,
                  ext: str = "png", size: int = SIZE) -> dict[str, Path]:
    """Random maps `folder/<stem>_<channel>.<ext>` (bare `<channel>.<ext>` if stem is ""); returns the paths."""
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(size, size, 3))
    n[..., 2] = np.abs(n[..., 2]) + 1.5
    values = {"diffuse": rng.random((size, size, 3)), "specular": rng.random((size, size, 3)) * 0.2,
              "roughness": rng.random((size, size)), "normals": n / np.linalg.norm(n, axis=-1, keepdims=True),
              "basecolor": rng.random((size, size, 3)), "metallic": rng.random((size, size)) > 0.5}
    paths = {}
    for c in channels or ("diffuse", "specular", "roughness", "normals"):
        name = f"{stem}_{c}.{ext}" if stem else f"{c}.{ext}"
        paths[c] = write_map(folder / name, values[c].astype(np.float32), c)
    return paths


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_load_material_folder_prefix_and_defaults(tmp_path: Path) -> None:
    make_material(tmp_path / "bare", stem="", channels=("diffuse",))
    m = load_material(tmp_path / "bare")
    assert {k: tuple(v.shape) for k, v in m.items()} == {
        "diffuse": (1, 3, SIZE, SIZE), "specular": (1, 3, SIZE, SIZE), "roughness": (1, 1, SIZE, SIZE),
        "normals": (1, 3, SIZE, SIZE)}
    assert torch.allclose(m["specular"], torch.full_like(m["specular"], 0.04))
    assert torch.allclose(m["normals"][0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    make_material(tmp_path / "two", "brick")
    make_material(tmp_path / "two", "tile", channels=("basecolor", "metallic"))
    tile = load_material(tmp_path / "two" / "tile", size=8)
    assert tile["diffuse"].shape == (1, 3, 8, 8) and "basecolor" in tile and "metallic" in tile
    # diffuse = basecolor (1 - metallic) (conventions.md section 1)
    assert torch.allclose(tile["diffuse"], tile["basecolor"] * (1 - tile["metallic"]), atol=1e-6)
    assert find_material(tmp_path / "two" / "brick").files.keys() == {"diffuse", "specular", "roughness", "normals"}


def test_render_flash_light_and_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_material(tmp_path / "maps")
    flash = tmp_path / "flash.png"
    code, out, err = run(["render", str(tmp_path / "maps"), "-o", str(flash)], capsys)
    assert code == 0, err
    assert out.split() == [str(flash)]
    im = Image.open(flash)
    assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    assert flash.read_bytes()[24] == 16  # PNG IHDR bit depth: 16-bit by default (conventions.md section 2)
    side = tmp_path / "side.png"
    assert run(["render", str(tmp_path / "maps"), "-o", str(side), "--light", "2,0,1", "--bits", "8"], capsys)[0] == 0
    assert side.read_bytes()[24] == 8
    assert np.abs(_pixels(side) - _pixels(flash)).mean() > 1
    sheet = tmp_path / "sheet.png"
    code, _, err = run(["render", str(tmp_path / "maps" / "brick"), "-o", str(sheet), "--sheet"], capsys)
    assert code == 0, err
    w, h = Image.open(sheet).size
    assert w > 4 * SIZE and h > 2 * SIZE


def test_render_gltf_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_material(tmp_path / "maps")
    out = tmp_path / "prev" / "brick.png"
    code, stdout, err = run(["render", str(tmp_path / "maps"), "-o", str(out), "--gltf"], capsys)
    assert code == 0, err
    # basecolor/metallic were derived from diffuse/specular for the glTF; every file written is listed
    derived = [out.parent / f"brick_{c}.png" for c in ("basecolor", "metallic", "metallicroughness")]
    assert sorted(stdout.split()) == sorted(map(str, [out, out.with_suffix(".gltf"), *derived]))
    assert all(p.is_file() for p in derived)
    code, _, err = run(["render", str(tmp_path / "maps"), "-o", str(out)], capsys)
    assert code == 1 and "Error:" in err and "--overwrite" in err
    assert run(["render", str(tmp_path / "maps"), "-o", str(out), "--gltf", "--overwrite"], capsys)[0] == 0


def test_render_refuses_bad_output_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_material(tmp_path / "maps")
    for args, where in ((["-o", str(tmp_path / "r.webp"), "--gltf"], "--out"),
                        (["-o", str(tmp_path / "r.png"), "--gltf", "--bits", "32"], "--bits"),
                        (["-o", str(tmp_path / "maps")], "folder"), (["-o", str(tmp_path / "r.png"), "--size", "0"],
                                                                     "--size")):
        code, _, err = run(["render", str(tmp_path / "maps"), *args], capsys)
        assert code == 2 and "Error:" in err and where in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps"]  # nothing half-written, no glTF left behind
    code, _, err = run(["render", str(tmp_path / "maps"), "-o", str(tmp_path / "r.png"), "--normal-convention",
                        "dx"], capsys)
    assert code == 2 and "opengl, directx" in err


def test_render_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["render", str(tmp_path / "nowhere"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "Error:" in err and "no such folder" in err
    make_material(tmp_path / "nodiffuse", channels=("roughness", "normals"))
    code, _, err = run(["render", str(tmp_path / "nodiffuse"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "Error:" in err and "diffuse or basecolor" in err
    make_material(tmp_path / "two", "brick")
    make_material(tmp_path / "two", "tile")
    code, _, err = run(["render", str(tmp_path / "two"), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "several materials" in err and "brick" in err and "tile" in err
    code, _, err = run(["render", str(tmp_path / "two" / "tile"), "-o", str(tmp_path / "a.png"), "--light", "1,2"],
                       capsys)
    assert code == 2 and "--light" in err
    assert not (tmp_path / "a.png").exists()



def test_sigterm_mid_write_leaves_nothing_and_exits_143(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
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
    code, out, err = run(["render", str(tmp_path / "maps"), "-o", str(tmp_path / "out" / "flash.exr"),
                          "--bits", "32"], capsys)
    assert code == 143 and out == "" and err.strip() == "Error: terminated", err
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor its hidden temporary
    assert signal.getsignal(signal.SIGTERM) == before  # restored for whoever called main()
