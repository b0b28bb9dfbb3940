"""Denoisers: a diffusers model, the codec between pixels and its sample space, and its training target.

A `TeamDenoiser` hides what differs between backbones (latent codec, conditioning, prediction type) from the
team sampler and the trainer.  Rows are the teammate-major rows of a `TeamBatch` (see core/team.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from teamwork_cli.adapters.model import team_context
from teamwork_cli.core.team import TeamBatch


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype `model` computes in: that of its first floating-point parameter.  A GGUF-quantized model's
    quantized weights are uint8 blocks (models/hub/gguf.py), so the first parameter may not tell; its other
    parameters (norms, biases) are in the compute dtype, which is the answer for a model with no float at all."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    compute = getattr(getattr(model, "hf_quantizer", None), "compute_dtype", None)
    return compute if isinstance(compute, torch.dtype) else torch.float32


class TeamDenoiser(nn.Module, ABC):
    """Base class. Subclasses set `model`, `scheduler`, and override the codec and conditioning."""

    prediction_type: str = "flow"  # "flow" (rectified flow, SD3/Flux), "epsilon" or "v_prediction"
    # How channels were encoded for the model in training: "teamwork" (file encodings, docs/conventions.md section 1)
    # or "published" (plain 2.2 gamma colours and raw halfway vectors, section 6); see core.encoding.to_convention.
    input_convention: str = "teamwork"

    def __init__(self, model: nn.Module, scheduler) -> None:
        super().__init__()
        self.model = model
        self.scheduler = scheduler

    # -- codec: pixels in [-1, 1] <-> the model's sample space
    def encode(self, pixels: Tensor) -> Tensor:
        return pixels

    def decode(self, latents: Tensor) -> Tensor:
        return latents

    @property
    def pixel_multiple(self) -> int:
        """Image sides must be multiples of this."""
        return 8

    # -- schedule
    @property
    def num_train_timesteps(self) -> int:
        """The schedule's length in timestep units (flow models: timestep = sigma * this)."""
        return int(self.scheduler.config.num_train_timesteps)

    def set_timesteps(self, steps: int, latents: Tensor) -> Tensor:
        self.scheduler.set_timesteps(steps, device=latents.device)
        return self.scheduler.timesteps

    def draw_timesteps(
        self, n: int, generator: torch.Generator | None = None, device=None, logit_mean: float = 0.0
    ) -> Tensor:
        """Random training times in the model's timestep units, one per image.

        Flow models draw sigma from logit-normal(logit_mean, 1) (Esser et al. 2024, "Scaling Rectified Flow
        Transformers", section 3.1); a positive mean favours high noise, where an estimation task's inputs carry
        the most information about the outputs.
        """
        steps = self.num_train_timesteps
        if self.prediction_type == "flow":
            u = torch.randn(n, generator=generator) + logit_mean
            return (torch.sigmoid(u) * steps).to(device)
        return torch.randint(0, steps, (n,), generator=generator).to(device)

    def add_noise(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        if self.prediction_type == "flow":  # x_t = (1 - sigma) x0 + sigma eps (rectified flow)
            sigma = self._sigma(t, x0)
            return (1 - sigma) * x0 + sigma * eps
        return self.scheduler.add_noise(x0, eps, t.long())

    def target(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        if self.prediction_type == "flow":
            return eps - x0
        if self.prediction_type == "epsilon":
            return eps
        return self.scheduler.get_velocity(x0, eps, t.long())

    def x0_from(self, pred: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The clean sample implied by a prediction at x_t: x_t - sigma v (flow); (x_t - sqrt(1 - abar) eps) /
        sqrt(abar) (epsilon); sqrt(abar) x_t - sqrt(1 - abar) v (v-prediction; Salimans & Ho 2022, section 4)."""
        if self.prediction_type == "flow":
            return x_t - self._sigma(t, x_t) * pred
        abar = self.scheduler.alphas_cumprod.to(x_t.device)[t.long()].to(x_t.dtype).view(-1, *[1] * (x_t.ndim - 1))
        if self.prediction_type == "epsilon":
            return (x_t - (1 - abar).sqrt() * pred) / abar.sqrt().clamp_min(1e-4)
        return abar.sqrt() * x_t - (1 - abar).sqrt() * pred

    def one_step_timestep(self) -> int:
        """The timestep of one-step estimation: the last of training, where x_t holds no signal (with the noise
        replaced by its mean, zero: Garcia et al. 2025, "Fine-Tuning Image-Conditional Diffusion Models is Easier
        than You Think", section 4). Flow models' timesteps are sigma * num_train_timesteps, so sigma = 1."""
        n = self.num_train_timesteps
        return n if self.prediction_type == "flow" else n - 1

    def _sigma(self, t: Tensor, like: Tensor) -> Tensor:
        sigma = t.to(like.dtype) / self.num_train_timesteps
        return sigma.view(-1, *([1] * (like.ndim - 1)))

    # -- forward
    def forward(self, sample: Tensor, timesteps: Tensor, batch: TeamBatch | None = None, **cond) -> Tensor:
        if batch is None:
            return self.predict(sample, timesteps, **cond)
        with team_context(self.model, batch):
            return self.predict(sample, timesteps, **cond)

    @abstractmethod
    def predict(self, sample: Tensor, timesteps: Tensor, **cond) -> Tensor:
        """The model's raw prediction for sample rows at per-row timesteps."""


class PatchCodec:
    """Lossless 'latent space' of the embedded model: p x p pixel patches stacked as channels.

    Like Flux's 2x2 latent packing but on pixels: it divides the spatial cost of the UNet by p^2 and, unlike a
    VAE, keeps every fine detail (it is exactly invertible).
    """

    def __init__(self, patch: int) -> None:
        self.patch = patch

    def encode(self, pixels: Tensor) -> Tensor:
        return F.pixel_unshuffle(pixels, self.patch)

    def decode(self, latents: Tensor) -> Tensor:
        return F.pixel_shuffle(latents, self.patch)
