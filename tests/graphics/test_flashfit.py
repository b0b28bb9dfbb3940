"""The flash fit: global levels recovered from the photo, diffuse solved per pixel, shape errors."""

from __future__ import annotations

import functools

import pytest
import torch

from teamwork_cli.core.conventions import srgb_to_linear
from teamwork_cli.graphics import flashfit
from teamwork_cli.graphics import render as R


def _truth(size: int = 48) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    diffuse = 0.25 + 0.2 * torch.rand(1, 3, size, size, generator=g)
    tilt = 0.15 * torch.randn(1, 2, size, size, generator=g)
    normals = torch.nn.functional.normalize(torch.cat([tilt, torch.ones(1, 1, size, size)], 1), dim=1)
    return {
        "diffuse": diffuse,
        "specular": torch.full((1, 3, size, size), 0.04),
        "roughness": torch.full((1, 1, size, size), 0.35),
        "normals": normals,
    }


def _photo(maps: dict[str, torch.Tensor]) -> torch.Tensor:
    return R.to_photo(R.render_flash(maps["diffuse"], maps["specular"], maps["roughness"], maps["normals"]))


def test_fit_recovers_the_roughness_and_specular_levels():
    truth = _truth()
    guess = {
        **truth,
        "roughness": torch.full_like(truth["roughness"], 0.7),
        "specular": torch.full_like(truth["specular"], 0.1),
        "extra": torch.ones(1),
    }
    fitted = flashfit.fit_levels(guess, _photo(truth), iters=300)
    assert fitted["roughness"].mean().item() == pytest.approx(0.35, abs=0.05)
    assert fitted["specular"].mean().item() == pytest.approx(0.04, abs=0.015)
    assert torch.equal(fitted["extra"], guess["extra"])  # keys it does not fit pass through
    before = (_photo(guess) - _photo(truth)).pow(2).mean()
    assert (_photo(fitted) - _photo(truth)).pow(2).mean() < before / 20


def _diffuse_share(maps: dict[str, torch.Tensor]) -> torch.Tensor:
    """The diffuse term's share of each pixel's flash radiance (least over channels)."""
    spec, _ = R.flash_terms(maps["roughness"], maps["normals"])
    d = maps["diffuse"] / torch.pi
    return (d / (d + maps["specular"] * spec)).amin(1, keepdim=True)


def test_demodulation_solves_the_diffuse_that_made_the_photo():
    truth = _truth()
    guess = {**truth, "diffuse": torch.full_like(truth["diffuse"], 0.5)}
    photo = _photo(truth)
    solved = flashfit.demodulate_diffuse(guess, photo)["diffuse"]
    clipped = (photo >= flashfit.SATURATED).any(1, keepdim=True).expand_as(solved)
    assert 0 < clipped.sum() < clipped.numel() / 4  # the highlight's centre is clipped, the rest is not
    trusted = (_diffuse_share(truth) >= flashfit.TRUST_SHARE[1]).expand_as(solved) & ~clipped
    assert trusted.float().mean() > 0.5  # most of the photo: the solve is exact there
    assert (solved - truth["diffuse"])[trusted].abs().max() < 1e-4
    assert torch.equal(solved[clipped], guess["diffuse"][clipped])  # no information there: the guess stays
    between = ~trusted & ~clipped  # the highlight's rim: between the solve and the guess
    lo = torch.minimum(truth["diffuse"], guess["diffuse"])[between]
    hi = torch.maximum(truth["diffuse"], guess["diffuse"])[between]
    assert ((solved[between] >= lo - 1e-4) & (solved[between] <= hi + 1e-4)).all()


def test_a_highlight_the_specular_over_explains_leaves_no_black_hole():
    # The estimate's specular twice the truth's: the solve alone subtracts more than the highlight holds.
    truth = _truth()
    truth["roughness"] = torch.full_like(truth["roughness"], 0.2)
    guess = {**truth, "specular": truth["specular"] * 2}
    photo = _photo(truth)
    spec, shading = R.flash_terms(guess["roughness"], guess["normals"])
    naive = torch.pi * (srgb_to_linear(photo) / shading - guess["specular"] * spec)
    assert (naive <= 0).any()  # the unbounded solve would write pure black there
    solved = flashfit.demodulate_diffuse(guess, photo)["diffuse"]
    # where the solve is not trusted the guess takes over: no pixel darker than a fifth of it
    assert (solved / guess["diffuse"]).min() > 0.2


