"""Training data of the tasks: procedural:inpaint blanks the input teammate (grey or harmonic fill); scenes give
encoded team channels, shading teams train on the studio rig."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.layout import load_preset
from teamwork_cli.graphics.holefill import harmonic_fill
from teamwork_cli.procedural import scenes as S
from teamwork_cli.training.finetune import make_source
from teamwork_cli.training.task_data import random_masks, scene_source


def test_inpaint_source_blanks_only_the_input_under_the_mask(tmp_path):
    src = make_source("procedural:inpaint", load_preset("inpaint-material"), 16, pool=3, cache=tmp_path)
    data = src(2, torch.Generator().manual_seed(0))
    m = data["mask"]
    for c in ("diffuse", "specular", "roughness", "normals"):
        x, blanked = data[c], data[f"{c}.in"]
        assert torch.equal(blanked * (1 - m), x * (1 - m))
        assert torch.equal(blanked * m, (0.5 * m).expand_as(x))
    with pytest.raises(ValueError, match="procedural:bricks: unknown generator; available: procedural:svbrdf"):
        make_source("procedural:bricks", load_preset("inpaint"), 16)


def test_training_source_shows_the_harmonic_fill(tmp_path):
    src = make_source("procedural:inpaint", load_preset("inpaint"), 32, pool=3, cache=tmp_path, hole_fill="harmonic")
    data = src(2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(data["image.in"], harmonic_fill(data["image"], data["mask"]).clamp(0, 1))
    assert not torch.equal(data["image.in"], data["image"])
    with pytest.raises(ValueError, match="applies to --data procedural:inpaint only"):
        make_source("procedural:svbrdf", load_preset("svbrdf"), 32, hole_fill="harmonic")
    with pytest.raises(ValueError, match="one of grey, harmonic"):
        make_source("procedural:inpaint", load_preset("inpaint"), 32, hole_fill="blur")


def test_training_sources_give_encoded_team_channels():
    g = torch.Generator().manual_seed(0)
    data = scene_source(load_preset("intrinsics"), 32)(2, g)
    assert set(data) == {t.channel for t in load_preset("intrinsics").teammates}
    assert all(v.shape[0] == 2 and v.shape[-1] == 32 and 0 <= v.min() and v.max() <= 1 for v in data.values())
    shade = scene_source(load_preset("shade"), 16)(8, g)
    flat = (shade["depth"] == 0.5).flatten(1).all(1)  # optional buffers are sometimes neutral, per sample
    assert flat.any() and not flat.all()
    masks = random_masks(6, 32, g)
    assert masks.shape == (6, 1, 32, 32) and set(masks.unique().tolist()) <= {0.0, 1.0}
    cover = masks.mean(dim=(1, 2, 3))
    assert (cover > 0).all() and (cover < 0.95).all()


def test_shading_teams_train_on_the_studio_rig():
    from teamwork_cli.training.task_data import scene_batch

    data = scene_source(load_preset("shade"), 16)(1, torch.Generator().manual_seed(0))
    seed = int(torch.randint(0, S.EVAL_SEED0, (1,), generator=torch.Generator().manual_seed(0)))
    assert torch.equal(data["image"], scene_batch([seed], 16, {"image"}, "studio")["image"])
