"""Material families and weathering overlays: every family draws a valid tileable layer, reproducibly."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.procedural import families as F
from teamwork_cli.procedural.noise import Rng

S = 32
OVERLAYS = [F.add_detail, F.add_dirt, F.add_rust, F.add_scratches, F.add_dents]


def _check_layer(layer: F.Layer, s: int = S) -> None:
    assert set(layer) == {"basecolor", "roughness", "metallic", "height"}
    assert layer["basecolor"].shape == (3, s, s)
    for k in ("roughness", "metallic", "height"):
        assert layer[k].shape == (s, s), k
    assert all(torch.isfinite(v).all() for v in layer.values())


def test_the_family_table():
    assert set(F.FAMILIES) == {"ground", "cells", "bricks", "wood", "fabric", "metal", "painted"}
    assert sum(w for w, _ in F.FAMILIES.values()) == pytest.approx(1.0)
    assert all(callable(fn) and w > 0 for w, fn in F.FAMILIES.values())


@pytest.mark.parametrize("family", sorted(F.FAMILIES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_family_draws_a_valid_layer_reproducibly(family, seed):
    make = F.FAMILIES[family][1]
    layer = make(Rng(seed), S)
    _check_layer(layer)
    assert layer["basecolor"].min() >= 0
    again = make(Rng(seed), S)
    assert all(torch.equal(layer[k], again[k]) for k in layer)


@pytest.mark.parametrize("family", sorted(F.FAMILIES))
def test_seeds_vary_the_layer(family):
    make = F.FAMILIES[family][1]
    a, b = make(Rng(10), S), make(Rng(11), S)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_metal_is_metallic_and_dielectrics_are_not():
    assert (F.fam_metal(Rng(0), S)["metallic"] == 1).all()
    for make in (F.fam_ground, F.fam_cells, F.fam_bricks, F.fam_wood, F.fam_fabric):
        assert (make(Rng(0), S)["metallic"] == 0).all(), make.__name__
    painted = F.fam_painted(Rng(0), S)["metallic"]
    assert painted.min() >= 0 and painted.max() <= 1


# Wood is left out: a plank one tile wide has its only joint on the tile's edge, a seam by design.
@pytest.mark.parametrize("family", ["ground", "cells", "bricks", "fabric", "metal"])
@pytest.mark.parametrize("seed", [3, 4])
def test_layers_are_tileable(family, seed):
    """The wrap-around step (last column to first, bottom row to top) is no larger than the steps inside."""
    layer = F.FAMILIES[family][1](Rng(seed), 64)
    for k in ("basecolor", "height"):
        x = layer[k]
        for dim in (-1, -2):
            d = (x - x.roll(1, dims=dim)).abs()  # index 0 along dim: the step across the tile's edge
            steps = d.movedim(dim, 0).reshape(x.shape[dim], -1).mean(1)
            seam, inner = steps[0], steps[1:]
            assert seam <= 1.5 * inner.max() + 1e-4, (family, k, dim)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda f: f.__name__)
def test_overlays_weather_in_place_and_keep_the_layer_valid(overlay):
    layer = F.fam_metal(Rng(4), S)
    before = {k: v.clone() for k, v in layer.items()}
    assert overlay(Rng(5), layer) is None  # in place
    _check_layer(layer)
    assert not all(torch.equal(layer[k], before[k]) for k in layer)
    assert layer["metallic"].max() <= 1 and layer["metallic"].min() >= 0


def test_rust_and_dirt_only_take_metalness_away():
    for overlay in (F.add_rust, F.add_dirt):
        layer = F.fam_metal(Rng(6), S)
        overlay(Rng(7), layer)
        assert (layer["metallic"] <= 1).all() and (layer["metallic"] < 1).any(), overlay.__name__


def test_dents_and_scratches_only_lower_the_surface():
    for overlay in (F.add_dents, F.add_scratches):
        layer = F.fam_metal(Rng(8), S)
        before = layer["height"].clone()
        overlay(Rng(9), layer)
        assert (layer["height"] <= before + 1e-5).all() and (layer["height"] < before - 1e-6).any(), overlay.__name__
