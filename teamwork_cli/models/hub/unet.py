"""Stable Diffusion 2 and SDXL: latent UNets trained for epsilon or v prediction (Rombach et al. 2022;
Podell et al. 2023, arXiv 2307.01952)."""

from __future__ import annotations

import inspect

import torch
from diffusers import DDIMScheduler
from torch import Tensor

from teamwork_cli.models.hub.base import HubDenoiser


def estimation_scheduler(scheduler, timestep_spacing: str | None = "trailing"):
    """The pipeline's scheduler, made fit for few-step estimation.

    - "trailing" timestep spacing: with the configs' "leading" spacing one step lands at t = 1, almost no noise,
      and the sample stays noise; trailing starts at t = T - 1 (Lin et al. 2024, arXiv 2305.08891, table 2;
      Garcia et al. 2024, arXiv 2409.11355, for exactly this problem in single-step estimation).
    - A scheduler whose `step` takes no generator (PNDM, LMS) is replaced by DDIM with the same betas and
      prediction type: PNDM's multistep warm-up does not reach x0 in one step.
    """
    cls = type(scheduler)
    if "generator" not in inspect.signature(scheduler.step).parameters:
        cls = DDIMScheduler
    overrides = {}
    if timestep_spacing is not None and "timestep_spacing" in scheduler.config:
        overrides["timestep_spacing"] = timestep_spacing
    if cls is type(scheduler) and not overrides:
        return scheduler
    return cls.from_config(scheduler.config, **overrides)


class UNetDenoiser(HubDenoiser):
    """SD2 (and SD1.x): CLIP hidden states as cross-attention context; epsilon or v prediction from the scheduler."""

    family = "sd2"

    def __init__(self, model, scheduler, vae, embeds: dict[str, Tensor], **options) -> None:
        super().__init__(model, scheduler, vae, embeds, **options)
        pred = scheduler.config.prediction_type
        if pred not in ("epsilon", "v_prediction"):
            raise ValueError(f"scheduler prediction_type must be 'epsilon' or 'v_prediction', got {pred!r}")
        self.prediction_type = pred

    @property
    def pixel_multiple(self) -> int:
        # One halving per UNet level after the first: sides divisible by this need no upsampling fix-ups.
        return self.vae_scale_factor * 2 ** (len(self.model.config.block_out_channels) - 1)

    # Training uses the DDPM forward process directly: Euler/DDIM schedulers' add_noise only accept the
    # timesteps of their current inference schedule.
    def _alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        ab = self.scheduler.alphas_cumprod.to(like.device)[t.long().to(like.device)].to(like.dtype)
        return ab.view(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        ab = self._alpha_bar(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def target(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        if self.prediction_type == "epsilon":
            return eps
        ab = self._alpha_bar(t, x0)  # v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022)
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0

    def added_cond(self, sample: Tensor) -> dict[str, Tensor] | None:
        return None

    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        n = sample.shape[0]
        return self.model(
            sample,
            timesteps,
            encoder_hidden_states=self.rows("prompt_embeds", n),
            added_cond_kwargs=self.added_cond(sample),
        ).sample


MICRO_CONDITIONING = ("published", "diffusers")


class SDXLDenoiser(UNetDenoiser):
    family = "sdxl"

    def __init__(self, *args, micro_conditioning: str = "published", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if micro_conditioning not in MICRO_CONDITIONING:
            raise ValueError(
                f"micro_conditioning must be one of {', '.join(MICRO_CONDITIONING)}; got {micro_conditioning!r}"
            )
        self.micro_conditioning = micro_conditioning

    def added_cond(self, sample: Tensor) -> dict[str, Tensor]:
        # SDXL micro-conditioning time_ids = (orig_h, orig_w, crop_top, crop_left, target_h, target_w), crop (0, 0)
        # and original = target = the processing size.  "diffusers": that size in pixels, as
        # StableDiffusionXLPipeline does by default.  "published": the convention the published checkpoint was
        # trained and sampled with; the reference implementation (samsartor/teamwork, pipeline_sdxl.py) multiplies
        # the pixel size by the VAE factor once more, so colocated_svbrdf_estimation_sdxl_256 at 256 px saw
        # (2048, 2048, 0, 0, 2048, 2048).
        n, _, h, w = sample.shape
        scale = self.vae_scale_factor * (self.vae_scale_factor if self.micro_conditioning == "published" else 1)
        ph, pw = h * scale, w * scale
        ids = torch.tensor([ph, pw, 0, 0, ph, pw], device=sample.device, dtype=self.pooled_prompt_embeds.dtype)
        return {"text_embeds": self.rows("pooled_prompt_embeds", n), "time_ids": ids.expand(n, 6)}


def encode_prompt_sd(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """The text encoder's last hidden state, via StableDiffusionPipeline.encode_prompt."""
    embeds, _ = pipe.encode_prompt(prompt, device, 1, False)
    return {"prompt_embeds": embeds}


def encode_prompt_sdxl(pipe, prompt: str, device: torch.device) -> dict[str, Tensor]:
    """Both CLIPs' penultimate hidden states concatenated, and CLIP-G's pooled projection."""
    embeds, _, pooled, _ = pipe.encode_prompt(prompt, device=device, do_classifier_free_guidance=False)
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def build_sd(
    model, scheduler, vae, embeds: dict[str, Tensor], *, timestep_spacing: str | None = "trailing", **options
) -> UNetDenoiser:
    return UNetDenoiser(model, estimation_scheduler(scheduler, timestep_spacing), vae, embeds, **options)


def build_sdxl(
    model,
    scheduler,
    vae,
    embeds: dict[str, Tensor],
    *,
    timestep_spacing: str | None = "trailing",
    micro_conditioning: str = "published",
    **options,
) -> SDXLDenoiser:
    den = SDXLDenoiser(
        model,
        estimation_scheduler(scheduler, timestep_spacing),
        vae,
        embeds,
        micro_conditioning=micro_conditioning,
        **options,
    )
    need = model.add_embedding.linear_1.in_features
    have = model.config.addition_time_embed_dim * 6 + den.pooled_prompt_embeds.shape[-1]
    if need != have:  # the same check StableDiffusionXLPipeline._get_add_time_ids makes
        raise ValueError(
            f"UNet expects {need} added-conditioning features, text_embeds + 6 time ids give {have}; "
            "is this an SDXL base pipeline?"
        )
    return den
