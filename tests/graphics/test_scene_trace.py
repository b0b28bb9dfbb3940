"""Ray casting: analytic hits of planes, spheres and boxes, texture lookups, surface attributes, shadow rays."""

from __future__ import annotations

import math

import pytest
import torch

from teamwork_cli.graphics import scene as G
from teamwork_cli.graphics import scene_trace as T


def _material(colour: float = 0.5, size: int = 4) -> dict[str, torch.Tensor]:
    normals = torch.zeros(3, size, size)
    normals[2] = 1
    return {
        "basecolor": torch.full((3, size, size), colour),
        "metallic": torch.zeros(1, size, size),
        "roughness": torch.full((1, size, size), 0.6),
        "normals": normals,
    }


def _ray(*d: float) -> torch.Tensor:
    v = torch.tensor([d], dtype=torch.float32)
    return v / v.norm(dim=-1, keepdim=True)


def test_plane_hits_in_front_only():
    floor = G.Surface("plane", {"point": torch.zeros(3), "normal": torch.tensor([0.0, 1.0, 0.0])}, _material())
    o = torch.tensor([0.0, 2.0, 0.0])
    t = T.intersect(floor, o, torch.cat([_ray(0, -1, 0), _ray(0, 1, 0), _ray(1, 0, 0), _ray(1, -1, 0)]))
    assert t[0].item() == pytest.approx(2.0) and math.isinf(t[1]) and math.isinf(t[2])
    assert t[3].item() == pytest.approx(2 * math.sqrt(2), rel=1e-5)


def test_sphere_hits_the_near_side_and_from_inside_the_far_side():
    ball = G.Surface("sphere", {"center": torch.tensor([0.0, 0.0, -5.0]), "radius": torch.tensor(1.0)}, _material())
    t = T.intersect(ball, torch.zeros(3), torch.cat([_ray(0, 0, -1), _ray(0, 1, 0)]))
    assert t[0].item() == pytest.approx(4.0) and math.isinf(t[1])
    inside = T.intersect(ball, torch.tensor([0.0, 0.0, -5.0]), _ray(1, 0, 0))
    assert inside.item() == pytest.approx(1.0)


def test_box_slab_test_in_its_own_frame():
    box = G.Surface(
        "box",
        {
            "center": torch.tensor([0.0, 0.0, -5.0]),
            "half": torch.tensor([1.0, 2.0, 0.5]),
            "rotation": G.rot_y(math.pi / 2),
        },
        _material(),
    )
    t = T.intersect(box, torch.zeros(3), torch.cat([_ray(0, 0, -1), _ray(0, 1, 0)]))
    assert t[0].item() == pytest.approx(4.0, abs=1e-5)  # turned a quarter: the 1.0 half-size faces the camera
    assert math.isinf(t[1])


def test_unknown_surfaces_and_uncovered_views_are_errors():
    with pytest.raises(ValueError, match="surface kind must be one of plane, sphere, box; got 'torus'"):
        T.intersect(G.Surface("torus", {}, {}), torch.zeros(3), _ray(0, 0, -1))
    ball = G.Surface("sphere", {"center": torch.tensor([0.0, 0.0, -5.0]), "radius": torch.tensor(1.0)}, _material())
    with pytest.raises(ValueError, match="miss every surface"):
        T.first_hit([ball], torch.zeros(3), torch.cat([_ray(0, 0, -1), _ray(0, 1, 0)]))


def test_first_hit_picks_the_nearest_surface_and_occlusion_sees_it():
    wall = G.Surface(
        "plane", {"point": torch.tensor([0.0, 0.0, -8.0]), "normal": torch.tensor([0.0, 0.0, 1.0])}, _material()
    )
    ball = G.Surface("sphere", {"center": torch.tensor([0.0, 0.0, -4.0]), "radius": torch.tensor(1.0)}, _material())
    d = torch.cat([_ray(0, 0, -1), _ray(0, 1, -1)])
    hit = T.first_hit([wall, ball], torch.zeros(3), d)
    assert hit.index.tolist() == [1, 0] and hit.t[0].item() == pytest.approx(3.0)
    blocked = T.occluded([wall, ball], torch.zeros(3), d, torch.tensor([7.9, 100.0]))
    assert blocked.tolist() == [True, True]
    assert T.occluded([wall, ball], torch.zeros(3), d, torch.tensor([2.5, 1.0])).tolist() == [False, False]


def test_lookup_is_bilinear_and_wraps():
    tex = torch.arange(4.0).view(1, 2, 2)  # rows: [0, 1] (top), [2, 3]
    corners = T.lookup(tex, torch.tensor([0.25, 0.75, 0.25]), torch.tensor([0.75, 0.75, 0.25]))
    assert corners[:, 0].tolist() == [0.0, 1.0, 2.0]  # pixel centres; +v is towards the top row
    mid = T.lookup(tex, torch.tensor([0.5]), torch.tensor([0.5]))
    assert mid.item() == pytest.approx(1.5)
    wrapped = T.lookup(tex, torch.tensor([1.25, -0.75]), torch.tensor([0.75, 1.75]))
    assert wrapped[:, 0].tolist() == [0.0, 0.0]


def test_surface_attributes_of_a_plane_and_a_sphere():
    floor = G.Surface("plane", {"point": torch.zeros(3), "normal": torch.tensor([0.0, 1.0, 0.0])}, _material(0.2))
    ball = G.Surface("sphere", {"center": torch.tensor([0.0, 1.0, 0.0]), "radius": torch.tensor(0.5)}, _material(0.9))
    pos = torch.tensor([[0.3, 0.0, 0.2], [0.5, 1.0, 0.0], [0.0, 1.5, 0.0]])
    geo, shading, mat = T.surface_attributes([floor, ball], torch.tensor([0, 1, 1]), pos)
    torch.testing.assert_close(geo, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    torch.testing.assert_close(shading, geo)  # flat normal maps
    torch.testing.assert_close(mat["basecolor"][:, 0], torch.tensor([0.2, 0.9, 0.9]))
    assert mat["roughness"].shape == (3, 1) and (mat["metallic"] == 0).all()


def test_direct_light_falls_off_with_distance_and_shadows_block_it():
    floor = G.Surface("plane", {"point": torch.zeros(3), "normal": torch.tensor([0.0, 1.0, 0.0])}, _material())
    blocker = G.Surface("sphere", {"center": torch.tensor([0.0, 1.0, 0.0]), "radius": torch.tensor(0.2)}, _material())
    light = G.Light(torch.tensor([0.0, 2.0, 0.0]), torch.full((3,), 4.0))
    scene = G.Scene(torch.zeros(3), torch.eye(3), 45.0, [floor, blocker], [light], torch.zeros(3), torch.zeros(3))
    pos = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    up = torch.tensor([[0.0, 1.0, 0.0]] * 2)
    view = up.clone()
    spec, rough = torch.full((2, 3), 0.04), torch.full((2, 1), 0.5)
    s, glossy = T.direct_light(scene, pos, up, up, view, spec, rough, shadows=False)
    assert s[0, 0].item() == pytest.approx(4.0 / 4.0 / math.pi, rel=1e-5)  # I cos / d^2 / pi, straight below
    assert 0 < s[1, 0] < s[0, 0] and (glossy >= 0).all()
    shadowed, _ = T.direct_light(scene, pos, up, up, view, spec, rough)
    assert shadowed[0].abs().max() == 0 and shadowed[1, 0].item() == pytest.approx(s[1, 0].item())
    below, _ = T.direct_light(scene, pos, -up, -up, view, spec, rough, shadows=False)
    assert (below == 0).all()  # a light behind the surface gives nothing
