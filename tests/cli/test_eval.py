"""`teamwork eval svbrdf`: zero for identical maps, positive otherwise, JSON, pairing and error paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SCORES = ["diffuse", "specular", "roughness", "normals", "render"]


def test_identical_is_zero_and_different_is_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run
) -> None:
    make_material(tmp_path / "gt", "brick", seed=0)
    make_material(tmp_path / "gt", "tile", seed=1)
    shutil.copytree(tmp_path / "gt", tmp_path / "same")
    code, out, err = run(
        ["eval", "svbrdf", "--pred", str(tmp_path / "same"), "--gt", str(tmp_path / "gt"), "--json"], capsys
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["count"] == 2 and set(data["materials"]) == {"brick", "tile"}
    assert all(data["mean"][k] < 1e-6 for k in SCORES)
    # Different maps, at another size and in EXR: resized to the ground truth's size, with a note.
    make_material(tmp_path / "pred", "brick", seed=2, ext="exr", size=8)
    make_material(tmp_path / "pred", "tile", seed=3)
    code, out, err = run(["eval", "svbrdf", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")], capsys)
    assert code == 0, err
    assert "resized" in err
    lines = out.splitlines()
    assert lines[0].split() == ["material", *SCORES] and [ln.split()[0] for ln in lines[1:]] == [
        "brick",
        "tile",
        "mean",
    ]
    assert all(float(v) > 0 for v in lines[-1].split()[1:])


def test_single_materials_pair_whatever_their_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run
) -> None:
    make_material(tmp_path / "gt" / "brick", stem="", seed=0)  # gt/brick/diffuse.png, ...
    make_material(tmp_path / "out", "photo1", seed=0)
    code, out, err = run(
        ["eval", "svbrdf", "--pred", str(tmp_path / "out" / "photo1"), "--gt", str(tmp_path / "gt"), "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(out)["materials"]["brick"]["render"] < 1e-6


def test_eval_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run) -> None:
    make_material(tmp_path / "gt", "brick")
    make_material(tmp_path / "gt", "tile")
    make_material(tmp_path / "pred", "brick")
    make_material(tmp_path / "pred", "stone")
    code, out, err = run(["eval", "svbrdf", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")], capsys)
    assert code == 1 and "Error:" in err and "no prediction for tile" in err  # brick is still scored
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == ["brick", "mean"]
    code, _, err = run(["eval", "svbrdf", "--pred", str(tmp_path / "missing"), "--gt", str(tmp_path / "gt")], capsys)
    assert code == 1 and "Error:" in err
    make_material(tmp_path / "partial", "brick", channels=("diffuse", "roughness"))
    code, _, err = run(
        ["eval", "svbrdf", "--pred", str(tmp_path / "partial"), "--gt", str(tmp_path / "gt" / "brick")], capsys
    )
    assert code == 1 and "Error:" in err and "specular, normals" in err


def test_a_material_that_fails_does_not_hide_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_material, run
) -> None:
    for stem in ("brick", "tile"):
        make_material(tmp_path / "gt", stem)
        make_material(tmp_path / "pred", stem)
    (tmp_path / "pred" / "tile_roughness.png").write_bytes(b"not a png")
    code, out, err = run(["eval", "svbrdf", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")], capsys)
    assert code == 1 and "Error:" in err and "tile" in err and "1 of 2 materials failed" in err
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == ["brick", "mean"]
    code, _, err = run(
        ["eval", "svbrdf", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--fov", "0"], capsys
    )
    assert code == 2 and "--fov" in err
