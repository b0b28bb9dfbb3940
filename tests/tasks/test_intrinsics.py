"""Intrinsic decomposition: the ensemble is the mean of its samples."""

from __future__ import annotations

import pytest


def test_intrinsics_ensemble_is_the_mean_of_its_samples(tiny_base, adapters):
    import torch

    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.tasks import intrinsics
    from teamwork_cli.tasks.ensemble import SEED_STRIDE

    pipe = TeamPipeline.load(adapters["intrinsics"], base=str(tiny_base), device="cpu", dtype="fp32")
    photo = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    both = intrinsics.estimate(pipe, photo, ["albedo", "normals"], seed=3, ensemble=2)
    one = [
        intrinsics.estimate(pipe, photo, ["albedo", "normals"], seed=[3 + k * SEED_STRIDE, 4 + k * SEED_STRIDE])
        for k in range(2)
    ]
    torch.testing.assert_close(both["albedo"], (one[0]["albedo"] + one[1]["albedo"]) / 2, atol=1e-5, rtol=1e-5)
    assert torch.allclose(both["normals"].norm(dim=1), torch.ones(1), atol=1e-4)
    with pytest.raises(ValueError, match="ensemble"):
        intrinsics.estimate(pipe, photo, ["albedo"], ensemble=0)
