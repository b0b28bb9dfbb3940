"""The CLI skeleton: help, presets, info, and the error conventions (Error:/Hint:, exit codes 1 and 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SVBRDF

from teamwork_cli.cli.app import main
from teamwork_cli.materials.files import ImageError, OutputExistsError

COMMANDS = ["svbrdf", "intrinsics", "inpaint", "shade", "synthesize", "finetune", "render", "info", "presets"]


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for c in COMMANDS:
        assert f"  {c}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "Usage:" in out


def test_presets_text_and_json(capsys):
    code, out, _ = run(["presets"], capsys)
    assert code == 0 and "svbrdf:" in out and "image.in, halfway.in" in out
    code, out, _ = run(["presets", "--json"], capsys)
    data = json.loads(out)
    assert data["svbrdf"]["inputs"] == ["image.in", "halfway.in"]
    assert data["synthesize"]["inputs"] == []
    assert set(data) >= {"svbrdf", "intrinsics", "inpaint", "inpaint-material", "shade", "synthesize"}


def test_info_text_and_json(tiny_svbrdf_adapter, capsys):
    code, out, err = run(["info", str(tiny_svbrdf_adapter)], capsys)
    assert code == 0, err
    assert "tiny test adapter" in out and "image.in, halfway.in" in out and "coordination" in out
    code, out, _ = run(["info", str(tiny_svbrdf_adapter), "--json"], capsys)
    data = json.loads(out)
    assert data["inputs"] == SVBRDF[:2] and data["outputs"] == SVBRDF[2:]
    assert data["rank"] == 4 and data["coordination"] is True
    assert data["adapted_layers"] > 0 and data["parameters"] > 0
    assert data["objective"] == "diffusion" and data["train_steps"] is None  # a file that does not say


def test_info_errors(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    code, out, err = run(["info", str(bad)], capsys)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("Error:") and "bad.safetensors" in lines[0] and lines[1].startswith("Hint:")
    code, _, err = run(["info", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 1 and err.startswith("Error:") and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    code, _, err = run(["info"], capsys)
    assert code == 2 and err.startswith("Error:") and "Hint:" in err
    code, _, err = run(["nonsense"], capsys)
    assert code == 2 and err.startswith("Error:")
    code, _, err = run(["presets", "--bogus"], capsys)
    assert code == 2 and "--bogus" in err


@pytest.mark.parametrize("args, words", [
    (["svbrdf", "x.png", "-o", "o", "--device", "gpu"], ["--device", "cuda:N"]),
    (["intrinsics", "x.png", "-o", "o", "--dtype", "fp64"], ["--dtype", "fp32, bf16"]),
    (["synthesize", "-o", "o", "--stem", "../escape"], ["--stem", "without folders"]),
    (["inpaint", "x.png", "--mask", "m.png", "-o", "o", "--steps", "0"], ["--steps"]),
])
def test_bad_options_exit_2_before_any_work(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2 and out == "" and err.startswith("Error:") and all(w in err for w in words), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps"])
def test_unavailable_device_is_a_usage_error(tmp_path, monkeypatch, capsys, device):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, out, err = run(["svbrdf", "x.png", "-o", "o", "--device", device], capsys)
    assert code == 2 and out == "" and err.startswith("Error:") and "not available" in err and "cpu" in err, err
    assert "bug" not in err and list(tmp_path.iterdir()) == []


def test_dtype_names_come_from_the_pipeline(tmp_path, monkeypatch, capsys):
    import torch

    from teamwork_cli.core import devices

    monkeypatch.chdir(tmp_path)
    args = ["intrinsics", "x.png", "-o", "o", "--dtype"]
    code, out, err = run([*args, "fp64"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("Error: Invalid value for '--dtype': must be one of auto, fp32, bf16, fp16; got 'fp64'\n")
    code, out, _ = run(["intrinsics", "--help"], capsys)
    assert code == 0 and "--dtype " + "|".join(["auto", *devices.DTYPES]) in out
    monkeypatch.setitem(devices.DTYPES, "fp64", torch.float64)  # a name the pipeline gains, the CLI follows
    code, _, err = run([*args, "fp8"], capsys)
    assert code == 2 and "must be one of auto, fp32, bf16, fp16, fp64; got 'fp8'" in err
    assert list(tmp_path.iterdir()) == []


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("teamwork ")


def test_finetune_unknown_preset_lists_available(tmp_path, capsys):
    code, _, err = run(["finetune", "--preset", "nope", "--data", str(tmp_path), "-o", str(tmp_path / "a")], capsys)
    assert code == 2 and "svbrdf" in err and "available" in err


def test_console_script_and_debug_traceback(tmp_path):
    """The real entry point: one Error line by default, a traceback with TEAMWORK_DEBUG=1."""
    args = [sys.executable, "-m", "teamwork_cli", "info", str(tmp_path / "missing.safetensors")]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "" and "Traceback" not in p.stderr
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "TEAMWORK_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_write_all_is_all_or_nothing_even_when_overwriting(tmp_path):
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


def test_ctrl_c_is_one_error_line_and_exit_130(monkeypatch, capsys):
    from teamwork_cli.cli import cmd_presets

    def interrupted() -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd_presets, "available_presets", interrupted)
    code, out, err = run(["presets"], capsys)
    assert code == 130 and out == "" and err.strip() == "Error: interrupted"


def test_masks_as_paint_programs_save_them(tmp_path):
    from PIL import Image

    from teamwork_cli.tasks.inpaint import read_mask

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # transparent white, a black opaque stroke: the stroke is the mask
    rgba[2:4, :, 3] = 255
    rgba[2:4, :, :3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    assert read_mask(tmp_path / "stroke.png")[0, 0].sum() == 16 and read_mask(tmp_path / "stroke.png")[0, 0, 2:4].all()
    opaque_black = np.zeros((8, 8, 4), np.uint8)
    opaque_black[..., 3] = 255  # opaque everywhere: the colour is the mask (empty here)
    Image.fromarray(opaque_black, "RGBA").save(tmp_path / "empty.png")
    assert read_mask(tmp_path / "empty.png").sum() == 0
    red = np.zeros((8, 8, 3), np.uint8)
    red[:, :3, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    assert read_mask(tmp_path / "red.png").sum() == 24
