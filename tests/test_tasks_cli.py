"""`teamwork intrinsics | inpaint | shade | synthesize` end to end on a tiny model: files, sizes, subsets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_adapter, write_png
from PIL import Image

from teamwork_cli.cli.app import main
from teamwork_cli.core.layout import load_preset
from teamwork_cli.materials.read import read_image
from teamwork_cli.materials.write import write_map


@pytest.fixture(scope="module")
def adapters(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("task_adapters")
    presets = ("intrinsics", "inpaint", "inpaint-material", "shade", "synthesize")
    return {p: make_adapter(tiny_base, load_preset(p).names, root / f"{p}.safetensors") for p in presets}


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.split(), err


def written(folder):
    return sorted(p.name for p in folder.iterdir())


def test_intrinsics_all_channels_and_request(tmp_path, tiny_base, adapters, capsys):
    photo = write_png(tmp_path / "room.png", np.random.default_rng(0).random((40, 36, 3)))
    common = ["--adapter", adapters["intrinsics"], "--base", tiny_base, "--steps", "1"]
    code, out, err = run(capsys, "intrinsics", photo, "-o", tmp_path / "all", *common)
    assert code == 0, err
    chans = ["diffuse", "specular", "roughness", "normals", "depth", "albedo", "inverseshading", "residual",
             "metallic"]
    assert written(tmp_path / "all") == sorted([f"room_{c}.png" for c in chans] + ["room_diffuseshading.exr"])
    assert Image.open(tmp_path / "all/room_albedo.png").size == (36, 40)
    assert read_image(tmp_path / "all/room_diffuseshading.exr").pixels.shape == (40, 36, 3)
    code, out, err = run(capsys, "intrinsics", photo, "-o", tmp_path / "some", "--request", "albedo,normals", *common)
    assert code == 0, err
    assert written(tmp_path / "some") == ["room_albedo.png", "room_normals.png"]
    code, _, err = run(capsys, "intrinsics", photo, "-o", tmp_path / "bad", "--request", "albedo,sheen", *common)
    assert code == 2 and "Error:" in err and "sheen" in err and "inverseshading" in err
    assert not (tmp_path / "bad").exists()


def test_inpaint_keeps_unmasked_pixels_bit_exact(tmp_path, tiny_base, adapters, capsys):
    rng = np.random.default_rng(1)
    photo = write_png(tmp_path / "img.png", rng.random((32, 40, 3)))  # 8-bit
    deep = write_map(tmp_path / "deep.png", rng.random((32, 40, 3)).astype(np.float32), "image")  # 16-bit
    mask = np.zeros((32, 40), np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    common = ["--mask", tmp_path / "mask.png", "--adapter", adapters["inpaint"], "--base", tiny_base, "--steps", "2"]
    for fmt, src, extra in (("png8", photo, []), ("png", photo, []), ("png", deep, []),
                            ("png8", photo, ["--no-keep-context"])):
        out = tmp_path / f"{fmt}_{src.stem}{len(extra)}"
        code, files, err = run(capsys, "inpaint", src, "-o", out, "--format", fmt, *common, *extra)
        assert code == 0, err
        assert files == [str(out / f"{src.stem}_image.png")]
        a, b = read_image(src).pixels, read_image(out / f"{src.stem}_image.png").pixels
        keep = mask == 0
        assert np.array_equal(a[keep], b[keep]), (fmt, src.name)
        assert not np.array_equal(a[~keep], b[~keep])  # the hole was filled by the model, not copied
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    code, _, err = run(capsys, "inpaint", photo, "--mask", tmp_path / "small.png", "-o", tmp_path / "x",
                       "--adapter", adapters["inpaint"], "--base", tiny_base)
    assert code == 1 and "Error:" in err and "20x20" in err and "40x32" in err


def test_inpaint_keeps_hdr_values_and_reads_masks_as_painted(tmp_path, tiny_base, adapters, capsys):
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
            code, files, err = run(capsys, "inpaint", tmp_path / "hdr.exr", "--mask", tmp_path / f"{m}.png", "-o", out,
                                   "--format", fmt, *common)
            assert code == 0, err
            got = read_image(out / "hdr_image.exr").pixels
            assert np.array_equal(got[~hole], hdr[~hole]), (fmt, m)  # exactly, HDR and negative values too
            assert not np.array_equal(got[hole], hdr[hole])
    rgba = (rng.random((24, 24, 4)) * 255).astype(np.uint8)  # a decal: its alpha must survive untouched
    Image.fromarray(rgba, "RGBA").save(tmp_path / "decal.png")
    code, files, err = run(capsys, "inpaint", tmp_path / "decal.png", "--mask", tmp_path / "red.png", "-o",
                           tmp_path / "d", "--format", "png8", *common)
    assert code == 0, err
    got = np.asarray(Image.open(tmp_path / "d/decal_image.png"))
    assert got.shape == (24, 24, 4) and np.array_equal(got[..., 3], rgba[..., 3])
    assert np.array_equal(got[~hole], rgba[~hole]) and not np.array_equal(got[hole, :3], rgba[hole, :3])
    Image.fromarray(np.full((24, 24), 255, np.uint8)).save(tmp_path / "full.png")
    code, _, err = run(capsys, "inpaint", tmp_path / "hdr.exr", "--mask", tmp_path / "full.png", "-o",
                       tmp_path / "f", *common)
    assert code == 2 and "whole image" in err and not (tmp_path / "f").exists()
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "empty.png")
    code, files, err = run(capsys, "inpaint", tmp_path / "hdr.exr", "--mask", tmp_path / "empty.png", "-o",
                           tmp_path / "e", "--format", "exr", *common)
    assert code == 0 and "Note:" in err and "empty" in err
    assert np.array_equal(read_image(tmp_path / "e/hdr_image.exr").pixels, hdr)


def test_inpaint_material_maps(tmp_path, tiny_base, adapters, capsys):
    rng = np.random.default_rng(2)
    maps = tmp_path / "maps"
    maps.mkdir()
    for c in ("diffuse", "specular", "normals"):
        write_png(maps / f"brick_{c}.png", rng.random((24, 24, 3)))
    Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8)).save(maps / "brick_roughness.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, files, err = run(capsys, "inpaint", "--maps", maps / "brick", "--mask", tmp_path / "m.png", "-o",
                           tmp_path / "out", "--adapter", adapters["inpaint-material"], "--base", tiny_base,
                           "--steps", "1", "--format", "png8")
    assert code == 0, err
    assert written(tmp_path / "out") == [f"brick_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    for c in ("diffuse", "normals", "roughness"):
        a, b = read_image(maps / f"brick_{c}.png").pixels, read_image(tmp_path / f"out/brick_{c}.png").pixels
        assert np.array_equal(a[mask == 0], b[mask == 0]), c
    plain = tmp_path / "plain"  # finetune's data layout: DIR/<channel>.<ext>, the material named after DIR
    plain.mkdir()
    for f in maps.iterdir():
        (plain / f.name.removeprefix("brick_")).write_bytes(f.read_bytes())
    code, files, err = run(capsys, "inpaint", "--maps", plain, "--mask", tmp_path / "m.png", "-o", tmp_path / "o3",
                           "--adapter", adapters["inpaint-material"], "--base", tiny_base, "--steps", "1")
    assert code == 0, err
    assert written(tmp_path / "o3") == [f"plain_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    code, files, err = run(capsys, "inpaint", "--maps", str(tmp_path / "ma*" / "brick"), "--maps",
                           str(tmp_path / "pl*"), "--mask", tmp_path / "m.png", "-o", tmp_path / "o6", "--adapter",
                           adapters["inpaint-material"], "--base", tiny_base, "--steps", "1")  # globs, quoted
    assert code == 0, err
    assert written(tmp_path / "o6") == sorted(f"{m}_{c}.png" for m in ("brick", "plain")
                                              for c in ("diffuse", "normals", "roughness", "specular"))
    other = tmp_path / "other"  # a second material of the same name would write the same files: refused
    other.mkdir()
    for f in maps.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    code, files, err = run(capsys, "inpaint", "--maps", maps / "brick", "--maps", other / "brick", "--mask",
                           tmp_path / "m.png", "-o", tmp_path / "o5", "--adapter", adapters["inpaint-material"],
                           "--base", tiny_base, "--steps", "1", "--overwrite")
    assert code == 2 and "would write the same outputs" in err and not (tmp_path / "o5").exists()
    # A stray unprefixed map beside a complete material: that "material" fails alone, the complete one is filled.
    (maps / "diffuse.png").write_bytes((maps / "brick_diffuse.png").read_bytes())
    code, files, err = run(capsys, "inpaint", "--maps", maps, "--mask", tmp_path / "m.png", "-o", tmp_path / "o4",
                           "--adapter", adapters["inpaint-material"], "--base", tiny_base, "--steps", "1")
    assert code == 1 and "maps: missing specular.<ext>" in err and "1 of 2 inputs failed" in err
    assert written(tmp_path / "o4") == [f"brick_{c}.png" for c in ("diffuse", "normals", "roughness", "specular")]
    (maps / "diffuse.png").unlink()
    (maps / "brick_specular.png").unlink()
    code, _, err = run(capsys, "inpaint", "--maps", maps, "--mask", tmp_path / "m.png", "-o", tmp_path / "o2",
                       "--adapter", adapters["inpaint-material"], "--base", tiny_base)
    assert code == 1 and "brick_specular" in err


def test_inpaint_grey_input_stays_grey(tmp_path, tiny_base, adapters, capsys):
    rng = np.random.default_rng(5)
    grey = (rng.random((24, 24)) * 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    la = (rng.random((24, 24, 2)) * 255).astype(np.uint8)  # grey + alpha: the alpha is carried through, as for RGBA
    Image.fromarray(la, "LA").save(tmp_path / "ga.png")
    mask = np.zeros((24, 24), np.uint8)
    mask[6:14, 4:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    hole = mask > 0
    code, files, err = run(capsys, "inpaint", tmp_path / "g.png", tmp_path / "ga.png", "--mask", tmp_path / "m.png",
                           "-o", tmp_path / "out", "--format", "png8", "--adapter", adapters["inpaint"], "--base",
                           tiny_base, "--steps", "1")
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


def test_inpaint_checks_maps_before_loading_the_model(tmp_path, adapters, capsys, monkeypatch):
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
    for spec, message in ((tmp_path / "nope", f"--maps {tmp_path / 'nope'}: no such folder"),
                          (tmp_path / "empty" / "brick", f"--maps {tmp_path / 'empty' / 'brick'}: no such folder, "
                           "and no file brick_<channel>.<ext> for channels diffuse, specular, roughness, normals"),
                          (tmp_path / "empty", f"--maps {tmp_path / 'empty'}: no <stem>_<channel>.<ext> files")):
        code, files, err = run(capsys, "inpaint", "--maps", spec, *material)
        assert code == 1 and files == [] and f"Error: {message}" in err and "\nHint: " in err, err
        assert "was loaded" not in err
    code, _, err = run(capsys, "inpaint", "--maps", tmp_path / "empty", "--mask", tmp_path / "m.png", "-o",
                       tmp_path / "out", "--adapter", adapters["inpaint"])
    assert code == 1 and "fills images, not materials" in err
    assert loads == [] and not (tmp_path / "out").exists()
    write_png(tmp_path / "empty" / "brick_diffuse.png", np.zeros((24, 24, 3)))  # a material: now the model loads
    code, _, err = run(capsys, "inpaint", "--maps", tmp_path / "empty" / "brick", *material)
    assert code == 1 and "the model was loaded" in err and len(loads) == 1


def test_shade_optional_buffers_and_errors(tmp_path, tiny_base, adapters, capsys):
    rng = np.random.default_rng(3)
    albedo = write_png(tmp_path / "a.png", rng.random((24, 32, 3)))
    normals = write_png(tmp_path / "n.png", np.dstack([rng.random((24, 32, 2)) * 0.2 + 0.4, np.ones((24, 32))]))
    Image.fromarray((rng.random((24, 32)) * 255).astype(np.uint8)).save(tmp_path / "r.png")
    common = ["--adapter", adapters["shade"], "--base", tiny_base, "--steps", "2"]
    code, files, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "-o", tmp_path / "s.png", *common)
    assert code == 0, err
    assert files == [str(tmp_path / "s.png")] and Image.open(tmp_path / "s.png").size == (32, 24)
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "--roughness", tmp_path / "r.png",
                       "-o", tmp_path / "s.exr", *common)
    assert code == 0, err
    assert read_image(tmp_path / "s.exr").pixels.shape == (24, 32, 3)
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "--metallic", tmp_path / "r.png",
                       "--basecolor", albedo, "-o", tmp_path / "b.png", *common)
    assert code == 0 and "Note:" not in err, err
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "--basecolor", albedo, "-o",
                       tmp_path / "c.png", *common)
    assert code == 0 and "--basecolor without --metallic" in err
    older = make_adapter(tiny_base, ["albedo.in", "normals.in", "roughness.in", "metallic.in", "depth.in",
                                     "deferred.in", "image.out"], tmp_path / "older.safetensors")
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "--basecolor", albedo, "-o",
                       tmp_path / "t.png", "--adapter", older, "--base", tiny_base, "--steps", "1")
    assert code == 1 and "does not take basecolor" in err
    code, _, err = run(capsys, "shade", "--basecolor", albedo, "--metallic", tmp_path / "r.png", "--normals", normals,
                       "-o", tmp_path / "g.png", "--adapter", older, "--base", tiny_base, "--steps", "1")
    assert code == 0, err  # basecolor stands in for the albedo, even for an adapter that does not take it
    code, _, err = run(capsys, "shade", "--normals", normals, "-o", tmp_path / "t.png", *common)
    assert code == 2 and "--albedo" in err and "--basecolor" in err
    code, _, err = run(capsys, "shade", "--albedo", albedo, "-o", tmp_path / "t.png", *common)
    assert code == 2 and "Error:" in err and "--normals" in err
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", tmp_path / "nope.png", "-o",
                       tmp_path / "t.png", *common)
    assert code == 1 and "Error:" in err and "nope.png" in err
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    code, _, err = run(capsys, "shade", "--albedo", albedo, "--normals", normals, "--depth", tmp_path / "small.png",
                       "-o", tmp_path / "t.png", *common)
    assert code == 1 and "Error:" in err and "10x10" in err
    assert not (tmp_path / "t.png").exists()


def test_synthesize_materials_and_seeds(tmp_path, tiny_base, adapters, capsys):
    common = ["--adapter", adapters["synthesize"], "--base", tiny_base, "--steps", "2", "--size", "24"]
    code, files, err = run(capsys, "synthesize", "-n", "2", "-o", tmp_path / "a", "--seed", "5", *common)
    assert code == 0, err
    chans = ("diffuse", "specular", "roughness", "normals", "image", "basecolor", "metallic")
    assert written(tmp_path / "a") == sorted(f"material_{i:03d}_{c}.png" for i in range(2) for c in chans)
    assert Image.open(tmp_path / "a/material_001_image.png").size == (24, 24)
    # material i comes from seed + i alone
    code, files, err = run(capsys, "synthesize", "-n", "1", "-o", tmp_path / "b", "--seed", "6", "--stem", "x",
                           *common)
    assert code == 0, err
    assert (tmp_path / "b/x_000_normals.png").read_bytes() == (tmp_path / "a/material_001_normals.png").read_bytes()
    code, _, err = run(capsys, "synthesize", "-n", "1", "-o", tmp_path / "c", "--prompt", "rusty metal", *common)
    assert code == 1 and "Error:" in err and "prompt" in err
    code, _, err = run(capsys, "synthesize", "-o", tmp_path / "c", "--size", "big", *common[:4])
    assert code == 2 and "--size" in err


def test_missing_shipped_adapter_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from teamwork_cli.models.hub import resolve

    monkeypatch.setattr(resolve, "default_adapter", lambda preset: tmp_path / f"{preset}.safetensors")
    photo = write_png(tmp_path / "p.png", np.full((16, 16, 3), 0.5))
    code, _, err = run(capsys, "intrinsics", photo, "-o", tmp_path / "o")
    assert code == 1 and "is shipped with this version yet" in err and "--adapter" in err


def test_known_region_is_held_while_sampling(tiny_base, adapters):
    """Held context: with every pixel known, 20 steps end near the known image; with none, nothing changes."""
    import torch

    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    pipe = TeamPipeline.load(adapters["inpaint"], base=str(tiny_base), device="cpu", dtype="fp32")
    g = torch.Generator().manual_seed(0)
    image, mask = torch.rand(1, 3, 16, 16, generator=g), torch.zeros(1, 1, 16, 16)
    inputs = {"image.in": image, "mask.in": mask.expand(1, 3, -1, -1)}
    free = pipe(inputs, steps=20)["image.out"]
    held = pipe(inputs, steps=20, known={"image.out": image}, known_mask=torch.ones_like(mask))["image.out"]
    none = pipe(inputs, steps=20, known={"image.out": image}, known_mask=mask)["image.out"]
    assert (held - image).abs().mean() < 0.5 * (free - image).abs().mean()
    torch.testing.assert_close(none, free)
    with pytest.raises(ValueError, match="known_mask"):
        pipe(inputs, steps=2, known={"image.out": image})
    with pytest.raises(ValueError, match=r"known_mask: must be \[1 or 1, 1, 16, 16\]"):
        pipe(inputs, steps=2, known={"image.out": image}, known_mask=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="not running outputs"):
        pipe(inputs, steps=2, known={"image.in": image}, known_mask=mask)


def test_intrinsics_ensemble_is_the_mean_of_its_samples(tiny_base, adapters):
    import torch

    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.tasks import intrinsics
    from teamwork_cli.tasks.ensemble import SEED_STRIDE

    pipe = TeamPipeline.load(adapters["intrinsics"], base=str(tiny_base), device="cpu", dtype="fp32")
    photo = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    both = intrinsics.estimate(pipe, photo, ["albedo", "normals"], seed=3, ensemble=2)
    one = [intrinsics.estimate(pipe, photo, ["albedo", "normals"], seed=[3 + k * SEED_STRIDE, 4 + k * SEED_STRIDE])
           for k in range(2)]
    torch.testing.assert_close(both["albedo"], (one[0]["albedo"] + one[1]["albedo"]) / 2, atol=1e-5, rtol=1e-5)
    assert torch.allclose(both["normals"].norm(dim=1), torch.ones(1), atol=1e-4)
    with pytest.raises(ValueError, match="ensemble"):
        intrinsics.estimate(pipe, photo, ["albedo"], ensemble=0)
