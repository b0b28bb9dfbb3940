"""Z-Image (single-stream DiT over caption and image tokens, rectified flow; Tongyi-MAI 2025), conditioned as the
reference implementation does it (samsartor/teamwork, pipeline_zimage.py).

- Latents: `(z - shift) * scale` of the Flux-style VAE; the transformer patchifies them itself (2x2).
- The prompt: Qwen3's second-to-last hidden states of the prompt's tokens (ZImagePipeline.encode_prompt), encoded
  once and handed to the transformer as one caption per row.
- The transformer takes time as (1000 - t) / 1000 and predicts the negated flow velocity, so its output is
  negated, as ZImagePipeline and the reference do.
- Timesteps: the scheduler's own spacing with sigma_min = 0 and ZImagePipeline's resolution shift `mu`, as the
  reference samples (diffusers' ZImagePipeline now passes its own sigma list instead).
- No classifier-free guidance: with the empty prompt (the published checkpoints' and the default) the reference's
  CFG compares the prompt with itself and changes nothing.
- Z-Image places teammates with no RoPE offsets: the reference has no joint-attention profile for it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from teamwork_cli.models.hub.base import HubDenoiser


class ZImageDenoiser(HubDenoiser):
    family = "zimage"
    prediction_type = "flow"

    @property
    def pixel_multiple(self) -> int:
        return self.vae_scale_factor * int(self.model.config.all_patch_size[0])

    def set_timesteps(self, steps: int, latents: Tensor) -> Tensor:
        from diffusers.pipelines.z_image.pipeline_z_image import calculate_shift

        cfg = self.scheduler.config
        p = int(self.model.config.all_patch_size[0])
        mu = calculate_shift(
            (latents.shape[-2] // p) * (latents.shape[-1] // p),
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        self.scheduler.sigma_min = 0.0  # the reference's schedule ends at sigma 0
        self.scheduler.set_timesteps(steps, device=latents.device, mu=mu)
        return self.scheduler.timesteps

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        n = sample.shape[0]
        caption = self.prompt_embeds[0]
        out = self.model(
            list(sample.unsqueeze(2).unbind(0)),  # one [C, frames=1, h, w] latent per row
            (1000 - timesteps) / 1000,
            [caption] * n,
            return_dict=False,
        )[0]
        return -torch.stack(out, 0).squeeze(2).to(sample.dtype)


def encode_prompt(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """Qwen3's second-to-last hidden states of the prompt's (unpadded) tokens, as [1, tokens, width]."""
    embeds, _ = pipe.encode_prompt(prompt, device=device, do_classifier_free_guidance=False)
    return {"prompt_embeds": embeds[0][None]}


def build(model, scheduler, vae, embeds: dict[str, Tensor], **options) -> ZImageDenoiser:
    return ZImageDenoiser(model, scheduler, vae, embeds, **options)
