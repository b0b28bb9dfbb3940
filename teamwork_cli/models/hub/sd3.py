"""Stable Diffusion 3 (MMDiT, rectified flow; Esser et al. 2024, arXiv 2403.03206)."""

from __future__ import annotations

import torch
from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift
from torch import Tensor

from teamwork_cli.models.hub.base import HubDenoiser


class SD3Denoiser(HubDenoiser):
    family = "sd3"
    prediction_type = "flow"

    @property
    def pixel_multiple(self) -> int:
        return self.vae_scale_factor * int(self.model.config.patch_size)

    def set_timesteps(self, steps: int, latents: Tensor) -> Tensor:
        kw = {}
        cfg = self.scheduler.config
        if cfg.get("use_dynamic_shifting"):  # SD3.5-style resolution shift, as StableDiffusion3Pipeline does
            p = int(self.model.config.patch_size)
            seq = (latents.shape[-2] // p) * (latents.shape[-1] // p)
            kw["mu"] = calculate_shift(
                seq,
                cfg.get("base_image_seq_len", 256),
                cfg.get("max_image_seq_len", 4096),
                cfg.get("base_shift", 0.5),
                cfg.get("max_shift", 1.16),
            )
        self.scheduler.set_timesteps(steps, device=latents.device, **kw)
        return self.scheduler.timesteps

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        n = sample.shape[0]
        return self.model(
            hidden_states=sample,
            timestep=timesteps,
            encoder_hidden_states=self.rows("prompt_embeds", n),
            pooled_projections=self.rows("pooled_prompt_embeds", n),
        ).sample


def encode_prompt(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """CLIP-L + CLIP-G + T5 embeddings via the pipeline's own `encode_prompt` (same truncation and padding)."""
    embeds, _, pooled, _ = pipe.encode_prompt(prompt, None, None, device=device, do_classifier_free_guidance=False)
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def build(model, scheduler, vae, embeds: dict[str, Tensor], **options) -> SD3Denoiser:
    return SD3Denoiser(model, scheduler, vae, embeds, **options)
