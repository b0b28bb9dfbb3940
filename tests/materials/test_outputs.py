"""The one output writer: every map of one input, all or none."""

from __future__ import annotations

import os

import pytest
import torch

from teamwork_cli.materials.files import ImageError, OutputExistsError
from teamwork_cli.materials.outputs import OutputPlan, plan_outputs, refuse_existing, write_outputs
from teamwork_cli.materials.read import read_map


def test_write_outputs_is_all_or_nothing_even_when_overwriting(tmp_path):
    import torch

    from teamwork_cli.materials.outputs import plan_outputs, write_outputs

    plan = plan_outputs(tmp_path, "m", {"diffuse": ("exr", 16), "diffuseshading": ("exr", 16)}, overwrite=False)
    paths = plan.paths
    ok = {"diffuse": torch.full((1, 3, 4, 4), 0.5), "diffuseshading": torch.full((1, 3, 4, 4), 2.0)}
    assert write_outputs(plan, ok, overwrite=False) == list(paths.values())
    before = {p: p.read_bytes() for p in paths.values()}
    bad = {"diffuse": torch.full((1, 3, 4, 4), 0.25), "diffuseshading": torch.full((1, 3, 4, 4), 1e6)}  # > half
    with pytest.raises(ImageError, match="m_diffuseshading.exr: values up to"):
        write_outputs(plan, bad, overwrite=True)
    assert {p: p.read_bytes() for p in paths.values()} == before  # the old set, whole: no mix of old and new
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())  # no temp files
    with pytest.raises(OutputExistsError):
        write_outputs(plan, ok, overwrite=False)


FORMATS = {"diffuse": ("png", 16), "roughness": ("png", 8), "depth": ("exr", 32)}


def _maps(value: float) -> dict[str, torch.Tensor]:
    return {
        "diffuse": torch.full((1, 3, 4, 4), value),
        "roughness": torch.full((1, 1, 4, 4), value),
        "depth": torch.full((1, 1, 4, 4), value),
    }


def test_plan_names_every_map_and_refuses_existing_files_unless_overwrite(tmp_path):
    plan = plan_outputs(tmp_path, "m", FORMATS, overwrite=False)
    assert isinstance(plan, OutputPlan) and not list(tmp_path.iterdir())  # planning writes nothing
    assert plan.paths == {
        "diffuse": tmp_path / "m_diffuse.png",
        "roughness": tmp_path / "m_roughness.png",
        "depth": tmp_path / "m_depth.exr",
    }
    assert plan.bits == {"diffuse": 16, "roughness": 8, "depth": 32}
    (tmp_path / "m_roughness.png").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"m_roughness\.png: already exists; pass --overwrite"):
        plan_outputs(tmp_path, "m", FORMATS, overwrite=False)
    (tmp_path / "m_depth.exr").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"\(and 1 more\)"):
        plan_outputs(tmp_path, "m", FORMATS, overwrite=False)
    assert plan_outputs(tmp_path, "m", FORMATS, overwrite=True).paths == plan.paths
    refuse_existing([tmp_path / "nothing.png"])  # no error for what does not exist
    with pytest.raises(ValueError, match="must match"):
        plan_outputs(tmp_path, "m", {"Diffuse": ("png", 16)}, overwrite=False)


def test_written_maps_read_back_at_their_bit_depths(tmp_path):
    plan = plan_outputs(tmp_path, "m", FORMATS, overwrite=False)
    assert write_outputs(plan, _maps(0.25), overwrite=False) == list(plan.paths.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_depth.exr", "m_diffuse.png", "m_roughness.png"]
    assert read_map(plan.paths["depth"], "depth") == pytest.approx(0.25)  # float32: exact
    assert abs(read_map(plan.paths["roughness"], "roughness") - 0.25).max() <= 0.5 / 255
    assert abs(read_map(plan.paths["diffuse"], "diffuse") - 0.25).max() < 1e-3


def test_a_failing_map_writes_none_of_the_others(tmp_path):
    plan = plan_outputs(tmp_path, "m", {"diffuse": ("png", 16), "residual": ("exr", 16)}, overwrite=False)
    bad = {"diffuse": torch.full((1, 3, 4, 4), 0.5), "residual": torch.full((1, 3, 4, 4), float("nan"))}
    with pytest.raises(ImageError, match=r"m_residual\.exr: .*NaN") as err:
        write_outputs(plan, bad, overwrite=False)
    assert ".part-" not in str(err.value)  # the error names the target, not the hidden temporary
    assert list(tmp_path.iterdir()) == []


def test_also_failure_removes_only_the_maps_this_call_created(tmp_path):
    formats = {"diffuse": ("png", 16), "roughness": ("png", 16)}
    old = tmp_path / "m_roughness.png"
    old.write_bytes(b"a file from an earlier run")
    plan = plan_outputs(tmp_path, "m", formats, overwrite=True)
    seen = []

    def also():
        seen.append(sorted(p.name for p in tmp_path.iterdir()))  # called once the maps are in place
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space left"):
        write_outputs(plan, _maps(0.5), overwrite=True, also=also)
    assert seen == [["m_diffuse.png", "m_roughness.png"]]
    assert [p.name for p in tmp_path.iterdir()] == ["m_roughness.png"]  # the new diffuse went, the old file stayed
    assert abs(read_map(old, "roughness") - 0.5).max() < 1e-3  # replaced (overwrite), never deleted


def test_also_files_join_the_result(tmp_path):
    plan = plan_outputs(tmp_path, "m", {"diffuse": ("png", 8)}, overwrite=False)
    extra = tmp_path / "m.gltf"

    def also():
        extra.write_text("{}")
        return [extra]

    assert write_outputs(plan, _maps(0.5), overwrite=False, also=also) == [plan.paths["diffuse"], extra]


def test_a_rival_file_appearing_after_the_plan_is_not_replaced(tmp_path):
    plan = plan_outputs(tmp_path, "m", {"diffuse": ("png", 8), "roughness": ("png", 8)}, overwrite=False)
    rival = plan.paths["roughness"]
    rival.write_bytes(b"another process")
    with pytest.raises(OutputExistsError):
        write_outputs(plan, _maps(0.5), overwrite=False)
    assert rival.read_bytes() == b"another process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_roughness.png"]  # the diffuse of this call went too


@pytest.mark.parametrize("serial", [True, False])
def test_large_maps_are_written_one_at_a_time_with_the_same_files(tmp_path, monkeypatch, serial):
    from teamwork_cli.materials import outputs

    used = []

    class Pool(outputs.ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            used.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(outputs, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(outputs, "SERIAL_WRITE_PIXELS", 15 if serial else 16)  # the maps are 4 x 4: 16 pixels
    values = {c: torch.rand(v.shape, generator=torch.Generator().manual_seed(1)) for c, v in _maps(0.0).items()}
    plan = plan_outputs(tmp_path, "m", FORMATS, overwrite=False)
    write_outputs(plan, values, overwrite=False)
    if serial:
        assert used == [1]
    else:
        assert used == [min(len(FORMATS), os.cpu_count() or 1)]
    for c, p in plan.paths.items():
        bits = FORMATS[c][1]
        tolerance = 0 if bits == 32 else 1e-3 if bits == 16 else 0.5 / 255 + 1e-3
        assert abs(read_map(p, c) - values[c][0].permute(1, 2, 0).numpy()).max() <= tolerance
