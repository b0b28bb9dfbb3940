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


def test_tileable_intrinsics_wrap(tiny_base, adapters):
    import torch

    from teamwork_cli.core.encoding import encode
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.pipelines.tiling import WindowOptions
    from teamwork_cli.tasks import intrinsics

    pipe = TeamPipeline.load(adapters["intrinsics"], base=str(tiny_base), device="cpu", dtype="fp32")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    photo = (0.2 + 0.6 * xx * yy).expand(1, 3, 48, 48)  # a ramp: a strong seam at both wraps
    maps = intrinsics.estimate(pipe, photo, windows=WindowOptions(window=32, tileable=True))
    for c, x in maps.items():
        assert seam_score(encode(c, x)) <= 1.1, c
