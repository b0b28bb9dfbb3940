"""Tiny diffusers models for the adapter tests, built from config (no download)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from teamwork_cli.models.hub.testing import tiny_model

_tiny_sd3 = partial(tiny_model, "sd3")


def _sd3_inputs(rows: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "hidden_states": torch.randn(rows, 4, 8, 8, generator=g),
        "encoder_hidden_states": torch.randn(rows, 5, 16, generator=g),
        "pooled_projections": torch.randn(rows, 8, generator=g),
        "timestep": torch.full((rows,), 500.0),
    }


_tiny_unet = partial(tiny_model, "unet2d")


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
