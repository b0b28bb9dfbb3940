"""The options the commands share: bad values are usage errors (exit 2) before any work."""

from __future__ import annotations

import pytest
import typer

from teamwork_cli.cli import options as O


@pytest.mark.parametrize(
    "args, words",
    [
        (["svbrdf", "x.png", "-o", "o", "--device", "gpu"], ["--device", "cuda:N"]),
        (["intrinsics", "x.png", "-o", "o", "--dtype", "fp64"], ["--dtype", "fp32, bf16"]),
        (["synthesize", "-o", "o", "--stem", "../escape"], ["--stem", "without folders"]),
        (["inpaint", "x.png", "--mask", "m.png", "-o", "o", "--steps", "0"], ["--steps"]),
    ],
)
def test_bad_options_exit_2_before_any_work(tmp_path, monkeypatch, capsys, args, words, run):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2 and out == "" and err.startswith("Error:") and all(w in err for w in words), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps"])
def test_unavailable_device_is_a_usage_error(tmp_path, monkeypatch, capsys, device, run):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, out, err = run(["svbrdf", "x.png", "-o", "o", "--device", device], capsys)
    assert code == 2 and out == "" and err.startswith("Error:") and "not available" in err and "cpu" in err, err
    assert "bug" not in err and list(tmp_path.iterdir()) == []


def test_dtype_names_are_the_pipelines(tmp_path, monkeypatch, capsys, run):
    from teamwork_cli.core import devices

    monkeypatch.chdir(tmp_path)
    args = ["intrinsics", "x.png", "-o", "o", "--dtype"]
    code, out, err = run([*args, "fp64"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("Error: Invalid value for '--dtype': must be one of auto, fp32, bf16, fp16; got 'fp64'\n")
    code, out, _ = run(["intrinsics", "--help"], capsys)
    assert code == 0 and "--dtype " + "|".join(["auto", *devices.DTYPES]) in out
    assert O.DTYPE_NAMES == tuple(devices.DTYPES)  # spelled out in options so that start-up loads no torch
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ("png", ("png", 16)),
        ("png8", ("png", 8)),
        ("exr", ("exr", 16)),
        ("exr32", ("exr", 32)),
        ("tif", ("tif", 16)),
        ("jpg", ("jpg", 8)),
    ],
)
def test_formats_split_into_extension_and_bits(fmt, expected):
    assert O.split_format(fmt) == expected
    assert fmt in O.choices(O.Format) and set(O.choices(O.Format)) == set(O.FORMATS)


def test_a_bad_format_lists_the_choices():
    with pytest.raises(typer.BadParameter, match="must be one of png, png8, exr, exr32, tif, jpg; got 'gif'"):
        O.split_format("gif")


@pytest.mark.parametrize("value", ["auto", "cpu"])
def test_devices_that_are_always_there(value):
    assert O.check_device(value) == value


@pytest.mark.parametrize(
    "value, match",
    [
        ("gpu", "must be auto, cpu, cuda, cuda:N or mps; got 'gpu'"),
        ("cuda:x", "got 'cuda:x'"),
        ("cuda:0", "cuda:0 is not available"),
        ("mps", "mps is not available"),
    ],
)
def test_devices_this_machine_lacks_are_refused(monkeypatch, value, match):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(typer.BadParameter, match=match):
        O.check_device(value)


def test_a_cuda_index_beyond_the_devices_names_how_many_there_are(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert O.check_device("cuda:1") == "cuda:1" and O.check_device("cuda") == "cuda"
    with pytest.raises(typer.BadParameter, match="cuda:2 is not available: this machine has 2 CUDA device"):
        O.check_device("cuda:2")


def test_dtypes_and_choices():
    assert O.dtype_names() == ("auto", "fp32", "bf16", "fp16")
    assert O.check_dtype("bf16") == "bf16"
    with pytest.raises(typer.BadParameter, match="must be one of auto, fp32, bf16, fp16; got 'fp64'"):
        O.check_dtype("fp64")
    assert O.check_normal_convention("directx") == "directx"
    with pytest.raises(typer.BadParameter, match="must be one of opengl, directx; got 'dx'"):
        O.check_normal_convention("dx")
    assert O.metavar(O.NormalConvention) == "opengl|directx"


def test_out_must_be_a_folder(tmp_path):
    assert O.check_out_dir(tmp_path) == tmp_path
    assert O.check_out_dir(tmp_path / "new") == tmp_path / "new"  # created later, by the writer
    assert O.check_out_dir(None) is None
    (tmp_path / "f").write_text("")
    with pytest.raises(typer.BadParameter, match="is a file; give a folder"):
        O.check_out_dir(tmp_path / "f")
    for name in ("maps.png", "maps.EXR", "maps.webp"):
        with pytest.raises(typer.BadParameter, match="looks like an image file name"):
            O.check_out_dir(tmp_path / name)


@pytest.mark.parametrize(
    "args",
    [
        ["svbrdf", "x.png", "-o", "out", "--seed", str(2**70)],
        ["synthesize", "-o", "out", "--seed", "-1"],
        ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "-o", "a.safetensors", "--resolution", "0"],
        ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "-o", "a.safetensors", "--resolution", "-64"],
        ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "-o", "a.safetensors", "--threads", "-2"],
        ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "-o", "a.safetensors", "--seed", str(2**64)],
    ],
)
def test_out_of_range_numbers_are_bad_usage_before_any_work(args, tmp_path, monkeypatch, capsys, run):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    flag = next(a for a in args if a.startswith("--") and a not in ("--preset", "--data"))
    assert code == 2 and flag in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no model loaded


def test_transformer_is_an_option_of_every_command_with_a_base_and_refused_on_the_embedded_one(
    tmp_path, monkeypatch, capsys, run, write_png
):
    """--transformer FILE.gguf reaches the base loader of every task command and of finetune: with the shipped
    adapters' embedded base it is one Error/Hint and exit 1, and no output is written."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    photo = str(write_png(tmp_path / "p.png", np.full((16, 16, 3), 0.5)))
    hole = np.zeros((16, 16, 3))
    hole[4:8, 4:8] = 1
    mask = str(write_png(tmp_path / "m.png", hole))
    gguf = str(tmp_path / "t.gguf")
    for args in (
        ["svbrdf", photo, "-o", "o"],
        ["intrinsics", photo, "-o", "o"],
        ["inpaint", photo, "--mask", mask, "-o", "o"],
        ["shade", "--albedo", photo, "--normals", photo, "-o", "o.png"],
        ["synthesize", "-n", "1", "--size", "16", "-o", "o"],
        ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "-o", "a.safetensors"],
    ):
        code, out, err = run([*args, "--transformer", gguf], capsys)
        assert code == 1 and out == "", (args[0], err)
        assert err.startswith("Error: --transformer") and "embedded base model" in err and "Hint:" in err, err
        assert not (tmp_path / "o").exists() and not (tmp_path / "o.png").exists()
