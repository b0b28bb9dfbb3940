"""FLUX.1 (MMDiT with single-stream blocks, rectified flow; Black Forest Labs 2024)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from torch import Tensor

from teamwork_cli.models.hub.base import HubDenoiser

# FluxPipeline's default guidance_scale, fed to FLUX.1-dev's guidance embedding; the reference implementation
# (samsartor/teamwork, pipeline_flux.py) also trained and sampled the published checkpoint with 3.5.
DEFAULT_GUIDANCE = 3.5


class FluxDenoiser(HubDenoiser):
    """Latents stay [rows, C, h, w] for the scheduler; 2x2 packing into tokens happens inside `predict`."""

    family = "flux"
    prediction_type = "flow"

    def __init__(self, *args, guidance: float = DEFAULT_GUIDANCE, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.guidance = guidance

    @property
    def pixel_multiple(self) -> int:
        return self.vae_scale_factor * 2  # 2x2 latent packing

    def set_timesteps(self, steps: int, latents: Tensor) -> Tensor:
        # As FluxPipeline.__call__: sigmas 1 .. 1/steps, shifted by mu, which grows with the image's token count.
        # (The reference implementation takes image_seq_len from an unpacked latent's channel count, a smaller
        # shift; with one step the only sigma is 1 and both agree.)
        cfg = self.scheduler.config
        sigmas = None if cfg.get("use_flow_sigmas") else np.linspace(1.0, 1 / steps, steps)
        seq = (latents.shape[-2] // 2) * (latents.shape[-1] // 2)
        mu = calculate_shift(
            seq,
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        if sigmas is None:
            self.scheduler.set_timesteps(steps, device=latents.device, mu=mu)
        else:
            self.scheduler.set_timesteps(sigmas=sigmas, device=latents.device, mu=mu)
        return self.scheduler.timesteps

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        n, c, h, w = sample.shape
        tokens = pack(sample)
        # Image ids: (0, row, column) of each 2x2 patch, as FluxPipeline._prepare_latent_image_ids.
        ids = torch.zeros(h // 2, w // 2, 3, device=sample.device)
        ids[..., 1] += torch.arange(h // 2, device=sample.device)[:, None]
        ids[..., 2] += torch.arange(w // 2, device=sample.device)[None, :]
        guidance = None
        if self.model.config.guidance_embeds:
            guidance = torch.full((n,), self.guidance, device=sample.device, dtype=torch.float32)
        out = self.model(
            hidden_states=tokens,
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=self.rows("pooled_prompt_embeds", n),
            encoder_hidden_states=self.rows("prompt_embeds", n),
            txt_ids=self.text_ids,
            img_ids=ids.view(-1, 3).to(sample.dtype),
        ).sample
        return unpack(out, h, w)


def pack(latents: Tensor) -> Tensor:
    """[n, C, h, w] -> [n, h/2 * w/2, 4C] tokens of 2x2 latent patches (FluxPipeline's layout)."""
    n, c, h, w = latents.shape
    return latents.view(n, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(n, (h // 2) * (w // 2), c * 4)


def unpack(tokens: Tensor, h: int, w: int) -> Tensor:
    n, _, d = tokens.shape
    c = d // 4
    return tokens.view(n, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def encode_prompt(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """CLIP-L pooled + T5 sequence embeddings via FluxPipeline.encode_prompt (512 T5 tokens, its default)."""
    embeds, pooled, text_ids = pipe.encode_prompt(prompt, prompt_2=None, device=device)
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled, "text_ids": text_ids}


def build(
    model, scheduler, vae, embeds: dict[str, Tensor], *, guidance: float = DEFAULT_GUIDANCE, **options
) -> FluxDenoiser:
    return FluxDenoiser(model, scheduler, vae, embeds, guidance=guidance, **options)
