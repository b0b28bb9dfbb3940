"""SD3, SDXL, SD2 and Flux backbones on tiny random pipelines saved to disk and loaded by path, offline.

For each family: `teamwork svbrdf` and `teamwork intrinsics` end to end through the CLI with published-format
adapters, every layer of the file adapted under its published name, and the team sampler reproducing diffusers'
own pipeline.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import randomize_up, write_png
from PIL import Image

from teamwork_cli.adapters.checkpoint import read_adapter_info, save_adapter
from teamwork_cli.adapters.model import adapter_layers, inject_adapter
from teamwork_cli.adapters.profiles import layers_to_adapt
from teamwork_cli.cli.app import main
from teamwork_cli.core.layout import TeamLayout, load_preset
from teamwork_cli.materials.read import read_image
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.testing import FAMILIES, save_tiny_pipeline
from teamwork_cli.pipelines.sampling import sample_team
from teamwork_cli.pipelines.team_pipeline import TeamPipeline

SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]
# What `teamwork intrinsics` writes with the published decomposition teammates: its outputs, plus glTF metallic.
INTRINSICS = ["diffuse", "specular", "roughness", "normals", "depth", "albedo", "inverseshading", "diffuseshading",
              "residual", "metallic"]
MAPS = ["diffuse", "specular", "roughness", "normals", "basecolor", "metallic", "render"]
# Published layer names (conventions.md section 5), as leaf paths inside each block.
MMDIT = {"norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.0.proj", "ff.net.2"}
FLUX_SINGLE = {"norm.linear", "attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out"}
UNET = {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2", "conv1", "conv2",
        "conv_shortcut"}
BLOCK = re.compile(r"^(transformer_blocks\.\d+|single_transformer_blocks\.\d+|.*\.transformer_blocks\.\d+|"
                   r".*\.resnets\.\d+)\.(.+)$")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path / "cache"))


def published_adapter(family, folder, teammates, path, task):
    """A random (non-zero) adapter for the pipeline at `folder`, written in the published format."""
    den = load_hub_denoiser(str(folder), cache_embeds=False)
    inject_adapter(den.model, layers_to_adapt(den.model), len(teammates), 4)
    randomize_up(den.model, 0.02)
    return save_adapter(den.model, path, teammates, base_model=str(folder), title=f"tiny {family} {task}",
                        profile=family.upper(), architecture=family)


@pytest.fixture(scope="module", params=FAMILIES)
def team(request, tmp_path_factory):
    """(family, pipeline folder, svbrdf adapter in the published format with non-zero weights)."""
    family = request.param
    root = tmp_path_factory.mktemp(family)
    folder = save_tiny_pipeline(family, root / "base")
    return family, folder, published_adapter(family, folder, SVBRDF, root / f"svbrdf_{family}.safetensors", "svbrdf")


@pytest.fixture(scope="module")
def intrinsics_adapter(team):
    """An intrinsics adapter (the published decomposition checkpoint's teammates) for `team`'s pipeline."""
    family, folder, _ = team
    return published_adapter(family, folder, load_preset("intrinsics").names,
                             folder.parent / f"intrinsics_{family}.safetensors", "intrinsics")


def test_svbrdf_cli_end_to_end(team, tmp_path, capsys):
    family, folder, adapter = team
    # 40 x 56 is not a multiple of the backbones' pixel_multiple: exercises padding and the tiled VAE (> 32 px).
    photo = write_png(tmp_path / "tile.png", np.random.default_rng(0).random((40, 56, 3)))
    out = tmp_path / "maps"
    code = main(["svbrdf", str(photo), "-o", str(out), "--adapter", str(adapter), "--base", str(folder),
                 "--steps", "1"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(stdout.split()) == sorted(str(out / f"tile_{c}.png") for c in MAPS)
    for c in MAPS:
        im = Image.open(out / f"tile_{c}.png")
        assert im.size == (56, 40)
        assert len(im.getbands()) == (1 if c in ("roughness", "metallic") else 3)


def test_intrinsics_cli_end_to_end(team, intrinsics_adapter, tmp_path, capsys):
    _, folder, _ = team
    photo = write_png(tmp_path / "room.png", np.random.default_rng(1).random((40, 56, 3)))
    common = ["--adapter", str(intrinsics_adapter), "--base", str(folder), "--steps", "1"]
    code = main(["intrinsics", str(photo), "-o", str(tmp_path / "all"), *common])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    files = {f"room_{c}.{'exr' if c == 'diffuseshading' else 'png'}": c for c in INTRINSICS}
    assert sorted(stdout.split()) == sorted(str(tmp_path / "all" / f) for f in files)
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(files)
    for name, c in files.items():
        im = read_image(tmp_path / "all" / name)
        assert im.pixels.shape == (40, 56, 1 if c in ("roughness", "depth", "metallic") else 3), name
        assert np.isfinite(im.pixels).all(), name
    assert read_image(tmp_path / "all" / "room_diffuseshading.exr").is_float
    code = main(["intrinsics", str(photo), "-o", str(tmp_path / "some"), "--request", "albedo,normals", *common])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    some = [tmp_path / "some" / "room_albedo.png", tmp_path / "some" / "room_normals.png"]
    assert sorted(stdout.split()) == [str(p) for p in some]
    assert sorted((tmp_path / "some").iterdir()) == some
    assert all(read_image(p).pixels.shape == (40, 56, 3) for p in some)


def test_published_layer_names_all_adapted(team):
    family, folder, adapter = team
    info = read_adapter_info(adapter)
    pipe = TeamPipeline.load(adapter, base=str(folder), device="cpu")
    adapted = set(adapter_layers(pipe.denoiser.model))
    assert adapted == set(info.layers) and adapted
    leaves: dict[str, set[str]] = {}
    for name in adapted:
        block, leaf = BLOCK.match(name).groups()
        leaves.setdefault(block, set()).add(leaf)
    if family == "sd3":
        assert leaves == {"transformer_blocks.0": MMDIT, "transformer_blocks.1": MMDIT}
    elif family == "flux":
        assert leaves == {"transformer_blocks.0": MMDIT, "single_transformer_blocks.0": FLUX_SINGLE}
    else:
        assert all(leaf <= UNET for leaf in leaves.values())
        attn = [b for b in leaves if ".transformer_blocks." in b]
        assert attn and all(leaves[b] == UNET - {"conv1", "conv2", "conv_shortcut"} for b in attn)
        assert any("conv_shortcut" in leaf for leaf in leaves.values())
    assert pipe.denoiser.input_convention == "published"


def test_sampler_matches_diffusers_pipeline(team):
    """With a no-op adapter and no inputs, the team sampler is the diffusers pipeline (no CFG)."""
    import diffusers

    family, folder, _ = team
    # SDXL: diffusers' own size conditioning here (the published one is 8x larger, see hub/unet.py).
    options = {"micro_conditioning": "diffusers"} if family == "sdxl" else {}
    den = load_hub_denoiser(str(folder), cache_embeds=False, **options)
    inject_adapter(den.model, None, 1, 2)  # zero `up`: exactly the base model
    g = torch.Generator().manual_seed(3)
    ours = sample_team(den, TeamLayout.from_names(["image.out"]), {}, size=(32, 32), num_images=1, steps=2,
                       generator=g)["image.out"]
    noise = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(3))
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = type(den.scheduler).from_config(den.scheduler.config)  # the loader's estimation scheduler
    kw = dict(prompt="", height=32, width=32, num_inference_steps=2, output_type="pt")
    if family == "flux":
        from teamwork_cli.models.hub.flux import pack

        kw.update(latents=pack(noise), guidance_scale=den.guidance)
    else:
        kw.update(latents=noise, guidance_scale=1.0)
    with torch.no_grad():
        ref = pipe(**kw).images
    torch.testing.assert_close((ours / 2 + 0.5).clamp(0, 1), ref, atol=1e-4, rtol=0)

