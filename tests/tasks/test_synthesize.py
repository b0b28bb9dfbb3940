"""Material synthesis: a team of outputs only, one seed per material, glTF maps, coherence, prompt checks."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.graphics import render as R
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.tasks import synthesize as S


@pytest.fixture(scope="module")
def pipe(tiny_base, adapters):
    return TeamPipeline.load(adapters["synthesize"], base=str(tiny_base), device="cpu", dtype="fp32")


def test_materials_have_every_channel_and_the_gltf_pair(pipe):
    steps = []
    mats = S.synthesize(pipe, 2, (16, 24), steps=2, seed=4, callback=lambda k, n: steps.append((k, n)))
    assert len(mats) == 2 and steps[-1] == (4, 4) and [n for _, n in steps] == [4] * len(steps)
    for m in mats:
        assert set(m) == {"diffuse", "specular", "roughness", "normals", "image", "basecolor", "metallic"}
        assert m["diffuse"].shape == (1, 3, 16, 24) and m["roughness"].shape == (1, 1, 16, 24)
        assert all(torch.isfinite(v).all() for v in m.values())
    assert not torch.equal(mats[0]["diffuse"], mats[1]["diffuse"])


def test_tileable_materials_wrap(pipe):
    from teamwork_cli.core.encoding import encode
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.pipelines.tiling import WindowOptions

    (mat,) = S.synthesize(pipe, 1, (48, 40), steps=2, seed=2, windows=WindowOptions(window=32, tileable=True))
    for c, x in mat.items():
        assert x.shape[-2:] == (48, 40) and seam_score(encode(c, x)) <= 1.1, c


def test_material_i_comes_from_seed_plus_i_alone(pipe):
    two = S.synthesize(pipe, 2, (16, 16), steps=2, seed=7)
    one = S.synthesize(pipe, 1, (16, 16), steps=2, seed=8)
    for c in two[1]:
        torch.testing.assert_close(two[1][c], one[0][c])


@pytest.mark.parametrize(
    "count, size, match",
    [(0, (16, 16), "count must be at least 1, got 0"), (1, (4, 16), "size must be at least 8 pixels, got 16x4")],
)
def test_bad_counts_and_sizes(pipe, count, size, match):
    with pytest.raises(ValueError, match=match):
        S.synthesize(pipe, count, size)


def test_teams_with_inputs_are_refused(tiny_base, tiny_svbrdf_adapter):
    other = TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", dtype="fp32")
    with pytest.raises(ValueError, match=r"has inputs \(image.in, halfway.in\); synthesis needs a team of outputs"):
        S.synthesize(other, 1, (16, 16))


def test_coherence_is_zero_when_the_image_is_the_render_of_the_maps():
    g = torch.Generator().manual_seed(0)
    normals = torch.zeros(1, 3, 8, 8)
    normals[:, 2] = 1
    maps = {
        "diffuse": torch.rand(1, 3, 8, 8, generator=g),
        "specular": torch.full((1, 3, 8, 8), 0.04),
        "roughness": torch.full((1, 1, 8, 8), 0.5),
        "normals": normals,
    }
    maps["image"] = R.render_flash(*(maps[m] for m in S.MAPS))
    assert S.coherence_rmse(maps) == pytest.approx(0.0, abs=1e-6)
    maps["image"] = maps["image"] * 0.5
    assert S.coherence_rmse(maps) > 0.01


def test_a_prompt_needs_a_text_conditioned_base(tiny_base, adapters):
    with pytest.raises(TeamworkError, match="the embedded model takes no prompt") as err:
        S.load_with_prompt(adapters["synthesize"], str(tiny_base), "rusty metal", "cpu", "fp32")
    assert "--base" in err.value.hint
    with pytest.raises(TeamworkError, match="takes no prompt"):
        S.load_with_prompt(adapters["synthesize"], "embedded", "rusty metal", "cpu", "fp32")
    assert S.load_with_prompt(adapters["synthesize"], str(tiny_base), "", "cpu", "fp32").layout.inputs == []
