"""The FLUX.2-klein denoiser: the reference's latents and ids, klein's schedule, and joint attention from a file."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.models.hub import flux2 as F2
from teamwork_cli.models.hub import load_hub_denoiser

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def den(hub_teams):
    _, folder, _ = hub_teams("flux2")
    return load_hub_denoiser(str(folder), cache_embeds=False)


def test_latent_ids_are_klein_t_h_w_l_coordinates():
    ids = F2.latent_ids(2, 3, torch.device("cpu"))
    assert ids.shape == (6, 4) and ids.dtype == torch.float32
    assert ids[4].tolist() == [0.0, 1.0, 1.0, 0.0]  # T = 0, row 1, column 1, L = 0
    assert ids[:, 0].eq(0).all() and ids[:, 3].eq(0).all()


def test_flux2_sizes_prompt_and_raw_vae_latents(den):
    assert isinstance(den, F2.Flux2Denoiser) and den.family == "flux2" and den.prediction_type == "flow"
    assert den.pixel_multiple == 4 and den.input_convention == "published"
    # Qwen3 layers 9, 18 and 27 stacked (3 x 16 wide), 512 tokens; text ids (0, 0, 0, l) kept in float32
    assert den.prompt_embeds.shape == (1, 512, 48)
    assert den.text_ids.dtype == torch.float32 and den.text_ids[0, 511].tolist() == [0.0, 0.0, 0.0, 511.0]
    # the FLUX.2 VAE has no scaling or shift factor: its latents as they come, as the reference encodes them
    assert (den.codec.scale, den.codec.shift) == (1.0, 0.0)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        raw = den.vae.encode(x).latent_dist.mode()
        torch.testing.assert_close(den.encode(x), raw)


def test_one_step_starts_at_pure_noise_and_more_steps_descend(den):
    latents = torch.zeros(1, 4, 16, 16)
    assert den.set_timesteps(1, latents).tolist() == [pytest.approx(1000.0)]
    four = den.set_timesteps(4, latents)
    assert len(four) == 4 and (four[1:] < four[:-1]).all()


def test_predict_keeps_the_latent_shape(den):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = den.predict(x, torch.full((2,), 700.0))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_a_flux2_plusattn_file_reloads_with_joint_attention_its_ids_and_attn_allow(hub_teams, tmp_path, capsys):
    from safetensors import safe_open

    from teamwork_cli.adapters.checkpoint import load_adapter, save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.models.joint_attention import attention_module, enable_joint_attention, joint_attention_layers

    _, folder, _ = hub_teams("flux2")
    team = ["image.in", "diffuse.out", "normals.out"]
    den = load_hub_denoiser(str(folder), cache_embeds=False)
    inject_adapter(den.model, layers_to_adapt(den.model), 3, 2)
    enable_joint_attention(den.model)
    path = save_adapter(
        den.model,
        tmp_path / "j.safetensors",
        team,
        base_model=str(folder),
        title="joint",
        profile="FLUX2",
        architecture=str(folder),
        attn_allow="100;011;011",
    )
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata(), set(f.keys())
    assert meta["teamwork.profile"] == "FLUX2_PLUSATTN" and meta["teamwork.teammate_image_ids"] == "0,10,20"
    assert {"transformer_blocks.0.attn.adapter", "single_transformer_blocks.0.adapter"} <= keys  # the markers
    assert meta["modelspec.architecture"] == f"{folder}/teamwork"
    other = load_hub_denoiser(str(folder), cache_embeds=False)
    _, info = load_adapter(other.model, path)
    assert info.joint and joint_attention_layers(other.model) == [
        "transformer_blocks.0.attn",
        "single_transformer_blocks.0",
    ]
    proc = attention_module(other.model.single_transformer_blocks[0]).processor
    assert proc.image_ids == [0, 10, 20] and proc.allow.int().tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    import json

    from teamwork_cli.cli.app import main

    assert main(["info", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["profile"] == "FLUX2_PLUSATTN" and shown["joint_attention"] and shown["joint_attention_modules"] == 2
    assert shown["teammate_image_ids"] == [0, 10, 20] and shown["attn_allow"] == "100;011;011"