def test_size_mismatch_is_an_error():
    truth = _truth()
    with pytest.raises(ValueError, match="photo is 24x24 but the maps are 48x48"):
        flashfit.fit_levels(truth, _photo(truth)[..., ::2, ::2])
    with pytest.raises(ValueError, match="photo is 24x24 but the maps are 48x48"):
        flashfit.demodulate_diffuse(truth, _photo(truth)[..., ::2, ::2])


def test_the_fit_is_adam_step_for_step():
    # The fit writes Adam out (torch.optim's first use imports torch._dynamo, about 0.9 s): same steps as torch's.
    truth = _truth(24)
    guess = {**truth, "roughness": torch.full_like(truth["roughness"], 0.6), "specular": truth["specular"] * 2}
    photo = _photo(truth)
    params = {"roughness": torch.zeros(1), "specular": torch.zeros(1), "diffuse": torch.zeros(1, 3)}
    params["normal"] = torch.zeros(1)
    for v in params.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(params.values(), lr=0.05)
    weight = (photo < flashfit.SATURATED).all(1, keepdim=True).float()
    for _ in range(40):
        m = flashfit._apply(guess, params)
        pred = R.to_photo(R.render_flash(m["diffuse"], m["specular"], m["roughness"], m["normals"]))
        loss = ((pred - photo) ** 2 * weight).sum() / weight.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        expected = flashfit._apply(guess, params)
    fitted = flashfit.fit_levels(guess, photo, iters=40)
    for k, v in expected.items():
        torch.testing.assert_close(fitted[k], v, rtol=1e-5, atol=1e-6)


def test_inplace_fit_writes_the_same_levels_into_the_given_maps(monkeypatch):
    truth = _truth(40)
    guess = {**truth, "roughness": torch.full_like(truth["roughness"], 0.6), "extra": torch.ones(1)}
    photo = _photo(truth)
    expected = flashfit.fit_levels({k: v.clone() for k, v in guess.items()}, photo, iters=20)
    own = {k: v.clone() for k, v in guess.items()}
    ids = {k: id(v) for k, v in own.items()}
    monkeypatch.setattr(flashfit._apply_inplace, "__defaults__", (16,))  # 16-row chunks of the 40-row maps
    got = flashfit.fit_levels(own, photo, iters=20, inplace=True)
    assert got is own and all(id(got[k]) == ids[k] for k in own)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=0, atol=1e-6)


def _reference_solve(maps: dict[str, torch.Tensor], photo: torch.Tensor) -> torch.Tensor:
    """demodulate_diffuse written on the whole image at once (its formulas, no chunks)."""
    spec, shading = R.flash_terms(maps["roughness"], maps["normals"])
    observed = srgb_to_linear(photo) / shading.clamp_min(1e-6)
    solved = torch.pi * (observed - maps["specular"] * spec)
    share = (solved / (torch.pi * observed).clamp_min(1e-6)).amin(1, keepdim=True)
    lo, hi = flashfit.TRUST_SHARE
    trust = ((share - lo) / (hi - lo)).clamp(0, 1)
    trust = trust * ((photo < flashfit.SATURATED).all(1, keepdim=True) & (shading > 0.05).all(1, keepdim=True))
    return torch.lerp(maps["diffuse"], solved.clamp(0, 1), trust)


@pytest.mark.parametrize("chunk", [1, 7, 48 * 5, 10**9])  # a row, rows of 1 px, 5 rows, the whole image
def test_the_chunked_solve_and_rerender_equal_the_whole_image_ones(chunk):
    truth = _truth()
    guess = {**truth, "specular": truth["specular"] * 1.5, "diffuse": torch.full_like(truth["diffuse"], 0.5)}
    photo = _photo(truth)
    whole = flashfit.demodulate_diffuse(guess, photo, chunk_pixels=10**9)["diffuse"]
    torch.testing.assert_close(whole, _reference_solve(guess, photo), atol=1e-6, rtol=0)
    # per pixel, so the same for any chunk; within an ulp, for the photo's sRGB decoding is a pow (core/rows.py)
    same = functools.partial(torch.testing.assert_close, atol=1e-6, rtol=0)
    same(flashfit.demodulate_diffuse(guess, photo, chunk_pixels=chunk)["diffuse"], whole)
    terms = R.flash_terms(guess["roughness"], guess["normals"])
    same(flashfit.demodulate_diffuse(guess, photo, terms=terms, chunk_pixels=chunk)["diffuse"], whole)
    render = R.render_flash(guess["diffuse"], guess["specular"], guess["roughness"], guess["normals"]).clamp(0, 1)
    same(flashfit.rerender(guess, chunk_pixels=chunk), render)
