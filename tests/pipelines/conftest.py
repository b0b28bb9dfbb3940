"""A tiny svbrdf team pipeline and inputs for it."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.pipelines.team_pipeline import TeamPipeline


def _photos(n: int, size=(32, 40), seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 3, *size), generator=torch.Generator().manual_seed(seed))


def _team_inputs(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"image.in": x, "halfway.in": torch.full_like(x, 0.5)}


@pytest.fixture(scope="module")
def pipe32(tiny_base, tiny_svbrdf_adapter):
    """The tiny svbrdf team in fp32 on the CPU."""
    return TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def photos():
    """photos(n, size=(32, 40), seed=0) -> n random [3, H, W] images in [0, 1]."""
    return _photos


@pytest.fixture(scope="session")
def team_inputs():
    """team_inputs(x) -> the svbrdf team's inputs for photos x (a flat halfway map)."""
    return _team_inputs
