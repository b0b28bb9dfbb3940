"""`teamwork shade` end to end on a tiny model: optional buffers, basecolor, errors."""

from __future__ import annotations

import numpy as np
from PIL import Image

from teamwork_cli.materials.read import read_image


def test_shade_optional_buffers_and_errors(tmp_path, tiny_base, adapters, capsys, cli, make_adapter, write_png):
    rng = np.random.default_rng(3)
    albedo = write_png(tmp_path / "a.png", rng.random((24, 32, 3)))
    normals = write_png(tmp_path / "n.png", np.dstack([rng.random((24, 32, 2)) * 0.2 + 0.4, np.ones((24, 32))]))
    Image.fromarray((rng.random((24, 32)) * 255).astype(np.uint8)).save(tmp_path / "r.png")
    common = ["--adapter", adapters["shade"], "--base", tiny_base, "--steps", "2"]
    code, files, err = cli(capsys, "shade", "--albedo", albedo, "--normals", normals, "-o", tmp_path / "s.png", *common)
    assert code == 0, err
    assert files == [str(tmp_path / "s.png")] and Image.open(tmp_path / "s.png").size == (32, 24)
    code, _, err = cli(
        capsys,
        "shade",
        "--albedo",
        albedo,
        "--normals",
        normals,
        "--roughness",
        tmp_path / "r.png",
        "-o",
        tmp_path / "s.exr",
        *common,
    )
    assert code == 0, err
    assert read_image(tmp_path / "s.exr").pixels.shape == (24, 32, 3)
    code, _, err = cli(
        capsys,
        "shade",
        "--albedo",
        albedo,
        "--normals",
        normals,
        "--metallic",
        tmp_path / "r.png",
        "--basecolor",
        albedo,
        "-o",
        tmp_path / "b.png",
        *common,
    )
    assert code == 0 and "Note:" not in err, err
    code, _, err = cli(
        capsys,
        "shade",
        "--albedo",
        albedo,
        "--normals",
        normals,
        "--basecolor",
        albedo,
        "-o",
        tmp_path / "c.png",
        *common,
    )
    assert code == 0 and "--basecolor without --metallic" in err
    older = make_adapter(
        tiny_base,
        ["albedo.in", "normals.in", "roughness.in", "metallic.in", "depth.in", "deferred.in", "image.out"],
        tmp_path / "older.safetensors",
    )
    code, _, err = cli(
        capsys,
        "shade",
        "--albedo",
        albedo,
        "--normals",
        normals,
        "--basecolor",
        albedo,
        "-o",
        tmp_path / "t.png",
        "--adapter",
        older,
        "--base",
        tiny_base,
        "--steps",
        "1",
    )
    assert code == 1 and "does not take basecolor" in err
    code, _, err = cli(
        capsys,
        "shade",
        "--basecolor",
        albedo,
        "--metallic",
        tmp_path / "r.png",
        "--normals",
        normals,
        "-o",
        tmp_path / "g.png",
        "--adapter",
        older,
        "--base",
        tiny_base,
        "--steps",
        "1",
    )
    assert code == 0, err  # basecolor stands in for the albedo, even for an adapter that does not take it
    code, _, err = cli(capsys, "shade", "--normals", normals, "-o", tmp_path / "t.png", *common)
    assert code == 2 and "--albedo" in err and "--basecolor" in err
    code, _, err = cli(capsys, "shade", "--albedo", albedo, "-o", tmp_path / "t.png", *common)
    assert code == 2 and "Error:" in err and "--normals" in err
    code, _, err = cli(
        capsys, "shade", "--albedo", albedo, "--normals", tmp_path / "nope.png", "-o", tmp_path / "t.png", *common
    )
    assert code == 1 and "Error:" in err and "nope.png" in err
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    code, _, err = cli(
        capsys,
        "shade",
        "--albedo",
        albedo,
        "--normals",
        normals,
        "--depth",
        tmp_path / "small.png",
        "-o",
        tmp_path / "t.png",
        *common,
    )
    assert code == 1 and "Error:" in err and "10x10" in err
    assert not (tmp_path / "t.png").exists()
