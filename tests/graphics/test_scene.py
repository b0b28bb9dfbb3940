"""Scene description: rotations, the plain scene data, and the studio rig's placement."""

from __future__ import annotations

import math

import pytest
import torch

from teamwork_cli.graphics import scene as G


@pytest.mark.parametrize("rot", [G.rot_x, G.rot_y])
@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, math.pi])
def test_rotations_are_proper_orthogonal(rot, angle):
    r = rot(angle)
    assert r.shape == (3, 3)
    torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)
    assert torch.det(r).item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(rot(angle) @ rot(-angle), torch.eye(3), atol=1e-6, rtol=0)


def test_rotation_axes_and_directions():
    quarter = math.pi / 2
    torch.testing.assert_close(
        G.rot_y(quarter) @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, -1.0]), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        G.rot_x(quarter) @ torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0
    )
    for axis, rot in ((torch.tensor([1.0, 0.0, 0.0]), G.rot_x), (torch.tensor([0.0, 1.0, 0.0]), G.rot_y)):
        torch.testing.assert_close(rot(0.7) @ axis, axis)  # the axis itself stays


def test_scene_defaults_and_fields():
    surface = G.Surface("sphere", {"center": torch.zeros(3), "radius": torch.tensor(1.0)}, {})
    light = G.Light(torch.tensor([0.0, 2.0, 0.0]), torch.ones(3))
    scene = G.Scene(torch.zeros(3), torch.eye(3), 45.0, [surface], [light], torch.zeros(3), torch.zeros(3))
    assert surface.tile == 1.0 and scene.exposure == 0.85 and scene.gain is None
    assert scene.surfaces[0].kind == "sphere" and scene.lights[0] is light


def test_studio_key_light_is_above_right_and_ahead_within_the_room():
    right, up, ahead = G.STUDIO_KEY
    assert right > 0 and up > 0 and ahead < 0  # camera space: +x right, +y up, -z ahead
    assert G.STUDIO_KEY_POWER > 0 and G.STUDIO_SKY > 0 and 0 < G.STUDIO_BOUNCE < 1
