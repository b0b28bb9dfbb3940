"""The team sampler: per-image generators, held regions noised in each scheduler's own form, and the sampler
reproducing diffusers' own pipelines."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.adapters.model import inject_adapter
from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.testing import save_tiny_pipeline
from teamwork_cli.pipelines.sampling import sample_team


def test_one_generator_per_image_keeps_single_image_results(pipe32, photos):
    """A list of one generator draws the same noise as that generator alone: seeds give what they gave before."""
    from teamwork_cli.pipelines.sampling import sample_team

    x = {"image.in": photos(1) * 2 - 1, "halfway.in": torch.zeros(1, 3, 32, 40)}
    runs = [
        sample_team(pipe32.denoiser, pipe32.layout, x, steps=2, generator=g)["normals.out"]
        for g in (torch.Generator().manual_seed(2), [torch.Generator().manual_seed(2)])
    ]
    assert torch.equal(*runs)


@pytest.mark.usefixtures("offline")
def test_held_regions_are_noised_in_each_schedulers_own_form(tmp_path):
    """Known regions (inpainting's held context) enter Euler latents as x0 + sigma eps, flow ones as a blend."""
    from teamwork_cli.models.embedded import EmbeddedDenoiser
    from teamwork_cli.pipelines.sampling import _noised

    x0, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    den = load_hub_denoiser(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")))  # EulerDiscreteScheduler
    timesteps = den.set_timesteps(4, x0)
    sigma = den.scheduler.sigmas[1]
    torch.testing.assert_close(_noised(den, x0, eps, timesteps[1]), x0 + sigma * eps)
    flow = EmbeddedDenoiser.from_config(
        {
            "block_out_channels": (8, 8),
            "layers_per_block": 1,
            "norm_num_groups": 4,
            "down_block_types": ("DownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "UpBlock2D"),
        }
    )
    s = flow.set_timesteps(4, x0)[1] / 1000
    torch.testing.assert_close(_noised(flow, x0, eps, flow.scheduler.timesteps[1]), (1 - s) * x0 + s * eps)


@pytest.mark.usefixtures("offline")
def test_sampler_matches_diffusers_pipeline(hub_team):
    """With a no-op adapter and no inputs, the team sampler is the diffusers pipeline (no CFG)."""
    import diffusers

    family, folder, _ = hub_team
    # SDXL: diffusers' own size conditioning here (the published one is 8x larger, see models/hub/unet.py).
    options = {"micro_conditioning": "diffusers"} if family == "sdxl" else {}
    den = load_hub_denoiser(str(folder), cache_embeds=False, **options)
    inject_adapter(den.model, None, 1, 2)  # zero `up`: exactly the base model
    g = torch.Generator().manual_seed(3)
    ours = sample_team(
        den, TeamLayout.from_names(["image.out"]), {}, size=(32, 32), num_images=1, steps=2, generator=g
    )["image.out"]
    noise = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(3))
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = type(den.scheduler).from_config(den.scheduler.config)  # the loader's estimation scheduler
    kw = dict(prompt="", height=32, width=32, num_inference_steps=2, output_type="pt")
    if family == "flux":
        from teamwork_cli.models.hub.flux import pack

        kw.update(latents=pack(noise), guidance_scale=den.guidance)
    elif family == "flux2":
        # Flux2KleinPipeline also normalises the 2x2-patchified latents by the VAE's batch-norm statistics, which
        # the reference implementation (and so this backbone) does not: with statistics that are exactly the
        # identity the two agree.
        pipe.vae.bn.running_mean.zero_()
        pipe.vae.bn.running_var.fill_(1 - pipe.vae.config.batch_norm_eps)
        kw.update(latents=pipe._patchify_latents(noise), guidance_scale=1.0)
    elif family == "zimage":
        # The reference's schedule (sigma_min 0, the scheduler's spacing), which ZImagePipeline takes as sigmas.
        kw.update(latents=noise, guidance_scale=1.0, sigmas=(den.scheduler.sigmas[:-1]).tolist())
    else:
        kw.update(latents=noise, guidance_scale=1.0)
    with torch.no_grad():
        ref = pipe(**kw).images
    torch.testing.assert_close((ours / 2 + 0.5).clamp(0, 1), ref, atol=1e-4, rtol=0)
