"""The VAE codec of the hub backbones: precision and upcasting."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.usefixtures("offline")
def test_fp16_vae_flagged_force_upcast_runs_in_fp32():
    from teamwork_cli.models.hub.testing import _vae
    from teamwork_cli.models.hub.vae import VaeCodec

    codec = VaeCodec(_vae(4, flow=False).half(), tiling=False)  # AutoencoderKL defaults to force_upcast=True
    assert codec.upcast and next(codec.vae.parameters()).dtype == torch.float32
    pixels = torch.rand(2, 3, 16, 16, dtype=torch.float16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the pipeline's autocast must not reach the VAE
        z = codec.encode(pixels)
        x = codec.decode(z)
    assert z.dtype == x.dtype == torch.float16 and z.shape == (2, 4, 8, 8) and torch.isfinite(x).all()
