"""The VAE codec shared by the latent backbones: pixels in [-1, 1] <-> the denoiser's latents.

Latents are normalised as each pipeline does before its denoiser: SD3, Flux and Z-Image `(z - shift) * scale`
(their VAEs have a `shift_factor`), SD2 and SDXL `z * scale`, FLUX.2 not at all (its VAE has neither factor; the
reference implementation uses its latents as they come).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from diffusers import AutoencoderKL
from torch import Tensor


class VaeCodec:
    """Encodes a whole batch of teammates at once; decodes only what it is given (the output teammates)."""

    def __init__(self, vae: AutoencoderKL, *, tiling: bool = True, slicing: bool = False) -> None:
        cfg = vae.config
        # The SDXL VAE overflows to NaN in fp16; diffusers flags such VAEs `force_upcast` and runs them in fp32.
        # Ours stays in fp32 for good (the VAE is small next to the denoiser) and is kept out of autocast.
        self.upcast = next(vae.parameters()).dtype == torch.float16 and bool(getattr(cfg, "force_upcast", False))
        self.vae = vae.to(torch.float32) if self.upcast else vae
        # The FLUX.2 VAE records neither factor: its latents are used as they come (1 and 0), as the reference does.
        self.scale = float(cfg.get("scaling_factor") or 1.0)
        self.shift = float(cfg.get("shift_factor") or 0.0)
        # Tiling only acts on images larger than the VAE's own sample_size (diffusers checks), so it costs nothing
        # at the trained resolution and keeps the memory of a 4K decode bounded.
        if tiling:
            vae.enable_tiling()
        if slicing:
            vae.enable_slicing()
        # Set by hub.memory.enable_offload: the VAE rests on the CPU and visits this device to encode or decode.
        self.offload_to: torch.device | None = None

    @property
    def scale_factor(self) -> int:
        """Pixels per latent cell along each side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def _context(self, device: torch.device) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        if self.offload_to is not None:
            stack.enter_context(self._visit(self.offload_to))
        if self.upcast and torch.is_autocast_enabled(device.type):
            stack.enter_context(torch.autocast(device.type, enabled=False))
        return stack

    @contextlib.contextmanager
    def _visit(self, device: torch.device) -> Iterator[None]:
        self.vae.to(device)
        try:
            yield
        finally:
            self.vae.to("cpu")

    def encode(self, pixels: Tensor) -> Tensor:
        vae_dtype = next(self.vae.parameters()).dtype
        with self._context(pixels.device):
            # The mode of the posterior: a conditioning input should not carry VAE sampling noise.
            z = self.vae.encode(pixels.to(vae_dtype)).latent_dist.mode()
        return ((z - self.shift) * self.scale).to(pixels.dtype)

    def decode(self, latents: Tensor) -> Tensor:
        vae_dtype = next(self.vae.parameters()).dtype
        with self._context(latents.device):
            x = self.vae.decode((latents.to(vae_dtype) / self.scale) + self.shift).sample
        return x.to(latents.dtype)
