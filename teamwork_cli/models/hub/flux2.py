"""FLUX.2 [klein] (MMDiT with shared modulation and parallel single-stream blocks, rectified flow; Black Forest Labs
2025), conditioned as the reference implementation does it (samsartor/teamwork, pipeline_flux2_klein.py).

- Latents are the FLUX.2 VAE's own, `(z - shift) * scale` with the VAE config's factors where it has them (the
  FLUX.2 VAE has none, so raw latents), packed into 2x2 patch tokens exactly like FLUX.1's (`flux.pack`).  This is
  the reference's encoding, not diffusers' Flux2KleinPipeline, which also normalises the packed latents by the VAE's
  batch-norm statistics: adapters trained by the reference saw the un-normalised latents.
- The prompt is Qwen3's hidden states of layers 9, 18 and 27 (Flux2KleinPipeline.encode_prompt), encoded once.
- Image ids (T, H, W, L) = (0, row, column, 0) of each patch, as Flux2KleinPipeline._prepare_latent_ids; under
  joint attention each teammate's tokens are placed at T + its `teamwork.teammate_image_ids` offset (default 0, 10,
  20, ..., klein's reference-image layout), which models/joint_processors.py applies inside the attention.
- klein is guidance-distilled (`guidance_embeds` false): no guidance input, no classifier-free guidance.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from teamwork_cli.models.hub.base import HubDenoiser
from teamwork_cli.models.hub.flux import pack, unpack


class Flux2Denoiser(HubDenoiser):
    """Latents stay [rows, C, h, w] for the scheduler; 2x2 packing into tokens happens inside `predict`."""

    family = "flux2"
    prediction_type = "flow"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Text ids run to 511 along L: kept in float32 (bf16 would round them), as FLUX.2's position embedding reads
        # them in float32 anyway.
        self.register_buffer("text_ids", self.text_ids.float(), persistent=False)

    @property
    def pixel_multiple(self) -> int:
        return self.vae_scale_factor * 2  # 2x2 latent packing

    def set_timesteps(self, steps: int, latents: Tensor) -> Tensor:
        from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

        # As Flux2KleinPipeline.__call__: sigmas 1 .. 1/steps, shifted by FLUX.2's empirical mu of the token count
        # and the step count.  (The reference passes an unpacked latent's channel count as the token count, a
        # smaller shift; with one step the only sigma is 1 and both agree.)
        sigmas = None if self.scheduler.config.get("use_flow_sigmas") else np.linspace(1.0, 1 / steps, steps)
        seq = (latents.shape[-2] // 2) * (latents.shape[-1] // 2)
        mu = compute_empirical_mu(image_seq_len=seq, num_steps=steps)
        if sigmas is None:
            self.scheduler.set_timesteps(steps, device=latents.device, mu=mu)
        else:
            self.scheduler.set_timesteps(sigmas=sigmas, device=latents.device, mu=mu)
        return self.scheduler.timesteps

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        n, c, h, w = sample.shape
        out = self.model(
            hidden_states=pack(sample),
            timestep=timesteps / 1000,
            guidance=None,
            encoder_hidden_states=self.rows("prompt_embeds", n),
            txt_ids=self.text_ids[0].float(),
            img_ids=latent_ids(h // 2, w // 2, sample.device),
        ).sample
        return unpack(out, h, w)


def latent_ids(rows: int, cols: int, device: torch.device) -> Tensor:
    """[rows * cols, 4] ids (T, H, W, L) = (0, row, column, 0), row-major; float32 keeps large grids exact."""
    ids = torch.zeros(rows, cols, 4, device=device)
    ids[..., 1] = torch.arange(rows, device=device)[:, None]
    ids[..., 2] = torch.arange(cols, device=device)[None, :]
    return ids.view(-1, 4)


def encode_prompt(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """Qwen3 layers 9/18/27 stacked (512 tokens) and their 4-axis text ids, via Flux2KleinPipeline.encode_prompt."""
    embeds, text_ids = pipe.encode_prompt(prompt, device=device, num_images_per_prompt=1)
    return {"prompt_embeds": embeds, "text_ids": text_ids.float()}


def build(model, scheduler, vae, embeds: dict[str, Tensor], **options) -> Flux2Denoiser:
    return Flux2Denoiser(model, scheduler, vae, embeds, **options)
