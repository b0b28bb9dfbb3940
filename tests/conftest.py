"""Shared fixtures: tiny models built from config (no download), saved to temporary folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

TINY_UNET = dict(sample_size=16, in_channels=12, out_channels=12, block_out_channels=(8, 16), layers_per_block=1,
                 down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2, norm_num_groups=4)

SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]


@pytest.fixture(autouse=True)
def _small_torch():
    torch.set_num_threads(1)  # tiny models: threads only add overhead (and CI shares the CPU)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny embedded-format base model folder."""
    from teamwork_cli.models.embedded import EmbeddedDenoiser

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tinybase")
    EmbeddedDenoiser.from_config(TINY_UNET).save_pretrained(path, meta={"command": "tests"}, dtype=torch.float32)
    return path


def randomize_up(model, scale, seed=0):
    """Give every adapter layer a random `up` (a fresh adapter is an exact no-op), reproducibly."""
    from teamwork_cli.adapters.model import adapter_layers

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in adapter_layers(model).values():
            layer.adapter.up.copy_(torch.randn(layer.adapter.up.shape, generator=g) * scale)


def make_adapter(base_path, teammates, path, rank=4, communication=True, seed=0, metadata=None):
    """A random (non-zero) adapter for the tiny base, written in the published format (plus `metadata`)."""
    from teamwork_cli.adapters.checkpoint import save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.adapters.profiles import layers_to_adapt
    from teamwork_cli.models.embedded import EmbeddedDenoiser

    den = EmbeddedDenoiser.from_pretrained(base_path)
    inject_adapter(den.model, layers_to_adapt(den.model), len(teammates), rank, communication=communication)
    randomize_up(den.model, 0.05, seed)
    save_adapter(den.model, path, teammates, base_model=str(base_path), title="tiny test adapter",
                 profile="UNET2D", architecture="UNet2DModel", extra=metadata)
    return path


@pytest.fixture(scope="session")
def tiny_svbrdf_adapter(tiny_base, tmp_path_factory):
    return make_adapter(tiny_base, SVBRDF, tmp_path_factory.mktemp("adapter") / "svbrdf.safetensors")


def write_png(path, array):
    """Write an HxWx3 float array in [0, 1] as an 8-bit PNG (stored values)."""
    from PIL import Image

    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path
