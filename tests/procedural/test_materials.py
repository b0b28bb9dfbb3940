"""Procedural SVBRDF generator: shapes, ranges, determinism, tileability, consistency with the renderer."""

from __future__ import annotations

import itertools

import pytest
import torch

from teamwork_cli.graphics import render as R
from teamwork_cli.procedural import materials as P

SIZE = 64
SEEDS = list(range(24))  # enough to hit every family


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    return P.generate(SEEDS, SIZE)


def test_keys_shapes_ranges(batch: dict[str, torch.Tensor]) -> None:
    b = len(SEEDS)
    assert set(batch) == set(P.CHANNELS)
    for k, c in P.CHANNELS.items():
        assert batch[k].shape == (b, c, SIZE, SIZE), k
        assert batch[k].dtype == torch.float32 and torch.isfinite(batch[k]).all(), k
    for k in ("diffuse", "specular", "basecolor", "roughness", "metallic", "height", "image"):
        assert batch[k].min() >= 0 and batch[k].max() <= 1, k
    assert batch["roughness"].min() >= 0.05
    assert torch.allclose(batch["normals"].norm(dim=1), torch.ones(1), atol=1e-5)
    assert (batch["normals"][:, 2] > 0).all()


def test_maps_follow_metal_roughness(batch: dict[str, torch.Tensor]) -> None:
    base, m = batch["basecolor"], batch["metallic"]
    assert torch.allclose(batch["diffuse"], base * (1 - m), atol=1e-6)
    assert torch.allclose(batch["specular"], 0.04 * (1 - m) + base * m, atol=1e-6)
    # both dielectrics and metals occur
    assert (m == 0).float().mean() > 0.3 and (m > 0.99).any()


def test_photo_is_the_flash_render(batch: dict[str, torch.Tensor]) -> None:
    maps = [batch[k] for k in ("diffuse", "specular", "roughness", "normals")]
    clean = P.generate(SEEDS[:4], SIZE, augment=False)
    assert torch.allclose(clean["image"], R.to_photo(R.render_flash(*[t[:4] for t in maps])), atol=1e-5)
    # augmentation changes only the photo, mildly
    for k in P.CHANNELS:
        if k != "image":
            assert torch.equal(clean[k], batch[k][:4]), k
    assert (clean["image"] - batch["image"][:4]).abs().mean() < 0.15
    assert torch.allclose(batch["halfway"][0], R.halfway_map(SIZE, SIZE), atol=1e-6)


def test_deterministic_per_seed_whatever_the_batch() -> None:
    a = P.generate([7, 3, 11], SIZE)
    b = P.generate([11], SIZE)
    c = P.generate([3, 7], SIZE)
    for k in P.CHANNELS:
        assert torch.equal(a[k][2], b[k][0]), k
        assert torch.equal(a[k][0], c[k][1]), k
    assert not torch.equal(a["diffuse"][0], a["diffuse"][1])


def test_tileable(batch: dict[str, torch.Tensor]) -> None:
    # Wrap-around neighbours differ no more than ordinary neighbours (a seam would stand out strongly).
    for k in ("basecolor", "roughness", "normals", "metallic"):
        x = batch[k]
        inner_h = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
        seam_h = (x[..., :, 0] - x[..., :, -1]).abs().mean()
        inner_v = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
        seam_v = (x[..., 0, :] - x[..., -1, :]).abs().mean()
        assert seam_h < 2.0 * inner_h + 1e-4, k
        assert seam_v < 2.0 * inner_v + 1e-4, k


def test_crop_and_stream() -> None:
    out = P.generate([1, 2], 32, crop=True)
    assert out["diffuse"].shape == (2, 3, 32, 32)
    assert torch.allclose(out["normals"].norm(dim=1), torch.ones(1), atol=1e-5)
    stream = P.material_stream(100, 32, batch_size=3)
    first, second = itertools.islice(stream, 2)
    assert first["image"].shape == (3, 3, 32, 32)
    assert torch.equal(second["diffuse"][0], P.generate([103], 32)["diffuse"][0])


def test_variety(batch: dict[str, torch.Tensor]) -> None:
    rough = batch["roughness"].mean(dim=(1, 2, 3))
    assert rough.min() < 0.45 and rough.max() > 0.8  # shiny and matte materials
    assert (rough > 0.65).float().mean() > 0.3  # rough ones are common, as in real life
    tilt = 1 - batch["normals"][:, 2].mean(dim=(1, 2))
    assert tilt.min() < 0.01 and tilt.max() > 0.05  # nearly flat to bumpy
    assert batch["diffuse"].mean(dim=(1, 2, 3)).std() > 0.03  # not all the same albedo


def test_seed_independence_from_thread_count() -> None:
    threads = torch.get_num_threads()
    a = P.generate([5, 6], SIZE)
    torch.set_num_threads(1)
    try:
        b = P.generate([5, 6], SIZE)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    assert torch.equal(a["normals"], b["normals"])
