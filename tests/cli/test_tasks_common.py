"""A task's adapter when no --adapter is given: the shipped one, offline on a CPU, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.materials.read import read_image


def run_fp32(capsys, *args):
    code = main([str(a) for a in args] + ["--dtype", "fp32"])
    out, err = capsys.readouterr()
    return code, out.split(), err


@pytest.fixture()
def photo(tmp_path, write_png):
    rng = np.random.default_rng(0)
    return write_png(tmp_path / "p.png", 0.3 + 0.4 * rng.random((32, 40, 3)))


def test_shipped_svbrdf_and_intrinsics(tmp_path, photo, capsys):
    code, files, err = run_fp32(capsys, "svbrdf", photo, "-o", tmp_path / "m", "--fit", "none")
    assert code == 0, err
    assert len(files) == 7 and Image.open(tmp_path / "m/p_normals.png").size == (40, 32)
    code, files, err = run_fp32(capsys, "intrinsics", photo, "-o", tmp_path / "i", "--request", "albedo,depth")
    assert code == 0, err
    assert sorted(files) == [str(tmp_path / "i/p_albedo.png"), str(tmp_path / "i/p_depth.png")]


def test_shipped_inpaint_shade_synthesize(tmp_path, photo, capsys, write_png):
    mask = np.zeros((32, 40), np.uint8)
    mask[8:20, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    code, files, err = run_fp32(
        capsys, "inpaint", photo, "--mask", tmp_path / "mask.png", "-o", tmp_path / "f", "--steps", "2"
    )
    assert code == 0, err
    a, b = read_image(photo).pixels, read_image(files[0]).pixels
    assert np.array_equal(a[mask == 0], b[mask == 0]) and not np.array_equal(a[mask > 0], b[mask > 0])
    normals = write_png(tmp_path / "n.png", np.dstack([np.full((32, 40, 2), 0.5), np.ones((32, 40))]))
    code, files, err = run_fp32(
        capsys, "shade", "--albedo", photo, "--normals", normals, "-o", tmp_path / "s.png", "--steps", "1"
    )
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size == (40, 32)
    code, files, err = run_fp32(capsys, "synthesize", "-n", "1", "--size", "32", "--steps", "2", "-o", tmp_path / "y")
    assert code == 0, err
    assert len(files) == 7
    diffuse = read_image(tmp_path / "y/material_000_diffuse.png").pixels
    assert diffuse.shape == (32, 32, 3) and diffuse.std() > 0


def test_missing_shipped_adapter_is_a_clear_error(tmp_path, capsys, monkeypatch, cli, write_png):
    from teamwork_cli.models.hub import resolve

    monkeypatch.setattr(resolve, "default_adapter", lambda preset: tmp_path / f"{preset}.safetensors")
    photo = write_png(tmp_path / "p.png", np.full((16, 16, 3), 0.5))
    code, _, err = cli(capsys, "intrinsics", photo, "-o", tmp_path / "o")
    assert code == 1 and "is shipped with this version yet" in err and "--adapter" in err
