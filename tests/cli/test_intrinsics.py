"""`teamwork intrinsics` end to end on tiny embedded and hub models: files, sizes, subsets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.materials.read import read_image

# What `teamwork intrinsics` writes with the published decomposition teammates: its outputs, plus glTF metallic.
INTRINSICS = [
    "diffuse",
    "specular",
    "roughness",
    "normals",
    "depth",
    "albedo",
    "inverseshading",
    "diffuseshading",
    "residual",
    "metallic",
]


def test_intrinsics_all_channels_and_request(tmp_path, tiny_base, adapters, capsys, cli, write_png, written):
    photo = write_png(tmp_path / "room.png", np.random.default_rng(0).random((40, 36, 3)))
    common = ["--adapter", adapters["intrinsics"], "--base", tiny_base, "--steps", "1"]
    code, out, err = cli(capsys, "intrinsics", photo, "-o", tmp_path / "all", *common)
    assert code == 0, err
    chans = ["diffuse", "specular", "roughness", "normals", "depth", "albedo", "inverseshading", "residual", "metallic"]
    assert written(tmp_path / "all") == sorted([f"room_{c}.png" for c in chans] + ["room_diffuseshading.exr"])
    assert Image.open(tmp_path / "all/room_albedo.png").size == (36, 40)
    assert read_image(tmp_path / "all/room_diffuseshading.exr").pixels.shape == (40, 36, 3)
    code, out, err = cli(capsys, "intrinsics", photo, "-o", tmp_path / "some", "--request", "albedo,normals", *common)
    assert code == 0, err
    assert written(tmp_path / "some") == ["room_albedo.png", "room_normals.png"]
    code, _, err = cli(capsys, "intrinsics", photo, "-o", tmp_path / "bad", "--request", "albedo,sheen", *common)
    assert code == 2 and "Error:" in err and "sheen" in err and "inverseshading" in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.usefixtures("offline")
def test_intrinsics_cli_end_to_end(hub_team, hub_intrinsics_adapter, tmp_path, capsys, write_png):
    _, folder, _ = hub_team
    photo = write_png(tmp_path / "room.png", np.random.default_rng(1).random((40, 56, 3)))
    common = ["--adapter", str(hub_intrinsics_adapter), "--base", str(folder), "--steps", "1"]
    code = main(["intrinsics", str(photo), "-o", str(tmp_path / "all"), *common])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    files = {f"room_{c}.{'exr' if c == 'diffuseshading' else 'png'}": c for c in INTRINSICS}
    assert sorted(stdout.split()) == sorted(str(tmp_path / "all" / f) for f in files)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(files)
    for name, c in files.items():
        im = read_image(tmp_path / "all" / name)
        assert im.pixels.shape == (40, 56, 1 if c in ("roughness", "depth", "metallic") else 3), name
        assert np.isfinite(im.pixels).all(), name
    assert read_image(tmp_path / "all" / "room_diffuseshading.exr").is_float
    code = main(["intrinsics", str(photo), "-o", str(tmp_path / "some"), "--request", "albedo,normals", *common])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    some = [tmp_path / "some" / "room_albedo.png", tmp_path / "some" / "room_normals.png"]
    assert sorted(stdout.split()) == [str(p) for p in some]
    assert sorted((tmp_path / "some").iterdir()) == some
    assert all(read_image(p).pixels.shape == (40, 56, 3) for p in some)
