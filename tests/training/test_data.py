"""Training data from folders and the procedural pool: views, mixed sizes, skipped samples, the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from teamwork_cli.training import data


def test_views_larger_than_the_pool_and_mixed_sizes(tmp_path, write_png):
    """Training crops above the pool size upsample; maps of one sample at two resolutions stay aligned."""
    from teamwork_cli.training.data import FolderSource, build_pool, svbrdf_views

    pool = build_pool(2, size=32)
    views = svbrdf_views(pool, 2, 48, torch.Generator().manual_seed(0))
    assert views["diffuse"].shape == (2, 3, 48, 48)
    d = tmp_path / "s0"
    d.mkdir()
    ramp = np.linspace(0, 1, 32)[None, :, None] * np.ones((32, 32, 3))
    write_png(d / "image.png", ramp)
    write_png(d / "diffuse.png", ramp[::2, ::2])  # the same surface at half the resolution
    batch = FolderSource(tmp_path, ["image", "diffuse"], 16)(1, torch.Generator().manual_seed(1))
    assert (batch["image"] - batch["diffuse"]).abs().mean() < 0.03


def test_samples_without_an_output_are_skipped_up_front(tmp_path, capsys, write_png):
    for name, channels in (("s1", ("image", "diffuse")), ("s2", ("image",))):
        (tmp_path / name).mkdir()
        for c in channels:
            write_png(tmp_path / name / f"{c}.png", np.full((16, 16, 3), 0.5))
    with pytest.warns(UserWarning, match="s2"):
        src = data.FolderSource(tmp_path, ["image", "diffuse"], 16, outputs=["diffuse"])
    assert len(src) == 1


def test_pool_cache_write_leaves_other_writers_alone(tmp_path) -> None:
    """An adapter and its twin start together and both build the cached pool: each writes its own temporary file
    (under a shared name one of them would fail), and the cache ends complete."""
    from teamwork_cli.training.data import load_or_build_pool

    other = tmp_path / "pool.pt.tmp"  # what the other job, mid-write, would hold under a shared name
    other.write_bytes(b"half written")
    pool = load_or_build_pool(tmp_path / "pool.pt", 3, 32)
    assert other.read_bytes() == b"half written"
    assert torch.equal(load_or_build_pool(tmp_path / "pool.pt", 3, 32)["basecolor"], pool["basecolor"])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == ["pool.pt.tmp"]
