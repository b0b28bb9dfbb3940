"""`teamwork synthesize` end to end on a tiny model: files, seeds, errors."""

from __future__ import annotations

from PIL import Image


def test_synthesize_materials_and_seeds(tmp_path, tiny_base, adapters, capsys, cli, written):
    common = ["--adapter", adapters["synthesize"], "--base", tiny_base, "--steps", "2", "--size", "24"]
    code, files, err = cli(capsys, "synthesize", "-n", "2", "-o", tmp_path / "a", "--seed", "5", *common)
    assert code == 0, err
    chans = ("diffuse", "specular", "roughness", "normals", "image", "basecolor", "metallic")
    assert written(tmp_path / "a") == sorted(f"material_{i:03d}_{c}.png" for i in range(2) for c in chans)
    assert Image.open(tmp_path / "a/material_001_image.png").size == (24, 24)
    # material i comes from seed + i alone
    code, files, err = cli(capsys, "synthesize", "-n", "1", "-o", tmp_path / "b", "--seed", "6", "--stem", "x", *common)
    assert code == 0, err
    assert (tmp_path / "b/x_000_normals.png").read_bytes() == (tmp_path / "a/material_001_normals.png").read_bytes()
    code, _, err = cli(capsys, "synthesize", "-n", "1", "-o", tmp_path / "c", "--prompt", "rusty metal", *common)
    assert code == 1 and "Error:" in err and "prompt" in err
    code, _, err = cli(capsys, "synthesize", "-o", tmp_path / "c", "--size", "big", *common[:4])
    assert code == 2 and "--size" in err


def test_synthesize_tileable_writes_maps_of_the_size_asked(tmp_path, tiny_base, capsys, cli, adapters):
    from teamwork_cli.materials.read import read_image

    adapter = adapters["synthesize"]
    code, files, err = cli(
        capsys,
        "synthesize",
        "-n",
        "1",
        "-o",
        tmp_path / "o",
        "--adapter",
        adapter,
        "--base",
        tiny_base,
        "--steps",
        "2",
        "--size",
        "48x40",
        "--tileable",
        "--window",
        "32",
    )
    assert code == 0, err
    assert all(read_image(f).pixels.shape[:2] == (40, 48) for f in files)


def test_synthesize_json_has_a_record_per_material(tmp_path, tiny_base, adapters, capsys, run):
    import json

    args = ["synthesize", "-n", "2", "--size", "16", "-o", str(tmp_path), "--json", "--steps", "1"]
    code, out, err = run([*args, "--adapter", str(adapters["synthesize"]), "--base", str(tiny_base)], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["input"] for r in records] == ["material_000", "material_001"]
    assert all(r["files"] and all((tmp_path / p).exists() for p in r["files"]) for r in records)
