"""`teamwork svbrdf` end to end: tiny embedded and hub models, files, sizes, batches, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from teamwork_cli.cli.app import main

CHANNELS = ["diffuse", "specular", "roughness", "normals", "basecolor", "metallic", "render"]
MAPS = ["diffuse", "specular", "roughness", "normals", "basecolor", "metallic", "render"]


def test_svbrdf_writes_every_map(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    rng = np.random.default_rng(0)
    photo = write_png(tmp_path / "brick.png", rng.random((40, 36, 3)))
    out = tmp_path / "maps"
    code, stdout, err = run(
        [
            "svbrdf",
            str(photo),
            "-o",
            str(out),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            str(tiny_base),
            "--steps",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    written = stdout.split()
    assert sorted(written) == sorted(str(out / f"brick_{c}.png") for c in CHANNELS)
    for c in CHANNELS:
        im = Image.open(out / f"brick_{c}.png")
        assert im.size == (36, 40)
        grey = c in ("roughness", "metallic")
        assert im.mode == ("I;16" if grey else "RGB") or (grey and im.mode.startswith("I"))
    # a second run refuses to overwrite, and leaves the files as they were
    before = (out / "brick_diffuse.png").read_bytes()
    code, _, err = run(
        [
            "svbrdf",
            str(photo),
            "-o",
            str(out),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            str(tiny_base),
            "--steps",
            "1",
            "--seed",
            "3",
        ],
        capsys,
    )
    assert code == 1 and "Error:" in err and "--overwrite" in err
    assert (out / "brick_diffuse.png").read_bytes() == before


def test_svbrdf_seed_reproducible_and_exr(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    photo = write_png(tmp_path / "p.png", np.random.default_rng(1).random((32, 32, 3)))
    args = ["svbrdf", str(photo), "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base), "--steps", "2"]
    assert run([*args, "-o", str(tmp_path / "a")], capsys)[0] == 0
    assert run([*args, "-o", str(tmp_path / "b")], capsys)[0] == 0
    assert (tmp_path / "a/p_normals.png").read_bytes() == (tmp_path / "b/p_normals.png").read_bytes()
    code, stdout, err = run([*args, "-o", str(tmp_path / "c"), "--format", "exr"], capsys)
    assert code == 0, err
    assert (tmp_path / "c/p_roughness.exr").is_file()


def test_svbrdf_bad_file_does_not_stop_the_batch(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    good = write_png(tmp_path / "in/good.png", np.full((24, 24, 3), 0.5)) if (tmp_path / "in").mkdir() is None else None
    (tmp_path / "in/bad.png").write_bytes(b"not a png at all")
    code, stdout, err = run(
        [
            "svbrdf",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            str(tiny_base),
            "--steps",
            "1",
        ],
        capsys,
    )
    assert code == 1
    assert "bad.png" in err and "Error:" in err
    assert str(tmp_path / "out/good_diffuse.png") in stdout
    assert not list((tmp_path / "out").glob("bad_*"))
    assert good.is_file()


def test_svbrdf_usage_errors(tmp_path, tiny_svbrdf_adapter, capsys, run):
    code, _, err = run(["svbrdf", str(tmp_path / "missing.png"), "-o", str(tmp_path)], capsys)
    assert code == 1 and err.startswith("Error:") and "Hint:" in err and "Traceback" not in err
    code, _, err = run(["svbrdf", "x.png", "-o", str(tmp_path), "--format", "gif"], capsys)
    assert code == 2 and "--format" in err
    code, _, err = run(["svbrdf"], capsys)
    assert code == 2 and "Error:" in err


def test_directx_normals_round_trip(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    """--normal-convention directx flips Y in the written normals; render reads them back as OpenGL."""
    photo = write_png(tmp_path / "p.png", np.random.default_rng(2).random((32, 32, 3)))
    args = ["svbrdf", str(photo), "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base), "--steps", "1"]
    assert run([*args, "-o", str(tmp_path / "gl")], capsys)[0] == 0
    assert run([*args, "-o", str(tmp_path / "dx"), "--normal-convention", "directx"], capsys)[0] == 0
    gl = np.asarray(Image.open(tmp_path / "gl/p_normals.png"), dtype=np.int64)
    dx = np.asarray(Image.open(tmp_path / "dx/p_normals.png"), dtype=np.int64)
    assert np.array_equal(gl[..., [0, 2]], dx[..., [0, 2]])
    assert np.abs(gl[..., 1] + dx[..., 1] - 255).max() <= 1  # (n+1)/2 with n_y negated
    a = run(["render", str(tmp_path / "gl/p"), "-o", str(tmp_path / "a.png")], capsys)
    b = run(["render", str(tmp_path / "dx/p"), "-o", str(tmp_path / "b.png"), "--normal-convention", "directx"], capsys)
    assert a[0] == b[0] == 0
    ra = np.asarray(Image.open(tmp_path / "a.png"), dtype=np.float64)
    rb = np.asarray(Image.open(tmp_path / "b.png"), dtype=np.float64)
    assert np.abs(ra - rb).mean() < 2.0  # 8-bit PNG rounding of the normals only
    code, _, err = run([*args, "-o", str(tmp_path / "x"), "--normal-convention", "directx", "--gltf"], capsys)
    assert code == 2 and "--normal-convention" in err


def test_default_ensemble_follows_the_precision(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    """fp32 on a CPU: 1 sample (speed); bf16 autocast (native on the CPUs that pick it): 2."""
    photo = write_png(tmp_path / "p.png", np.random.default_rng(0).random((16, 16, 3)))
    common = ["svbrdf", str(photo), "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base), "--fit", "none"]

    def normals(name, *extra):
        code, _, err = run([*common, "-o", str(tmp_path / name), *extra], capsys)
        assert code == 0, err
        return (tmp_path / name / "p_normals.png").read_bytes()

    default = normals("a", "--dtype", "fp32")
    assert default == normals("b", "--dtype", "fp32", "--ensemble", "1")
    assert default != normals("c", "--dtype", "fp32", "--ensemble", "2")
    assert normals("d", "--dtype", "bf16") == normals("e", "--dtype", "bf16", "--ensemble", "2")


def test_fit_modes(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    """--fit diffuse changes only the diffuse map (and what derives from it); levels (default) also the others."""
    photo = write_png(tmp_path / "p.png", np.random.default_rng(1).random((16, 16, 3)) * 0.6 + 0.2)
    common = ["svbrdf", str(photo), "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base)]

    def maps(name, *extra):
        code, _, err = run([*common, "-o", str(tmp_path / name), *extra], capsys)
        assert code == 0, err
        return {c: (tmp_path / name / f"p_{c}.png").read_bytes() for c in ("diffuse", "specular", "roughness")}

    none, diffuse, levels = maps("n", "--fit", "none"), maps("d", "--fit", "diffuse"), maps("l")
    assert diffuse["diffuse"] != none["diffuse"]
    assert diffuse["roughness"] == none["roughness"] and diffuse["specular"] == none["specular"]
    assert levels["roughness"] != none["roughness"]
    code, _, err = run([*common, "-o", str(tmp_path / "x"), "--fit", "yes"], capsys)
    assert code == 2 and "--fit" in err and "levels, diffuse, none" in err


def test_inputs_and_outputs_are_checked_before_any_work(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png
):
    rng = np.random.default_rng(2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_png(tmp_path / "a/p.png", rng.random((24, 24, 3)))
    b = write_png(tmp_path / "b/p.png", rng.random((24, 24, 3)))
    (tmp_path / "file").write_text("")
    model = ["--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base), "--steps", "1"]
    for args, words in (
        ([str(a), str(b), "-o", str(tmp_path / "o")], ["would write the same outputs"]),
        ([str(a), "-o", str(tmp_path / "file")], ["is a file"]),
        ([str(a), "-o", str(tmp_path / "p.png")], ["folder"]),
        ([str(a), "-o", str(tmp_path / "o"), "--fov", "0"], ["--fov"]),
        ([str(a), "-o", str(tmp_path / "o"), "--normal-convention", "dx"], ["opengl, directx"]),
    ):
        code, stdout, err = run(["svbrdf", *args, *model], capsys)
        assert code == 2 and err.startswith("Error:") and all(w in err for w in words), (args, err)
        assert stdout == "" and not (tmp_path / "o").exists()
    # a missing file or an empty glob is one failed input: the others still run, the exit code says so
    code, stdout, err = run(
        ["svbrdf", str(a), str(tmp_path / "nope.png"), str(tmp_path / "z/*.png"), "-o", str(tmp_path / "o"), *model],
        capsys,
    )
    assert code == 1 and "nope.png" in err and "z/*.png" in err and "2 of 3 inputs failed" in err
    assert sorted(stdout.split()) == sorted(str(tmp_path / f"o/p_{c}.png") for c in CHANNELS)


def test_gltf_files_are_listed_and_all_or_nothing(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    photo = write_png(tmp_path / "p.png", np.random.default_rng(3).random((24, 24, 3)))
    args = [
        "svbrdf",
        str(photo),
        "-o",
        str(tmp_path / "o"),
        "--adapter",
        str(tiny_svbrdf_adapter),
        "--base",
        str(tiny_base),
        "--steps",
        "1",
        "--gltf",
        "--format",
        "exr",
    ]
    code, stdout, err = run(args, capsys)
    assert code == 0, err
    assert sorted(stdout.split()) == sorted(str(p) for p in (tmp_path / "o").iterdir())  # every file, listed
    assert str(tmp_path / "o/p.gltf") in stdout.split()
    for p in (tmp_path / "o").iterdir():
        if p.name != "p.gltf":
            p.unlink()
    code, stdout, err = run(args, capsys)  # only the glTF is left: refused before any map is written
    assert code == 1 and "p.gltf: already exists" in err and stdout == ""
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["p.gltf"]


def test_glb_and_gltf_size(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    import pygltflib

    photo = write_png(tmp_path / "p.png", np.random.default_rng(3).random((16, 32, 3)))
    args = ["svbrdf", str(photo), "-o", str(tmp_path / "o"), "--adapter", str(tiny_svbrdf_adapter)]
    args += ["--base", str(tiny_base), "--fit", "none"]
    code, _, err = run([*args, "--gltf-size", "0.3"], capsys)
    assert code == 2 and "--gltf-size" in err and not (tmp_path / "o").exists()
    code, stdout, err = run([*args, "--gltf", "--glb", "--gltf-size", "0.3"], capsys)
    assert code == 0, err
    assert sorted(stdout.split()) == sorted(str(p) for p in (tmp_path / "o").iterdir())
    assert {"p.gltf", "p.glb", "p_specularcolor.png"} <= {p.name for p in (tmp_path / "o").iterdir()}
    for name in ("p.gltf", "p.glb"):
        g = pygltflib.GLTF2().load(str(tmp_path / "o" / name))
        assert g.accessors[g.meshes[0].primitives[0].attributes.POSITION].max == pytest.approx([0.15, 0.075, 0])
        assert g.extensionsUsed == ["KHR_materials_specular"]


def test_a_gltf_failure_takes_back_the_new_maps(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, monkeypatch, run, write_png
):
    from teamwork_cli.materials import gltf

    def full_disk(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(gltf, "_write_text", full_disk)
    photo = write_png(tmp_path / "p.png", np.random.default_rng(4).random((24, 24, 3)))
    for extra in ([], ["--overwrite"]):  # even with --overwrite, nothing that did not exist is left behind
        code, stdout, err = run(
            [
                "svbrdf",
                str(photo),
                "-o",
                str(tmp_path / "o"),
                "--adapter",
                str(tiny_svbrdf_adapter),
                "--base",
                str(tiny_base),
                "--steps",
                "1",
                "--gltf",
                "--format",
                "exr",
                *extra,
            ],
            capsys,
        )
        assert code == 1 and "no space left" in err and stdout == ""
        assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_svbrdf_cli_batch_size(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, write_png):
    """3 photos of one size and 1 of another: --batch-size 3 writes the same maps as one at a time."""
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for k in range(3):
        write_png(tmp_path / f"in/p{k}.png", rng.random((24, 32, 3)))
    write_png(tmp_path / "in/odd.png", rng.random((32, 24, 3)))
    args = [
        "svbrdf",
        str(tmp_path / "in"),
        "--adapter",
        str(tiny_svbrdf_adapter),
        "--base",
        str(tiny_base),
        "--steps",
        "2",
        "--dtype",
        "fp32",
        "--seed",
        "4",
    ]
    assert main([*args, "-o", str(tmp_path / "one")]) == 0
    assert main([*args, "-o", str(tmp_path / "three"), "--batch-size", "3"]) == 0
    stdout = capsys.readouterr().out.split()
    one = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(one) == 4 * 7 and one == sorted(p.name for p in (tmp_path / "three").iterdir())
    assert len(stdout) == 2 * len(one) == len(set(stdout))
    for name in one:
        a = np.asarray(Image.open(tmp_path / "one" / name), dtype=np.float64)
        b = np.asarray(Image.open(tmp_path / "three" / name), dtype=np.float64)
        # Float rounding of batched matmuls: at most one 16-bit code value; metallic comes from an ill-conditioned
        # diffuse/specular split (core/conventions.py) that magnifies it, still under 0.1%.
        assert np.abs(a - b).max() <= (64 if "metallic" in name else 1), name
    assert main([*args, "-o", str(tmp_path / "x"), "--batch-size", "0"]) == 2


@pytest.mark.usefixtures("offline")
def test_svbrdf_cli_end_to_end(hub_team, tmp_path, capsys, write_png):
    family, folder, adapter = hub_team
    # 40 x 56 is not a multiple of the backbones' pixel_multiple: exercises padding and the tiled VAE (> 32 px).
    photo = write_png(tmp_path / "tile.png", np.random.default_rng(0).random((40, 56, 3)))
    out = tmp_path / "maps"
    code = main(
        ["svbrdf", str(photo), "-o", str(out), "--adapter", str(adapter), "--base", str(folder), "--steps", "1"]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(stdout.split()) == sorted(str(out / f"tile_{c}.png") for c in MAPS)
    for c in MAPS:
        im = Image.open(out / f"tile_{c}.png")
        assert im.size == (56, 40)
        assert len(im.getbands()) == (1 if c in ("roughness", "metallic") else 3)


@pytest.mark.usefixtures("offline")
def test_offline_hub_id_gives_one_clear_error(tmp_path, tiny_svbrdf_adapter, capsys, write_png):
    photo = write_png(tmp_path / "p.png", np.zeros((16, 16, 3)))
    code = main(
        [
            "svbrdf",
            str(photo),
            "-o",
            str(tmp_path / "o"),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            "stabilityai/stable-diffusion-3-medium-diffusers",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith(
        "Error: base model stabilityai/stable-diffusion-3-medium-diffusers is not in the "
        "Hugging Face cache and HF_HUB_OFFLINE=1"
    )
    assert lines[1].startswith("Hint:") and "hf download stabilityai/stable-diffusion-3-medium-diffusers" in lines[1]
    assert "unset HF_HUB_OFFLINE" in lines[1]


@pytest.mark.usefixtures("offline")
def test_adapter_for_another_base_names_both(tmp_path, sd2_folder, tiny_svbrdf_adapter, capsys, write_png):
    """An embedded-model adapter on an SD2 base: one error naming the base's class and the adapter's base."""
    photo = write_png(tmp_path / "p.png", np.full((32, 32, 3), 0.5))
    code = main(
        [
            "svbrdf",
            str(photo),
            "-o",
            str(tmp_path / "o"),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            str(sd2_folder),
            "--steps",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "UNet2DConditionModel" in err and "tinybase" in err


def test_svbrdf_exr_normals_encoded_by_default_signed_on_request(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png
):
    from teamwork_cli.materials.read import read_image, read_map

    photo = write_png(tmp_path / "p.png", np.random.default_rng(4).random((32, 32, 3)))
    args = [
        "svbrdf",
        str(photo),
        "--adapter",
        str(tiny_svbrdf_adapter),
        "--base",
        str(tiny_base),
        "--steps",
        "1",
        "--format",
        "exr32",
    ]
    assert run([*args, "-o", str(tmp_path / "e")], capsys)[0] == 0
    assert run([*args, "-o", str(tmp_path / "s"), "--exr-normals", "signed"], capsys)[0] == 0
    encoded, signed = (read_image(tmp_path / f"{d}/p_normals.exr").pixels for d in ("e", "s"))
    assert encoded.min() >= 0 and np.allclose(encoded, (signed + 1) / 2, atol=1e-6)  # (n+1)/2, as in PNG
    assert np.allclose(
        read_map(tmp_path / "e/p_normals.exr", "normals"), read_map(tmp_path / "s/p_normals.exr", "normals"), atol=1e-5
    )  # readers take both
    code, _, err = run([*args, "-o", str(tmp_path / "x"), "--exr-normals", "raw"], capsys)
    assert code == 2 and "encoded, signed" in err


def test_svbrdf_tileable_and_windows(tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png):
    from teamwork_cli.materials.read import read_image

    photo = write_png(tmp_path / "p.png", np.random.default_rng(6).random((40, 48, 3)))
    args = ["svbrdf", str(photo), "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base), "--steps", "1"]
    code, out, err = run(
        [*args, "-o", str(tmp_path / "t"), "--tileable", "--window", "32", "--sync", "average"], capsys
    )
    assert code == 0, err
    assert read_image(tmp_path / "t/p_diffuse.png").pixels.shape[:2] == (40, 48)  # the photo's own size
    code, out, err = run(
        [*args, "-o", str(tmp_path / "w"), "--window", "32", "--overlap", "8", "--batch-size", "2"], capsys
    )
    assert code == 0, err
    code, out, err = run([*args, "-o", str(tmp_path / "x"), "--sync", "mean"], capsys)
    assert code == 2 and "none, average, syncsde" in err and not (tmp_path / "x").exists()
    code, out, err = run([*args, "-o", str(tmp_path / "y"), "--window", "8"], capsys)
    assert code == 2 and "--window" in err


def test_svbrdf_out_of_memory_on_one_input_does_not_stop_the_batch(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png, monkeypatch
):
    from teamwork_cli.tasks import svbrdf as task

    real = task.estimate

    def estimate(pipe, photos, **kw):
        if photos.shape[-1] == 40:  # the middle photo: as a photo too large for the machine's memory fails
            raise MemoryError
        return real(pipe, photos, **kw)

    monkeypatch.setattr(task, "estimate", estimate)
    (tmp_path / "in").mkdir()
    for name, width in (("a", 24), ("b", 40), ("c", 24)):
        write_png(tmp_path / f"in/{name}.png", np.full((24, width, 3), 0.5))
    code, out, err = run(
        [
            "svbrdf",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--adapter",
            str(tiny_svbrdf_adapter),
            "--base",
            str(tiny_base),
            "--steps",
            "1",
        ],
        capsys,
    )
    assert code == 1 and "b.png" in err and "out of memory" in err and "1 of 3 inputs failed" in err
    assert sorted({p.name.split("_")[0] for p in (tmp_path / "out").iterdir()}) == ["a", "c"]


def test_json_records_one_per_input_with_files_or_error(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png
):
    import json

    rng = np.random.default_rng(3)
    good = write_png(tmp_path / "a.png", rng.random((32, 32, 3)))
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not a png")
    args = ["svbrdf", str(good), str(bad), str(tmp_path / "none*.png"), "-o", str(tmp_path / "o"), "--json"]
    code, out, err = run([*args, "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base)], capsys)
    assert code == 1 and "Error:" in err
    records = {r["input"]: r for r in map(json.loads, out.splitlines())}
    assert set(records) == {str(good), str(bad), str(tmp_path / "none*.png")}
    assert records[str(good)]["files"] == [str(tmp_path / "o" / f"a_{c}.png") for c in CHANNELS]
    assert "error" in records[str(bad)] and "files" not in records[str(bad)]
    assert records[str(tmp_path / "none*.png")]["error"].endswith(
        "matches no image (.png, .jpg, .jpeg, .tif, .tiff, .exr)"
    )


def test_fit_choices_complete_as_the_task_defines_them():
    import inspect

    from teamwork_cli.cli.cmd_svbrdf import svbrdf
    from teamwork_cli.tasks.svbrdf import FITS

    option = inspect.signature(svbrdf).parameters["fit"].default
    assert tuple(option.autocompletion("")) == FITS and option.autocompletion("d") == ["diffuse"]


def test_verbose_reports_each_inputs_time_and_peak_memory(
    tmp_path, tiny_base, tiny_svbrdf_adapter, capsys, run, write_png
):
    import re

    rng = np.random.default_rng(4)
    photos = [write_png(tmp_path / f"{n}.png", rng.random((16, 16, 3))) for n in ("a", "b")]
    args = ["svbrdf", *map(str, photos), "-o", str(tmp_path / "o"), "--verbose", "--fit", "none"]
    code, out, err = run([*args, "--adapter", str(tiny_svbrdf_adapter), "--base", str(tiny_base)], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "peak memory" in line]
    assert len(lines) == 2 and all(re.fullmatch(r".+\.png: \d+\.\d s, peak memory \d+ MB", x) for x in lines)
    assert lines[0].startswith(str(photos[0])) and len(out.split()) == 14  # stdout still holds only the paths
