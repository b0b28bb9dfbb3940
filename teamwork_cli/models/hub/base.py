"""`HubDenoiser`: what the diffusers backbones share (VAE codec, cached prompt embeddings, input convention)."""

from __future__ import annotations

from diffusers import AutoencoderKL
from torch import Tensor, nn

from teamwork_cli.models.denoiser import TeamDenoiser, model_dtype
from teamwork_cli.models.hub.vae import VaeCodec


class HubDenoiser(TeamDenoiser):
    """A diffusers denoiser with its VAE and the prompt embeddings computed once at load (text encoders freed).

    Every teammate gets the same prompt (docs/conventions.md section 6), so the embeddings are one row, expanded
    (not copied) to the batch rows at each forward.
    """

    family: str = ""
    # The published checkpoints were trained on plain-gamma colours and raw halfway vectors (docs/conventions.md 6).
    input_convention: str = "published"

    def __init__(
        self,
        model: nn.Module,
        scheduler,
        vae: AutoencoderKL,
        embeds: dict[str, Tensor],
        *,
        vae_tiling: bool = True,
        vae_slicing: bool = False,
    ) -> None:
        super().__init__(model, scheduler)
        self.codec = VaeCodec(vae, tiling=vae_tiling, slicing=vae_slicing)
        self.vae = self.codec.vae  # a submodule, so `.to(device)` moves it with the denoiser
        dtype = model_dtype(model)  # not next(parameters()): a GGUF model's first weight may be uint8 blocks
        for name, value in embeds.items():
            # Buffers follow `.to(device)`; not persistent: they are derived from the prompt, not weights.
            self.register_buffer(name, value.to(dtype), persistent=False)

    @property
    def vae_scale_factor(self) -> int:
        return self.codec.scale_factor

    def encode(self, pixels: Tensor) -> Tensor:
        return self.codec.encode(pixels)

    def decode(self, latents: Tensor) -> Tensor:
        return self.codec.decode(latents)

    def rows(self, name: str, n: int) -> Tensor:
        """Cached embedding `name` ([1, ...]) as n batch rows (a view)."""
        value: Tensor = getattr(self, name)
        return value.expand(n, *value.shape[1:])
