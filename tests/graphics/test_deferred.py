"""Deferred shading of the shading buffers under the studio rig."""

from __future__ import annotations

import torch

from teamwork_cli.core.encoding import decode
from teamwork_cli.graphics.deferred import deferred_shading
from teamwork_cli.graphics.scene import STUDIO_KEY
from teamwork_cli.procedural import scenes as S
from teamwork_cli.tasks import shade as task


def test_light_direction_falloff_and_albedo(flat):
    key = torch.tensor(STUDIO_KEY) / torch.tensor(STUDIO_KEY).norm()
    lit, away = deferred_shading(flat(tuple(key.tolist()))), deferred_shading(flat(tuple((-key).tolist())))
    assert lit.shape == (1, 3, 8, 8) and torch.isfinite(lit).all() and (lit >= 0).all()
    assert lit.mean() > 2 * away.mean()  # only the ambient reaches a surface facing away from the key light
    assert deferred_shading(flat(depth=0.0)).mean() > deferred_shading(flat(depth=1.0)).mean()  # inverse square
    dark, bright = deferred_shading(flat(albedo=0.1)), deferred_shading(flat(albedo=0.9))
    assert (bright > dark).all()
    metal = deferred_shading(flat(albedo=0.0, metallic=1.0))
    assert metal.mean() > deferred_shading(flat(albedo=0.0)).mean()  # metals reflect more of the rig


def test_close_to_the_true_local_shading_of_a_scene():
    """On a scene (not the shadows, which it lacks) the deferred image is far closer than the albedo alone."""
    buf = S.generate([3, 4], 32, shadows=False, lighting="studio")
    err = lambda x: ((x.clamp(0, 1) - buf["image"].clamp(0, 1)) ** 2).mean()  # noqa: E731
    assert err(deferred_shading(buf)) < 0.25 * err(buf["albedo"])


def test_basecolor_colours_metals_and_its_neutral_value_is_the_unknown_metal(flat):
    gold = torch.tensor([1.0, 0.78, 0.34]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    metal = flat(albedo=0.0, metallic=1.0)
    tinted = deferred_shading({**metal, "basecolor": gold})
    assert tinted[:, 0].mean() > 1.5 * tinted[:, 2].mean()  # a gold metal reflects red more than blue
    grey = deferred_shading(metal)
    torch.testing.assert_close(grey[:, 0], grey[:, 2])
    unknown = decode("basecolor", task.neutral("basecolor", 1, 8, 8))
    torch.testing.assert_close(deferred_shading({**metal, "basecolor": unknown}), grey, atol=2e-3, rtol=1e-3)
    dielectric = flat(albedo=0.5)  # basecolor changes nothing where metallic is 0
    torch.testing.assert_close(deferred_shading({**dielectric, "basecolor": gold}), deferred_shading(dielectric))
