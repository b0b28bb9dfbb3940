"""Deferred shading of the shading buffers, and the shading team that refines it (`deferred.in`)."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.core.layout import TeamLayout, load_preset
from teamwork_cli.graphics.deferred import deferred_shading
from teamwork_cli.graphics.scene import STUDIO_KEY
from teamwork_cli.procedural import scenes as S
from teamwork_cli.tasks import shade as task
from teamwork_cli.training.finetune import make_source


def flat(normal=(0.0, 0.0, 1.0), depth=0.5, albedo=0.5, metallic=0.0, n=1, size=8) -> dict[str, torch.Tensor]:
    return {"albedo": torch.full((n, 3, size, size), albedo),
            "normals": torch.tensor(normal).view(1, 3, 1, 1).expand(n, 3, size, size),
            "roughness": torch.full((n, 1, size, size), 0.6), "metallic": torch.full((n, 1, size, size), metallic),
            "depth": torch.full((n, 1, size, size), depth)}


def test_light_direction_falloff_and_albedo():
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


def test_training_source_and_task_give_the_team_the_same_deferred_image(monkeypatch):
    src = make_source("procedural:scenes", load_preset("shade"), 16)
    data = src(3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(data["deferred"], task.with_deferred(data))
    assert data["deferred"].shape == (3, 3, 16, 16)
    layout = TeamLayout.from_names(["albedo.in", "normals.in", "deferred.in", "image.out"])
    data = make_source("procedural:scenes", layout, 16)(2, torch.Generator().manual_seed(1))
    assert {"roughness", "metallic", "depth", "deferred"} <= set(data)  # made to shade, though not teammates
    full = {**data, **{c: task.neutral(c, 2, 16, 16) for c in task.OPTIONAL}}  # as shade() completes them
    torch.testing.assert_close(data["deferred"], task.with_deferred(full))

    class Pipe:  # what shade() hands the pipeline, without running a model
        layout = TeamLayout.from_names(["albedo.in", "normals.in", "deferred.in", "image.out"])
        seen: dict = {}

        def __call__(self, inputs, **kw):
            self.seen.update(inputs)
            return {"image.out": torch.zeros(1, 3, 16, 16)}

    pipe = Pipe()
    buffers = {"albedo": encode("albedo", torch.full((1, 3, 16, 16), 0.5)),
               "normals": encode("normals", flat(size=16)["normals"])}
    task.shade(pipe, buffers)
    full = {c: task.neutral(c, 1, 16, 16) for c in task.OPTIONAL} | buffers
    torch.testing.assert_close(pipe.seen["deferred.in"], task.with_deferred(full))
    assert set(pipe.seen) == {"albedo.in", "normals.in", "deferred.in"}
    with pytest.raises(ValueError, match="deferred are not inputs"):
        task.shade(pipe, {**buffers, "deferred": buffers["albedo"]})
    assert decode("deferred", pipe.seen["deferred.in"]).max() > 0


def test_basecolor_colours_metals_and_its_neutral_value_is_the_unknown_metal():
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


def test_albedo_from_basecolor_follows_gltf():
    base = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    metal = torch.zeros(1, 1, 4, 4)
    metal[..., :2, :] = 1
    enc = {"basecolor": encode("basecolor", base), "metallic": encode("metallic", metal)}
    albedo = decode("albedo", task.albedo_from_basecolor(enc)["albedo"])
    torch.testing.assert_close(albedo, base * (1 - metal), atol=2e-3, rtol=0)
    given = {"albedo": enc["basecolor"], **enc}
    assert task.albedo_from_basecolor(given) is given  # an albedo given wins
    no_metal = decode("albedo", task.albedo_from_basecolor({"basecolor": enc["basecolor"]})["albedo"])
    torch.testing.assert_close(no_metal, base, atol=2e-3, rtol=0)
