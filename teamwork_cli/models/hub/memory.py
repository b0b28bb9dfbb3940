"""CPU offload for GPUs too small for a backbone: the weights rest in CPU memory and visit the GPU as they run.

The denoiser uses diffusers' block-level group offloading: each block of the UNet or transformer (adapter
layers included, they live inside the blocks) moves to the GPU for its own forward and back after it, so the
GPU holds one block at a time.  That costs one host-to-device copy of the model per step, which is affordable
here because estimation tasks sample with 1 to 4 steps.  The VAE moves as a whole, only while it encodes or
decodes.
"""

from __future__ import annotations

import torch

from teamwork_cli.models.hub.base import HubDenoiser

CPU = torch.device("cpu")


def enable_offload(den: HubDenoiser, device: torch.device) -> None:
    """Run `den` on `device` with its weights kept on the CPU (call once, instead of `den.to(device)`)."""
    den.to(CPU)
    den.model.enable_group_offload(
        onload_device=device, offload_device=CPU, offload_type="block_level", num_blocks_per_group=1
    )
    den.codec.offload_to = device
    # The cached prompt embeddings are small: they live on the device, as the sampler's tensors do.
    for name, buf in list(den.named_buffers(recurse=False)):
        setattr(den, name, buf.to(device))
    den.execution_device = device
