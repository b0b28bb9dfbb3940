"""HubDenoiser: the VAE codec, and the prompt embeddings cached as non-persistent buffers shared by every row."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.base import HubDenoiser

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def den(sd2_folder):
    return load_hub_denoiser(str(sd2_folder), cache_embeds=False)


def test_embeddings_are_buffers_outside_the_state_dict(den):
    assert isinstance(den, HubDenoiser) and den.input_convention == "published"
    assert "prompt_embeds" in dict(den.named_buffers())
    assert not any("prompt_embeds" in k for k in den.state_dict())  # derived from the prompt, not weights
    assert den.prompt_embeds.dtype == next(den.model.parameters()).dtype


def test_rows_are_a_view_of_the_one_row(den):
    rows = den.rows("prompt_embeds", 5)
    assert rows.shape == (5, *den.prompt_embeds.shape[1:])
    assert rows.data_ptr() == den.prompt_embeds.data_ptr() and rows.stride(0) == 0  # expanded, not copied


def test_the_codec_maps_pixels_to_latents_and_back(den):
    assert den.vae_scale_factor == 2 and den.vae is den.codec.vae
    pixels = torch.rand(2, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        z = den.encode(pixels)
        assert z.shape == (2, 4, 8, 12)
        assert den.decode(z).shape == pixels.shape
    assert "vae" in dict(den.named_children())  # moves with the denoiser


def test_bf16_weights_keep_bf16_embeddings(sd2_folder):
    half = load_hub_denoiser(str(sd2_folder), torch.bfloat16, cache_embeds=False)
    assert half.prompt_embeds.dtype == torch.bfloat16 == next(half.model.parameters()).dtype
