"""Neural shading: the shading team's `deferred.in` image, and the albedo an artist's basecolor gives."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.core.layout import TeamLayout, load_preset
from teamwork_cli.tasks import shade as task
from teamwork_cli.training.finetune import make_source


def test_training_source_and_task_give_the_team_the_same_deferred_image(monkeypatch, flat):
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
    buffers = {
        "albedo": encode("albedo", torch.full((1, 3, 16, 16), 0.5)),
        "normals": encode("normals", flat(size=16)["normals"]),
    }
    task.shade(pipe, buffers)
    full = {c: task.neutral(c, 1, 16, 16) for c in task.OPTIONAL} | buffers
    torch.testing.assert_close(pipe.seen["deferred.in"], task.with_deferred(full))
    assert set(pipe.seen) == {"albedo.in", "normals.in", "deferred.in"}
    with pytest.raises(ValueError, match="deferred are not inputs"):
        task.shade(pipe, {**buffers, "deferred": buffers["albedo"]})
    assert decode("deferred", pipe.seen["deferred.in"]).max() > 0


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
