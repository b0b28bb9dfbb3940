"""Procedural 3D scenes: exact, consistent buffers; conventions; shadows; determinism; the studio rig."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.graphics import scene as G
from teamwork_cli.procedural import scenes as S


def _flat(colour: float) -> dict[str, torch.Tensor]:
    normals = torch.zeros(3, 4, 4)
    normals[2] = 1
    return {
        "basecolor": torch.full((3, 4, 4), colour),
        "metallic": torch.zeros(1, 4, 4),
        "roughness": torch.full((1, 4, 4), 0.6),
        "normals": normals,
    }


def _occluder_scene() -> G.Scene:
    """A grey ball on the ground right under the only light, in front of a wall: it casts a shadow below."""
    up, back = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    surfaces = [
        G.Surface("plane", {"point": torch.zeros(3), "normal": up}, _flat(0.5)),
        G.Surface("plane", {"point": torch.tensor([0.0, 0.0, -8.0]), "normal": back}, _flat(0.5)),
        G.Surface("sphere", {"center": torch.tensor([0.0, 0.6, -4.0]), "radius": torch.tensor(0.5)}, _flat(0.7)),
    ]
    light = G.Light(torch.tensor([0.0, 3.0, -4.0]), torch.full((3,), 10.0))
    return G.Scene(
        torch.tensor([0.0, 1.5, 0.0]),
        G.rot_x(-0.3),
        50.0,
        surfaces,
        [light],
        sky=torch.full((3,), 0.05),
        bounce=torch.full((3,), 0.02),
    )


def test_buffers_are_consistent_and_follow_the_conventions():
    b = S.generate([3, 4], 48)
    for k in ("image", "albedo", "diffuseshading", "residual", "normals", "specular"):
        assert b[k].shape == (2, 3, 48, 48), k
    for k in ("depth", "roughness", "metallic"):
        assert b[k].shape == (2, 1, 48, 48), k
    assert all(torch.isfinite(v).all() for v in b.values())
    assert torch.allclose(b["image"], b["albedo"] * b["diffuseshading"] + b["residual"], atol=1e-5)
    assert torch.allclose(b["normals"].norm(dim=1), torch.ones(2, 48, 48), atol=1e-4)
    d = b["depth"].flatten(1)
    assert (d.amin(1) == 0).all() and (d.amax(1) == 1).all()
    assert (b["diffuseshading"] >= 0).all() and (b["residual"] >= 0).all()
    assert torch.equal(b["albedo"], b["diffuse"])
    # camera space: the floor at the bottom faces up (+Y), and the camera looks at surfaces facing it (+Z)
    assert b["normals"][:, 1, -4:].mean() > 0.5
    assert (b["normals"][:, 2] > -0.05).float().mean() > 0.95
    # the bottom rows (floor near the camera) are nearer than the top rows (the back wall)
    assert (b["depth"][:, 0, -4:].mean(dim=(1, 2)) < b["depth"][:, 0, :4].mean(dim=(1, 2))).all()


def test_same_seed_same_scene_in_any_batch():
    a = S.generate([7, 8], 32)
    b = S.generate(8, 32)
    assert torch.equal(a["image"][1], b["image"][0]) and torch.equal(a["depth"][1], b["depth"][0])
    assert not torch.equal(a["image"][0], a["image"][1])


def test_an_object_between_light_and_floor_casts_a_shadow():
    scene = _occluder_scene()
    lit = S.render_scene(scene, 64, shadows=False)
    shadowed = S.render_scene(scene, 64)
    floor = lit["normals"][1] > 0.9
    dark = shadowed["diffuseshading"][1] < 0.5 * lit["diffuseshading"][1]
    assert (dark & floor).sum() > 20  # a shadow on the floor ...
    assert not (dark & ~floor).any()  # ... and only there (the ball's top and the wall see the light)
    assert torch.allclose(
        shadowed["image"], shadowed["albedo"] * shadowed["diffuseshading"] + shadowed["residual"], atol=1e-5
    )
    # the ball's camera-space normals: -X on its left, +X on its right, +Y on top
    n = lit["normals"]
    planes = [torch.tensor(v).view(3, 1, 1) for v in ([0.0, 0.9553, 0.2955], [0.0, -0.2955, 0.9553])]
    ball = ((n - planes[0]).norm(dim=0) > 0.02) & ((n - planes[1]).norm(dim=0) > 0.02)
    rows, cols = ball.nonzero(as_tuple=True)
    row = int(rows.float().mean().round())
    mid = ball[row].nonzero().flatten()
    assert n[0, row, mid.min()] < -0.7 and n[0, row, mid.max()] > 0.7
    assert n[1, rows.min(), cols.float().mean().long()] > 0.7


def test_studio_lighting_is_fixed_and_keeps_the_layout():
    random, studio = S.sample_scene(7), S.sample_scene(7, "studio")
    assert [s.kind for s in studio.surfaces] == [s.kind for s in random.surfaces]
    assert studio.gain == 1.0 and len(studio.lights) == 1
    offset = (studio.lights[0].position - studio.camera) @ studio.rotation  # back to camera space
    assert torch.allclose(offset, torch.tensor(G.STUDIO_KEY), atol=1e-5)
    # A fixed gain (no automatic exposure): removing the shadows can only add light, pixel by pixel.
    lit = S.generate([7, 8], 24, lighting="studio")
    local = S.generate([7, 8], 24, lighting="studio", shadows=False)
    assert (local["image"] >= lit["image"] - 1e-6).all() and (local["image"] > lit["image"] + 1e-3).any()
    with pytest.raises(ValueError, match="lighting must be one of random, studio; got 'noon'"):
        S.sample_scene(7, "noon")
