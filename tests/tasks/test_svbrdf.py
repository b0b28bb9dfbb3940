"""Material maps from flash photos: the estimate's maps, glTF pair and re-render, fits, ensembles, team checks."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.conventions import diffuse_specular_to_basecolor
from teamwork_cli.core.encoding import encode
from teamwork_cli.graphics import render as R
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.tasks import svbrdf


@pytest.fixture(scope="module")
def pipe(tiny_base, tiny_svbrdf_adapter):
    return TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", dtype="fp32")


def _photo(n: int = 1, seed: int = 0) -> torch.Tensor:
    return encode("image", torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2)


def test_estimate_gives_every_map_in_range_and_consistent(pipe):
    maps = svbrdf.estimate(pipe, _photo(2), seed=3)
    assert list(maps) == [*svbrdf.MAPS, "basecolor", "metallic", "render"] and set(maps) == set(svbrdf.OUTPUTS)
    for c, v in maps.items():
        assert v.shape == (2, 1 if c in ("roughness", "metallic") else 3, 16, 16) and v.dtype == torch.float32, c
        assert torch.isfinite(v).all(), c
    assert torch.allclose(maps["normals"].norm(dim=1), torch.ones(1), atol=1e-4)
    for c in ("diffuse", "specular", "roughness", "basecolor", "metallic", "render"):
        assert maps[c].min() >= 0 and maps[c].max() <= 1, c
    # render: the maps under the photo's flash; basecolor/metallic: the glTF pair fitted to diffuse/specular
    expected = R.render_flash(maps["diffuse"], maps["specular"], maps["roughness"], maps["normals"]).clamp(0, 1)
    torch.testing.assert_close(maps["render"], expected)
    base, metal = diffuse_specular_to_basecolor(maps["diffuse"], maps["specular"], axis=1)
    torch.testing.assert_close(maps["basecolor"], base.float().clamp(0, 1))
    torch.testing.assert_close(maps["metallic"], metal.float().clamp(0, 1))


def test_stages_are_reported_in_order(pipe):
    seen: list[str] = []
    svbrdf.estimate(pipe, _photo(), fit="levels", stage=seen.append)
    assert seen == ["network", "photo fit", "glTF conversion"]
    seen.clear()
    svbrdf.estimate(pipe, _photo(), fit="none", stage=seen.append)
    assert seen == ["network", "glTF conversion"]


def test_the_seed_and_the_batch(pipe):
    photos = _photo(2)
    both = svbrdf.estimate(pipe, photos, seed=[5, 5])
    alone = svbrdf.estimate(pipe, photos[1:], seed=5)
    torch.testing.assert_close(both["normals"][1:], alone["normals"], atol=1e-5, rtol=0)
    other = svbrdf.estimate(pipe, photos[1:], seed=6)
    assert not torch.allclose(other["normals"], alone["normals"])


def test_fits_change_what_they_say(pipe):
    photo = _photo(seed=1)
    none = svbrdf.estimate(pipe, photo, fit="none")
    diffuse = svbrdf.estimate(pipe, photo, fit="diffuse")
    assert not torch.equal(diffuse["diffuse"], none["diffuse"])
    for c in ("specular", "roughness", "normals"):
        assert torch.equal(diffuse[c], none[c]), c
    with pytest.raises(ValueError, match="fit must be one of levels, diffuse, none; got 'all'"):
        svbrdf.estimate(pipe, photo, fit="all")


def test_ensemble_averages_samples(pipe):
    photo = _photo(seed=2)
    two = svbrdf.estimate(pipe, photo, seed=0, ensemble=2)
    one = [svbrdf.estimate(pipe, photo, seed=k * svbrdf.ensemble_.SEED_STRIDE) for k in range(2)]
    torch.testing.assert_close(two["roughness"], (one[0]["roughness"] + one[1]["roughness"]) / 2, atol=1e-5, rtol=1e-5)


def test_check_team_refuses_other_adapters(tiny_base, adapters):
    other = TeamPipeline.load(adapters["shade"], base=str(tiny_base), device="cpu", dtype="fp32")
    with pytest.raises(ValueError, match="is not an svbrdf adapter: it has inputs") as err:
        svbrdf.check_team(other)
    assert "image.in (and optionally halfway.in) to diffuse.out, specular.out, roughness.out, normals.out" in str(
        err.value
    )


def test_tileable_maps_wrap_and_only_their_edge_band_is_made_periodic(pipe, monkeypatch):
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.pipelines.tiling import WindowOptions

    photo = encode("image", torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(5)) * 0.6 + 0.2)
    opts = WindowOptions(window=32, tileable=True)
    maps = svbrdf.estimate(pipe, photo, fit="levels", windows=opts)
    for c in (*svbrdf.MAPS, "basecolor", "metallic"):
        assert seam_score(encode(c, maps[c])) <= 1.1, c  # the written encoding wraps, every map of the team
    torch.testing.assert_close(maps["normals"].norm(dim=1), torch.ones(1, 48, 48))
    expected = R.render_flash(maps["diffuse"], maps["specular"], maps["roughness"], maps["normals"]).clamp(0, 1)
    torch.testing.assert_close(maps["render"], expected)  # the render shows the final maps
    monkeypatch.setattr(svbrdf, "seamless_maps", lambda m, band, inplace=False: m)
    raw = svbrdf.estimate(pipe, photo, fit="levels", windows=opts)
    band = pipe.plan(48, 48, None, opts).band(48)
    for c in svbrdf.MAPS:  # beyond one band from the edges the maps are the windows' own
        torch.testing.assert_close(maps[c][..., band:-band, band:-band], raw[c][..., band:-band, band:-band])


def test_the_glTF_conversion_in_chunks_equals_the_whole_map_one():
    g = torch.Generator().manual_seed(7)
    diffuse, specular = torch.rand(2, 3, 9, 5, generator=g), torch.rand(2, 3, 9, 5, generator=g) * 0.5
    base, metal = diffuse_specular_to_basecolor(diffuse, specular, axis=1)
    for pixels in (1, 12, 10**6):  # a row at a time, two rows and a bit, all at once
        b, m = svbrdf._basecolor(diffuse, specular, pixels=pixels)
        assert b.shape == (2, 3, 9, 5) and m.shape == (2, 1, 9, 5)
        torch.testing.assert_close(b, base.clamp(0, 1), atol=1e-6, rtol=0)
        torch.testing.assert_close(m, metal.clamp(0, 1), atol=1e-6, rtol=0)
