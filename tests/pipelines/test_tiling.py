"""Window options, periodic resampling and the wrap-around blend of `pipelines/tiling.py`, and `TeamPipeline` calls
in windows."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.pipelines.tiling import (
    FULL_FRAME_PIXELS,
    WindowOptions,
    latent_factor,
    make_periodic,
    recorded_resolution,
    resize_periodic,
    round_to,
)


def _seam(x: torch.Tensor) -> float:
    """Mean |difference| across the wrap (last row/column against the first) over the same between neighbours."""
    across = (x[..., -1, :] - x[..., 0, :]).abs().mean() + (x[..., :, -1] - x[..., :, 0]).abs().mean()
    inside = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return float(across / inside)


def test_options_are_checked_with_their_names():
    with pytest.raises(ValueError, match="sync must be one of none, average, syncsde"):
        WindowOptions(sync="mean")
    with pytest.raises(ValueError, match="window must be at least 16"):
        WindowOptions(window=8)
    with pytest.raises(ValueError, match="overlap must be >= 0"):
        WindowOptions(overlap=-1)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        WindowOptions(batch_size=0)
    assert WindowOptions(tileable=True).windowed(10, 10, 128) and not WindowOptions().windowed(128, 100, 128)
    assert WindowOptions().windowed(129, 100, 128)


def test_automatic_windows_only_past_the_full_frame_size_and_batch_small_windows():
    auto = WindowOptions.automatic()
    assert auto.full_frame_pixels == FULL_FRAME_PIXELS == 1024 * 1024
    assert not auto.windowed(1024, 1024, 128) and auto.windowed(1025, 1024, 128)  # one pass up to 1 MP
    assert not auto.windowed(2048, 100, 4096)  # never windows for an image no larger than one window
    assert WindowOptions(window=128, full_frame_pixels=FULL_FRAME_PIXELS).windowed(512, 512, 128)  # --window wins
    assert WindowOptions.automatic(tileable=True).windowed(64, 64, 128)
    assert auto.windows_per_pass(128) == 16 and auto.windows_per_pass(512) == 1 and auto.windows_per_pass(1024) == 1
    assert WindowOptions(batch_size=3).windows_per_pass(128) == 3
    with pytest.raises(ValueError, match="full_frame_pixels must be at least 1"):
        WindowOptions(full_frame_pixels=0)


def test_recorded_resolution_and_rounding():
    assert recorded_resolution("512x512") == 512 and recorded_resolution("1024x768") == 768
    assert recorded_resolution(None) is None and recorded_resolution("") is None
    assert round_to(70, 16) == 64 and round_to(73, 16) == 80 and round_to(3, 16, at_least=16) == 16


def test_resize_periodic_keeps_a_periodic_signal_periodic():
    n = torch.arange(64, dtype=torch.float32)
    wave = torch.sin(2 * torch.pi * n / 64)[None, None, None, :].expand(1, 1, 8, 64)
    out = resize_periodic(wave, (8, 60))
    expect = torch.sin(2 * torch.pi * ((torch.arange(60) + 0.5) * 64 / 60 - 0.5) / 64)
    assert out.shape == (1, 1, 8, 60)
    assert torch.allclose(out[0, 0, 0], expect, atol=2e-3)  # linear interpolation of a smooth wave
    assert torch.equal(resize_periodic(wave, (8, 64)), wave)
    rolled = resize_periodic(torch.roll(wave, 16, dims=-1), (8, 32))  # resampling commutes with whole rolls
    assert torch.allclose(rolled, torch.roll(resize_periodic(wave, (8, 32)), 8, dims=-1), atol=1e-6)


def test_make_periodic_wraps_and_keeps_the_centre():
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    ramp = torch.linspace(0, 1, 48)[None, None, None, :].expand(1, 3, 40, 48)  # a photo that does not tile
    for image in (x, ramp):
        out = make_periodic(image, 8)
        assert out.shape == image.shape
        assert torch.equal(out[..., 8:-8, 8:-8], image[..., 8:-8, 8:-8])  # beyond one band: untouched
    assert _seam(ramp) > 10 and _seam(make_periodic(ramp, 8)) < 1.5


def test_latent_factor_of_the_embedded_model(pipe32):
    assert latent_factor(pipe32.denoiser) == 2


def test_one_window_covering_the_canvas_is_the_plain_call(pipe32, photos, team_inputs):
    inputs = team_inputs(photos(1, (32, 32)))
    plain = pipe32(inputs, steps=2, seed=3)
    windowed = pipe32(inputs, steps=2, seed=3, windows=WindowOptions(window=32))
    assert all(torch.equal(plain[k], windowed[k]) for k in plain)


@pytest.mark.parametrize("sync", ["none", "average", "syncsde"])
def test_a_large_canvas_in_windows_keeps_its_size_and_batching_changes_nothing(pipe32, photos, team_inputs, sync):
    inputs = team_inputs(photos(1, (40, 56)))
    one = pipe32(inputs, steps=2, seed=1, windows=WindowOptions(window=32, overlap=8, sync=sync))
    two = pipe32(inputs, steps=2, seed=1, windows=WindowOptions(window=32, overlap=8, sync=sync, batch_size=3))
    assert all(v.shape == (1, v.shape[1], 40, 56) for v in one.values())
    assert all(torch.allclose(one[k], two[k], atol=1e-5) for k in one)


def test_tileable_outputs_keep_the_input_size(pipe32, team_inputs):
    ramp = torch.linspace(0, 1, 44)[None, None, None, :].expand(1, 3, 36, 44).contiguous()  # does not tile
    out = pipe32(team_inputs(ramp), steps=1, seed=0, windows=WindowOptions(window=32, tileable=True))
    assert all(x.shape[-2:] == (36, 44) for x in out.values())


def test_tileable_svbrdf_maps_wrap_on_the_shipped_model():
    from pathlib import Path

    from teamwork_cli import TeamPipeline, encode, read_map
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.tasks import svbrdf

    pipe = TeamPipeline.load("svbrdf", device="cpu", dtype="fp32")
    wood = Path(__file__).resolve().parents[2] / "examples" / "wood_flash.png"
    photo = encode("image", torch.from_numpy(read_map(wood, "image")).permute(2, 0, 1)[None][..., 40:136, 60:156])
    plain = svbrdf.estimate(pipe, photo, fit="none")
    tiled = svbrdf.estimate(pipe, photo, fit="none", windows=WindowOptions(window=64, tileable=True))
    for m in ("diffuse", "specular", "roughness"):
        assert _seam(plain[m]) > 2.5 and _seam(tiled[m]) < 0.6 * _seam(plain[m]), m
    for m in svbrdf.MAPS:  # in the written encoding, no rougher across the wrap than inside
        assert seam_score(encode(m, tiled[m])) <= 1.1, m


def test_windows_refuse_known_regions(pipe32, photos, team_inputs):
    inputs = team_inputs(photos(1, (32, 32)))
    known = {"diffuse.out": torch.zeros(1, 3, 32, 32)}
    with pytest.raises(ValueError, match="known regions"):
        pipe32(inputs, known=known, known_mask=torch.zeros(1, 1, 32, 32), windows=WindowOptions(tileable=True))
