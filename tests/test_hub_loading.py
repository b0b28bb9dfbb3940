"""Loading diffusers pipelines: clear offline/unsupported errors, cached prompt embeddings, adapter resolution,
and the published checkpoints' input convention (conventions.md section 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_png

from teamwork_cli.cli.app import main
from teamwork_cli.core import encoding
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub import load_hub_denoiser, resolve_adapter
from teamwork_cli.models.hub.testing import save_tiny_pipeline


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sd2_folder(tmp_path_factory):
    return save_tiny_pipeline("sd2", tmp_path_factory.mktemp("sd2") / "base")


def test_offline_hub_id_gives_one_clear_error(tmp_path, tiny_svbrdf_adapter, capsys):
    photo = write_png(tmp_path / "p.png", np.zeros((16, 16, 3)))
    code = main(["svbrdf", str(photo), "-o", str(tmp_path / "o"), "--adapter", str(tiny_svbrdf_adapter),
                 "--base", "stabilityai/stable-diffusion-3-medium-diffusers"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("Error: base model stabilityai/stable-diffusion-3-medium-diffusers is not in the "
                               "Hugging Face cache and HF_HUB_OFFLINE=1")
    assert lines[1].startswith("Hint:") and "hf download stabilityai/stable-diffusion-3-medium-diffusers" in lines[1]
    assert "unset HF_HUB_OFFLINE" in lines[1]


def test_unknown_pipeline_lists_supported(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(TeamworkError) as e:
        load_hub_denoiser(str(tmp_path))
    assert "KandinskyPipeline" in str(e.value)
    for name in ("StableDiffusion3Pipeline", "StableDiffusionXLPipeline", "StableDiffusionPipeline", "FluxPipeline"):
        assert name in str(e.value)


def test_bad_base_paths(tmp_path):
    with pytest.raises(TeamworkError, match="no model_index.json"):
        load_hub_denoiser(str(tmp_path))
    with pytest.raises(TeamworkError, match="no such folder"):
        load_hub_denoiser(str(tmp_path / "missing" / "folder"))


def test_prompt_embeddings_cached_and_text_encoders_not_loaded_again(monkeypatch, sd2_folder):
    from teamwork_cli.models.hub import loading

    loads = []
    real = loading._from_pretrained
    monkeypatch.setattr(loading, "_from_pretrained", lambda *a, **kw: loads.append(kw) or real(*a, **kw))
    first = load_hub_denoiser(str(sd2_folder))
    assert first.prompt_embeds.shape == (1, 77, 16)
    assert not any(n.startswith("text_encoder") for n, _ in first.named_modules())
    assert [kw.get("text_encoder", "loaded") for kw in loads] == ["loaded", None]  # text pass, then the rest
    loads.clear()
    second = load_hub_denoiser(str(sd2_folder))
    assert [kw.get("text_encoder", "loaded") for kw in loads] == [None]  # from the disk cache
    torch.testing.assert_close(second.prompt_embeds, first.prompt_embeds)
    other = load_hub_denoiser(str(sd2_folder), prompt="a brick wall", cache_embeds=False)
    assert not torch.equal(other.prompt_embeds, first.prompt_embeds)


def test_options_are_checked(sd2_folder):
    with pytest.raises(ValueError, match="guidance.*allowed: timestep_spacing"):
        load_hub_denoiser(str(sd2_folder), guidance=2.0)
    den = load_hub_denoiser(str(sd2_folder), timestep_spacing=None)
    assert type(den.scheduler).__name__ == "DDIMScheduler"  # PNDM's step takes no generator
    assert den.scheduler.config.timestep_spacing == "leading"


def test_resolve_adapter(tmp_path, tiny_svbrdf_adapter):
    assert resolve_adapter(str(tiny_svbrdf_adapter)) == tiny_svbrdf_adapter
    local = tmp_path / "samsartor" / "teamwork-release" / "x.safetensors"  # a local path wins over the hub
    local.parent.mkdir(parents=True)
    local.write_bytes(b"")
    assert resolve_adapter(str(local)) == local
    with pytest.raises(TeamworkError) as e:
        resolve_adapter("samsartor/teamwork-release/colocated_svbrdf_estimation_flux_512.safetensors")
    assert "HF_HUB_OFFLINE=1" in str(e.value)
    assert "hf download samsartor/teamwork-release colocated_svbrdf_estimation_flux_512.safetensors" in e.value.hint
    with pytest.raises(TeamworkError, match="not found"):
        resolve_adapter(str(tmp_path / "none.safetensors"))


def test_published_convention_values():
    srgb = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    gamma = encoding.to_convention("image", srgb, "published")
    torch.testing.assert_close(gamma ** 2.2, encoding.srgb_to_linear(srgb))
    torch.testing.assert_close(encoding.from_convention("diffuse", gamma, "published"), srgb)
    h = torch.tensor([[[[-0.25]], [[0.1]], [[0.96]]]])  # a raw half vector, stored as (h + 1) / 2
    model_in = encoding.to_model(encoding.to_convention("halfway", (h + 1) / 2, "published"))
    torch.testing.assert_close(model_in, 2 * h - 1)  # what the published checkpoints saw
    torch.testing.assert_close(encoding.to_convention("normals", srgb, "published"), srgb)
    assert encoding.to_convention("image", srgb, "teamwork") is srgb
    with pytest.raises(ValueError, match="teamwork, published"):
        encoding.to_convention("image", srgb, "srgb")


def test_pipeline_feeds_the_denoisers_convention(monkeypatch, sd2_folder, tmp_path):
    """TeamPipeline hands a hub denoiser gamma images and 2h-1 halfway maps, and maps outputs back."""
    from teamwork_cli.adapters.checkpoint import save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.pipelines import team_pipeline as P

    den = load_hub_denoiser(str(sd2_folder))
    inject_adapter(den.model, None, 3, 2)
    path = save_adapter(den.model, tmp_path / "a.safetensors", ["image.in", "halfway.in", "diffuse.out"],
                        base_model=str(sd2_folder), title="t", profile="UNET", architecture="sd2")
    seen = {}

    def fake_sample(denoiser, layout, inputs, **kw):
        seen.update(inputs)
        return {"diffuse.out": inputs["image.in"]}  # echo: the output path must invert the input path

    monkeypatch.setattr(P, "sample_team", fake_sample)
    pipe = P.TeamPipeline.load(path, base=str(sd2_folder), device="cpu")
    photo = torch.rand(1, 3, 16, 16)
    hv = torch.rand(1, 3, 16, 16)
    out = pipe({"image.in": photo, "halfway.in": hv}, steps=1)
    torch.testing.assert_close(seen["image.in"], encoding.to_convention("image", photo, "published") * 2 - 1)
    torch.testing.assert_close(seen["halfway.in"], (hv * 2 - 1) * 2 - 1)
    torch.testing.assert_close(out["diffuse.out"], photo, atol=1e-5, rtol=0)


def test_sdxl_published_size_conditioning(tmp_path):
    den = load_hub_denoiser(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")))
    ids = den.added_cond(torch.zeros(2, 4, 16, 24))["time_ids"]  # 32 x 48 px with the tiny VAE (factor 2)
    assert ids.tolist() == [[64.0, 96.0, 0.0, 0.0, 64.0, 96.0]] * 2  # pixel size times the VAE factor
    assert den.scheduler.config.timestep_spacing == "trailing"


def test_fp16_vae_flagged_force_upcast_runs_in_fp32():
    from teamwork_cli.models.hub.testing import _vae
    from teamwork_cli.models.hub.vae import VaeCodec

    codec = VaeCodec(_vae(4, flow=False).half(), tiling=False)  # AutoencoderKL defaults to force_upcast=True
    assert codec.upcast and next(codec.vae.parameters()).dtype == torch.float32
    pixels = torch.rand(2, 3, 16, 16, dtype=torch.float16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the pipeline's autocast must not reach the VAE
        z = codec.encode(pixels)
        x = codec.decode(z)
    assert z.dtype == x.dtype == torch.float16 and z.shape == (2, 4, 8, 8) and torch.isfinite(x).all()


def test_adapter_for_another_base_names_both(tmp_path, sd2_folder, tiny_svbrdf_adapter, capsys):
    """An embedded-model adapter on an SD2 base: one error naming the base's class and the adapter's base."""
    photo = write_png(tmp_path / "p.png", np.full((32, 32, 3), 0.5))
    code = main(["svbrdf", str(photo), "-o", str(tmp_path / "o"), "--adapter", str(tiny_svbrdf_adapter),
                 "--base", str(sd2_folder), "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "UNet2DConditionModel" in err and "tinybase" in err


def test_held_regions_are_noised_in_each_schedulers_own_form(tmp_path):
    """Known regions (inpainting's held context) enter Euler latents as x0 + sigma eps, flow ones as a blend."""
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.pipelines.sampling import _noised

    x0, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    den = load_hub_denoiser(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")))  # EulerDiscreteScheduler
    timesteps = den.set_timesteps(4, x0)
    sigma = den.scheduler.sigmas[1]
    torch.testing.assert_close(_noised(den, x0, eps, timesteps[1]), x0 + sigma * eps)
    flow = EmbeddedDenoiser.from_config({"block_out_channels": (8, 8), "layers_per_block": 1, "norm_num_groups": 4,
                                         "down_block_types": ("DownBlock2D", "DownBlock2D"),
                                         "up_block_types": ("UpBlock2D", "UpBlock2D")})
    s = flow.set_timesteps(4, x0)[1] / 1000
    torch.testing.assert_close(_noised(flow, x0, eps, flow.scheduler.timesteps[1]), (1 - s) * x0 + s * eps)
