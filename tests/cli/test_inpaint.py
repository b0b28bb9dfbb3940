"""`teamwork inpaint` end to end on a tiny model: images and materials, kept pixels, masks, fills, errors."""

from __future__ import annotations

import numpy as np
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.core.layout import load_preset
from teamwork_cli.materials.read import read_image
from teamwork_cli.materials.write import write_map


def test_inpaint_keeps_unmasked_pixels_bit_exact(tmp_path, tiny_base, adapters, capsys, cli, write_png):
    rng = np.random.default_rng(1)
    photo = write_png(tmp_path / "img.png", rng.random((32, 40, 3)))  # 8-bit
    deep = write_map(tmp_path / "deep.png", rng.random((32, 40, 3)).astype(np.float32), "image")  # 16-bit
    mask = np.zeros((32, 40), np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    common = ["--mask", tmp_path / "mask.png", "--adapter", adapters["inpaint"], "--base", tiny_base, "--steps", "2"]
    for fmt, src, extra in (
        ("png8", photo, []),
        ("png", photo, []),
        ("png", deep, []),
        ("png8", photo, ["--no-keep-context"]),
    ):
        out = tmp_path / f"{fmt}_{src.stem}{len(extra)}"
        code, files, err = cli(capsys, "inpaint", src, "-o", out, "--format", fmt, *common, *extra)
        assert code == 0, err
        assert files == [str(out / f"{src.stem}_image.png")]
        a, b = read_image(src).pixels, read_image(out / f"{src.stem}_image.png").pixels
        keep = mask == 0
        assert np.array_equal(a[keep], b[keep]), (fmt, src.name)
        assert not np.array_equal(a[~keep], b[~keep])  # the hole was filled by the model, not copied
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    code, _, err = cli(
        capsys,
        "inpaint",
        photo,
        "--mask",
        tmp_path / "small.png",
        "-o",
        tmp_path / "x",
        "--adapter",
        adapters["inpaint"],
        "--base",
        tiny_base,
    )
    assert code == 1 and "Error:" in err and "20x20" in err and "40x32" in err


def test_inpaint_keeps_hdr_values_and_reads_masks_as_painted(tmp_path, tiny_base, adapters, capsys, cli):
    rng = np.random.default_rng(4)
    hdr = (rng.random((24, 24, 3)) * 8 - 1).astype(np.float16).astype(np.float32)  # negative and > 1 values
    write_map(tmp_path / "hdr.exr", hdr, "image")
    alpha = np.zeros((24, 24, 4), np.uint8)  # a transparent layer: the stroke is in alpha only
    alpha[4:12, 6:18, 3] = 255
    Image.fromarray(alpha, "RGBA").save(tmp_path / "alpha.png")
    red = np.zeros((24, 24, 3), np.uint8)
    red[4:12, 6:18, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    hole = np.zeros((24, 24), bool)
    hole[4:12, 6:18] = True
    common = ["--adapter", adapters["inpaint"], "--base", tiny_base, "--steps", "1"]
    for fmt in ("exr", "exr32"):
        for m in ("alpha", "red"):
            out = tmp_path / f"{fmt}_{m}"
            code, files, err = cli(
                capsys,
                "inpaint",
                tmp_path / "hdr.exr",
                "--mask",
                tmp_path / f"{m}.png",
                "-o",
                out,
                "--format",
                fmt,
                *common,
            )
            assert code == 0, err
            got = read_image(out / "hdr_image.exr").pixels
            assert np.array_equal(got[~hole], hdr[~hole]), (fmt, m)  # exactly, HDR and negative values too
            assert not np.array_equal(got[hole], hdr[hole])
    rgba = (rng.random((24, 24, 4)) * 255).astype(np.uint8)  # a decal: its alpha must survive untouched
    Image.fromarray(rgba, "RGBA").save(tmp_path / "decal.png")
    code, files, err = cli(
        capsys,
        "inpaint",
        tmp_path / "decal.png",
        "--mask",
        tmp_path / "red.png",
        "-o",
        tmp_path / "d",
        "--format",
        "png8",
        *common,
    )
    assert code == 0, err
    got = np.asarray(Image.open(tmp_path / "d/decal_image.png"))
    assert got.shape == (24, 24, 4) and np.array_equal(got[..., 3], rgba[..., 3])
    assert np.array_equal(got[~hole], rgba[~hole]) and not np.array_equal(got[hole, :3], rgba[hole, :3])
    Image.fromarray(np.full((24, 24), 255, np.uint8)).save(tmp_path / "full.png")
    code, _, err = cli(
        capsys, "inpaint", tmp_path / "hdr.exr", "--mask", tmp_path / "full.png", "-o", tmp_path / "f", *common
    )
    assert code == 2 and "whole image" in err and not (tmp_path / "f").exists()
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "empty.png")
    code, files, err = cli(
        capsys,
        "inpaint",
        tmp_path / "hdr.exr",
        "--mask",
        tmp_path / "empty.png",
        "-o",
        tmp_path / "e",
        "--format",
        "exr",
        *common,
    )
    assert code == 0 and "Note:" in err and "empty" in err
    assert np.array_equal(read_image(tmp_path / "e/hdr_image.exr").pixels, hdr)


def test_inpaint_material_maps(tmp_path, tiny_base, adapters, capsys, cli, write_png, written):
    rng = np.random.default_rng(2)
    maps = tmp_path / "maps"
    maps.mkdir()
    for c in ("diffuse", "specular", "normals"):
        write_png(maps / f"brick_{c}.png", rng.random((24, 24, 3)))
    Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(maps / "brick_roughness.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, files, err = cli(
        capsys,
        "inpaint",
        "--maps",
        maps / "brick",
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "out",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
        "--steps",
        "1",
        "--format",
        "png8",
    )
    assert code == 0, err
    assert written(tmp_path / "out") == [f"brick_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    for c in ("diffuse", "normals", "roughness"):
        a, b = read_image(maps / f"brick_{c}.png").pixels, read_image(tmp_path / f"out/brick_{c}.png").pixels
        assert np.array_equal(a[mask == 0], b[mask == 0]), c
    plain = tmp_path / "plain"  # finetune's data layout: DIR/<channel>.<ext>, the material named after DIR
    plain.mkdir()
    for f in maps.iterdir():
        (plain / f.name.removeprefix("brick_")).write_bytes(f.read_bytes())
    code, files, err = cli(
        capsys,
        "inpaint",
        "--maps",
        plain,
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "o3",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
        "--steps",
        "1",
    )
    assert code == 0, err
    assert written(tmp_path / "o3") == [f"plain_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    code, files, err = cli(
        capsys,
        "inpaint",
        "--maps",
        str(tmp_path / "ma*" / "brick"),
        "--maps",
        str(tmp_path / "pl*"),
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "o6",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
        "--steps",
        "1",
    )  # globs, quoted
    assert code == 0, err
    assert written(tmp_path / "o6") == sorted(
        f"{m}_{c}.png" for m in ("brick", "plain") for c in ("diffuse", "normals", "roughness", "specular")
    )
    other = tmp_path / "other"  # a second material of the same name would write the same files: refused
    other.mkdir()
    for f in maps.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    code, files, err = cli(
        capsys,
        "inpaint",
        "--maps",
        maps / "brick",
        "--maps",
        other / "brick",
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "o5",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
        "--steps",
        "1",
        "--overwrite",
    )
    assert code == 2 and "would write the same outputs" in err and not (tmp_path / "o5").exists()
    # A stray unprefixed map beside a complete material: that "material" fails alone, the complete one is filled.
    (maps / "diffuse.png").write_bytes((maps / "brick_diffuse.png").read_bytes())
    code, files, err = cli(
        capsys,
        "inpaint",
        "--maps",
        maps,
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "o4",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
        "--steps",
        "1",
    )
    assert code == 1 and "maps: missing specular.<ext>" in err and "1 of 2 inputs failed" in err
    assert written(tmp_path / "o4") == [f"brick_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    (maps / "diffuse.png").unlink()
    (maps / "brick_specular.png").unlink()
    code, _, err = cli(
        capsys,
        "inpaint",
        "--maps",
        maps,
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "o2",
        "--adapter",
        adapters["inpaint-material"],
        "--base",
        tiny_base,
    )
    assert code == 1 and "brick_specular" in err


def test_inpaint_grey_input_stays_grey(tmp_path, tiny_base, adapters, capsys, cli):
    rng = np.random.default_rng(5)
    grey = (rng.random((24, 24)) * 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    la = (rng.random((24, 24, 2)) * 255).astype(np.uint8)  # grey + alpha: the alpha is carried through, as for RGBA
    Image.fromarray(la, "LA").save(tmp_path / "ga.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[6:14, 4:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    hole = mask > 0
    code, files, err = cli(
        capsys,
        "inpaint",
        tmp_path / "g.png",
        tmp_path / "ga.png",
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "out",
        "--format",
        "png8",
        "--adapter",
        adapters["inpaint"],
        "--base",
        tiny_base,
        "--steps",
        "1",
    )
    assert code == 0, err
    assert files == [str(tmp_path / "out/g_image.png"), str(tmp_path / "out/ga_image.png")]
    got = Image.open(tmp_path / "out/g_image.png")
    assert got.mode == "L"
    got = np.asarray(got)
    assert np.array_equal(got[~hole], grey[~hole]) and not np.array_equal(got[hole], grey[hole])
    got = Image.open(tmp_path / "out/ga_image.png")
    assert got.mode == "LA"
    got = np.asarray(got)
    assert np.array_equal(got[..., 1], la[..., 1])
    assert np.array_equal(got[~hole], la[~hole]) and not np.array_equal(got[hole, 0], la[hole, 0])


def test_inpaint_checks_maps_before_loading_the_model(tmp_path, adapters, capsys, monkeypatch, cli, write_png):
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    loads = []

    def no_load(*args, **kwargs):
        loads.append(args)
        raise RuntimeError("the model was loaded")

    monkeypatch.setattr(TeamPipeline, "load", no_load)
    mask = np.zeros((24, 24), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    (tmp_path / "empty").mkdir()
    material = ["--mask", tmp_path / "m.png", "-o", tmp_path / "out", "--adapter", adapters["inpaint-material"]]
    for spec, message in (
        (tmp_path / "nope", f"--maps {tmp_path / 'nope'}: no such folder"),
        (
            tmp_path / "empty" / "brick",
            f"--maps {tmp_path / 'empty' / 'brick'}: no such folder, "
            "and no file brick_<channel>.<ext> for channels diffuse, specular, roughness, normals",
        ),
        (tmp_path / "empty", f"--maps {tmp_path / 'empty'}: no <stem>_<channel>.<ext> files"),
    ):
        code, files, err = cli(capsys, "inpaint", "--maps", spec, *material)
        assert code == 1 and files == [] and f"Error: {message}" in err and "\nHint: " in err, err
        assert "was loaded" not in err
    code, _, err = cli(
        capsys,
        "inpaint",
        "--maps",
        tmp_path / "empty",
        "--mask",
        tmp_path / "m.png",
        "-o",
        tmp_path / "out",
        "--adapter",
        adapters["inpaint"],
    )
    assert code == 1 and "fills images, not materials" in err
    assert loads == [] and not (tmp_path / "out").exists()
    write_png(tmp_path / "empty" / "brick_diffuse.png", np.zeros((24, 24, 3)))  # a material: now the model loads
    code, _, err = cli(capsys, "inpaint", "--maps", tmp_path / "empty" / "brick", *material)
    assert code == 1 and "the model was loaded" in err and len(loads) == 1


def test_inpaint_uses_the_fill_its_adapter_was_trained_with(
    tmp_path, tiny_base, capsys, monkeypatch, make_adapter, write_png
):
    from teamwork_cli.tasks import inpaint as task

    names = load_preset("inpaint").names
    harmonic = make_adapter(tiny_base, names, tmp_path / "h.safetensors", metadata={"teamwork.hole_fill": "harmonic"})
    grey = make_adapter(tiny_base, names, tmp_path / "g.safetensors")
    odd = make_adapter(tiny_base, names, tmp_path / "o.safetensors", metadata={"teamwork.hole_fill": "mean"})
    seen = []
    real = task.blank
    monkeypatch.setattr(task, "blank", lambda x, m, fill="grey": seen.append(fill) or real(x, m, fill))
    rng = np.random.default_rng(0)
    photo = write_png(tmp_path / "p.png", rng.random((32, 32, 3)))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    for adapter, fill in ((harmonic, "harmonic"), (grey, "grey")):
        out = tmp_path / fill
        code = main(
            [
                "inpaint",
                str(photo),
                "--mask",
                str(tmp_path / "m.png"),
                "-o",
                str(out),
                "--adapter",
                str(adapter),
                "--base",
                str(tiny_base),
                "--steps",
                "1",
            ]
        )
        assert code == 0 and seen[-1] == fill
        a, b = read_image(photo).pixels, read_image(out / "p_image.png").pixels
        assert np.array_equal(a[mask == 0], b[mask == 0])
    capsys.readouterr()
    code = main(
        [
            "inpaint",
            str(photo),
            "--mask",
            str(tmp_path / "m.png"),
            "-o",
            str(tmp_path / "x"),
            "--adapter",
            str(odd),
            "--base",
            str(tiny_base),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "teamwork.hole_fill='mean'" in err and "grey, harmonic" in err
    assert main(["info", str(harmonic)]) == 0 and "harmonic" in capsys.readouterr().out


def test_inpaint_keeps_an_exr_normal_map_in_its_own_form(tmp_path, tiny_base, adapters, capsys, cli, write_png):
    from teamwork_cli.core.conventions import normalize
    from teamwork_cli.materials.write import write_map

    rng = np.random.default_rng(5)
    n = normalize(rng.normal(size=(24, 24, 3)).astype(np.float32) + np.float32([0, 0, 2]))
    for form in ("encoded", "signed"):
        maps = tmp_path / form
        maps.mkdir()
        for c in ("diffuse", "specular"):
            write_png(maps / f"brick_{c}.png", rng.random((24, 24, 3)))
        write_png(maps / "brick_roughness.png", rng.random((24, 24, 3)))
        write_map(maps / "brick_normals.exr", n, "normals", bits=32, exr_normals=form)
    mask = np.zeros((24, 24), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    for form in ("encoded", "signed"):
        code, files, err = cli(
            capsys,
            "inpaint",
            "--maps",
            tmp_path / form / "brick",
            "--mask",
            tmp_path / "m.png",
            "-o",
            tmp_path / f"out-{form}",
            "--adapter",
            adapters["inpaint-material"],
            "--base",
            tiny_base,
            "--steps",
            "1",
            "--format",
            "exr32",
        )
        assert code == 0, err
        before = read_image(tmp_path / form / "brick_normals.exr").pixels
        after = read_image(tmp_path / f"out-{form}/brick_normals.exr").pixels
        assert np.allclose(before[mask == 0], after[mask == 0], atol=1e-6), form  # same form, same values
        assert (after.min() < 0) == (form == "signed")


def test_inpaint_maps_reads_library_names_and_keeps_the_gltf_pair_in_step(
    tmp_path, tiny_base, adapters, capsys, run, write_png, written
):
    # A Poly Haven-style download: base colour, metalness, roughness and a DirectX normal map, 8-bit PNG.
    from teamwork_cli.cli.cmd_inpaint import GLTF
    from teamwork_cli.tasks import inpaint_material

    assert GLTF == inpaint_material.GLTF
    rng = np.random.default_rng(5)
    maps = tmp_path / "dl"
    maps.mkdir()
    grey = lambda name: Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(maps / name)  # noqa: E731
    write_png(maps / "brick_diff_1k.png", rng.random((24, 24, 3)))
    write_png(maps / "brick_nor_dx_1k.png", rng.random((24, 24, 3)))
    grey("brick_rough_1k.png")
    grey("brick_metal_1k.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[4:12, 6:14] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    args = ["inpaint", "--maps", str(maps / "brick"), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o")]
    code, out, err = run(
        [*args, "--adapter", str(adapters["inpaint-material"]), "--base", str(tiny_base), "--format", "png8"], capsys
    )
    assert code == 0, err
    assert "brick_diff_1k.png: read as basecolor (a texture library's 'diff')" in err
    assert "brick_nor_dx_1k.png: read as normals (a texture library's 'nor_dx')" in err
    names = ("diffuse", "specular", "roughness", "normals", "basecolor", "metallic")
    assert written(tmp_path / "o") == sorted(f"brick_{c}.png" for c in names)
    hole = mask > 127
    pairs = {"basecolor": "diff", "metallic": "metal", "roughness": "rough", "normals": "nor_dx"}
    for c, name in pairs.items():  # outside the hole each map is its file, DirectX normals included
        a = read_image(maps / f"brick_{name}_1k.png").pixels
        b = read_image(tmp_path / f"o/brick_{c}.png").pixels
        assert np.array_equal(a[~hole], b[~hole]), c
    # Inside, the glTF pair is refitted from the fill (tests/tasks/test_inpaint_material.py): not the input's.
    a, b = read_image(maps / "brick_diff_1k.png").pixels, read_image(tmp_path / "o/brick_basecolor.png").pixels
    assert not np.array_equal(a[hole], b[hole])
