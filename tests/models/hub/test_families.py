"""The supported diffusers pipelines, keyed by model_index.json's `_class_name`; the newer families end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from teamwork_cli.cli.app import main
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub import families as F


def _tensors(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_the_six_families():
    assert F.supported_pipelines() == [
        "StableDiffusion3Pipeline",
        "StableDiffusionXLPipeline",
        "StableDiffusionPipeline",
        "FluxPipeline",
        "Flux2KleinPipeline",
        "ZImagePipeline",
    ]
    assert {f.name: f.denoiser for f in F.FAMILIES.values()} == {
        "sd3": "transformer",
        "sdxl": "unet",
        "sd2": "unet",
        "flux": "transformer",
        "flux2": "transformer",
        "zimage": "transformer",
    }
    assert all(F.FAMILIES[p].pipeline == p for p in F.FAMILIES)


@pytest.mark.parametrize("pipeline", list(F.FAMILIES))
def test_each_family_names_its_prompt_encoder_and_builder(pipeline):
    family = F.family_for(pipeline, "base")
    encode, build = family.functions()
    assert callable(encode) and callable(build)
    assert encode.__name__ == family.encode and build.__name__ == family.build
    assert encode.__module__ == build.__module__ == f"teamwork_cli.models.hub.{family.module}"


def test_unknown_pipelines_list_the_supported_ones():
    with pytest.raises(TeamworkError) as err:
        F.family_for("KandinskyPipeline", "base model ./k")
    assert str(err.value).startswith("base model ./k is a KandinskyPipeline; Teamwork supports StableDiffusion3")
    assert "--base" in err.value.hint
    with pytest.raises(TeamworkError, match="is a pipeline without _class_name"):
        F.family_for("", "base model ./k")


def test_tiny_pipelines_are_the_families_they_claim(hub_team):
    family, folder, _ = hub_team
    index = json.loads((folder / "model_index.json").read_text())
    fam = F.family_for(index["_class_name"], str(folder))
    assert fam.name == family and fam.denoiser in index


@pytest.fixture(scope="module", params=["flux2", "zimage"])
def new_backbone(request, tmp_path_factory):
    """(family, a tiny random-weight FLUX.2-klein or Z-Image pipeline saved to a folder, loaded back by path)."""
    from teamwork_cli.models.hub.testing import save_tiny_pipeline

    return request.param, save_tiny_pipeline(request.param, tmp_path_factory.mktemp(request.param) / "base")


@pytest.mark.usefixtures("offline")
def test_finetune_and_every_task_on_flux2_klein_and_zimage(new_backbone, tmp_path, capsys, write_png):
    """finetune on each task's data, the file's reference metadata, `teamwork info`, and every task command with the
    adapter it wrote, all on a tiny pipeline loaded by path with no hub access."""
    family, base = new_backbone
    profile = {"flux2": "FLUX2", "zimage": "ZIMAGE"}[family]
    common = ["--steps", "1", "--batch-size", "2", "--resolution", "16", "--rank", "2", "--mixed-precision", "no"]
    made = {}
    for preset, data in [
        ("svbrdf", "procedural:svbrdf"),
        ("intrinsics", "procedural:scenes"),
        ("inpaint", "procedural:inpaint"),
        ("shade", "procedural:scenes"),
        ("synthesize", "procedural:synthesize"),
    ]:
        out = made[preset] = tmp_path / f"{preset}.safetensors"
        args = ["finetune", "--preset", preset, "--data", data, "--base", str(base), "-o", str(out), *common]
        assert main([*args, "--pool", "3"]) == 0, capsys.readouterr().err
    _, meta = _tensors(made["svbrdf"])
    teammates = meta["teamwork.teammates"].split(",")
    assert meta["teamwork.profile"] == profile and meta["base_model"] == str(base)
    assert meta["modelspec.architecture"] == f"{base}/teamwork"  # <base_model>/teamwork, as the reference
    assert meta["teamwork.teammate_image_ids"] == ",".join("0" * len(teammates))  # the reference's default
    assert meta["modelspec.resolution"] == "16x16" and meta["teamwork.lora_rank"] == "2"
    capsys.readouterr()
    assert main(["info", str(made["svbrdf"]), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["profile"] == profile and info["teammate_image_ids"] == [0] * len(teammates)
    assert info["architecture"] == f"{base}/teamwork"

    rng = np.random.default_rng(0)
    photo = write_png(tmp_path / "p.png", rng.random((24, 32, 3)))
    normals = write_png(tmp_path / "n.png", np.dstack([rng.random((24, 32, 2)) * 0.2 + 0.4, np.ones((24, 32))]))
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 8:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    run = ["--base", str(base), "--steps", "1"]
    for args in (
        ["svbrdf", photo, "-o", tmp_path / "sv", "--adapter", made["svbrdf"]],
        ["intrinsics", photo, "-o", tmp_path / "in", "--adapter", made["intrinsics"]],
        ["inpaint", photo, "--mask", tmp_path / "m.png", "-o", tmp_path / "ip", "--adapter", made["inpaint"]],
        ["shade", "--albedo", photo, "--normals", normals, "-o", tmp_path / "s.png", "--adapter", made["shade"]],
        ["synthesize", "-n", "1", "--size", "16", "-o", tmp_path / "sy", "--adapter", made["synthesize"]],
    ):
        code = main([*map(str, args), *run])
        out, err = capsys.readouterr()
        assert code == 0, (args[0], err)
        files = out.split()
        assert files and all(Path(f).is_file() for f in files), args[0]
    assert Image.open(tmp_path / "s.png").size == (32, 24)
    ip = np.asarray(Image.open(tmp_path / "ip" / "p_image.png"))
    assert ip.shape[:2] == (24, 32)


@pytest.mark.usefixtures("offline")
def test_finetune_with_joint_attention_on_flux2_klein_writes_flux2_plusattn(new_backbone, tmp_path, capsys):
    """--joint-attention trains the reference's FLUX2_PLUSATTN layout: the file has the joint markers, the profile,
    attn_allow and klein's T offsets, and svbrdf runs it with joint attention; bad masks are bad usage."""
    family, base = new_backbone
    out = tmp_path / "j.safetensors"
    args = ["finetune", "--preset", "svbrdf", "--data", "procedural:svbrdf", "--base", str(base), "-o", str(out)]
    args += ["--steps", "1", "--batch-size", "2", "--resolution", "16", "--rank", "2", "--pool", "3"]
    args += ["--mixed-precision", "no", "--joint-attention"]
    allow = "110000;110000;001000;000100;000010;000001"
    assert main([*args[:-1], "--attn-allow", allow]) == 2  # without --joint-attention
    assert "--attn-allow" in capsys.readouterr().err
    assert main([*args, "--attn-allow", "11;11"]) == 2  # six teammates
    capsys.readouterr()
    code = main([*args, "--attn-allow", allow])
    err = capsys.readouterr().err
    if family == "zimage":  # the reference defines no joint attention for Z-Image
        assert code == 1 and "Error:" in err and "joint attention" in err and "Traceback" not in err
        return
    assert code == 0, err
    tensors, meta = _tensors(out)
    assert meta["teamwork.profile"] == "FLUX2_PLUSATTN" and meta["teamwork.attn_allow"] == allow
    assert meta["teamwork.teammate_image_ids"] == "0,10,20,30,40,50"
    assert {"transformer_blocks.0.attn.adapter", "single_transformer_blocks.0.adapter"} <= set(tensors)
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    code = main(["svbrdf", str(photo), "-o", str(tmp_path / "m"), "--adapter", str(out), "--base", str(base)])
    assert code == 0, capsys.readouterr().err
