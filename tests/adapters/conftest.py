"""Tiny diffusers models for the adapter tests, built from config (no download)."""

from __future__ import annotations

import pytest
import torch


def _tiny_sd3():
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        caption_projection_dim=16,
        pooled_projection_dim=8,
        out_channels=4,
    ).eval()


def _sd3_inputs(rows: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "hidden_states": torch.randn(rows, 4, 8, 8, generator=g),
        "encoder_hidden_states": torch.randn(rows, 5, 16, generator=g),
        "pooled_projections": torch.randn(rows, 8, generator=g),
        "timestep": torch.full((rows,), 500.0),
    }


def _tiny_unet():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=4,
    ).eval()


@pytest.fixture(scope="session")
def tiny_sd3():
    """tiny_sd3() -> a new one-block SD3 transformer (seed 0, eval mode)."""
    return _tiny_sd3


@pytest.fixture(scope="session")
def sd3_inputs():
    """sd3_inputs(rows, seed=1) -> random keyword inputs of tiny_sd3 for `rows` batch rows."""
    return _sd3_inputs


@pytest.fixture(scope="session")
def tiny_unet():
    """tiny_unet() -> a new two-level UNet2DModel with attention (seed 0, eval mode)."""
    return _tiny_unet
