"""Windowed team sampling (pipelines/windows.py, sync.py): plans cover the canvas, blending weights are positive,
one window is sample_team, batch size changes nothing, wrap-around has no seam, every sync runs for diffusion and
one-step teams, SyncSDE's step is the released wide-image step, and a hub backbone's latent windows land on
their pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.pipelines.sampling import sample_team
from teamwork_cli.pipelines.sync import SYNCS, noise_to_signal, syncsde_fraction
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.windows import _ramp, plan_windows, sample_windows, window_weights


@pytest.fixture(scope="module")
def team(tiny_base, tiny_svbrdf_adapter):
    """The tiny svbrdf team (embedded base: 2x2 pixel patches, pixel_multiple 4) in fp32 on the CPU."""
    pipe = TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", dtype="fp32")
    return pipe.denoiser, pipe.layout


def photo_inputs(n=2, size=(32, 48), seed=1):
    x = torch.rand((n, 3, *size), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return {"image.in": x, "halfway.in": torch.zeros_like(x)}


def gens(n=2, seed=5):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def coverage(corners, height, width, window, wrap):
    """How many windows cover each canvas cell (windows clipped to the canvas without wrap)."""
    h, w = (window, window) if wrap else (min(window, height), min(window, width))
    count = np.zeros((height, width), dtype=int)
    for y, x in corners:
        rows, cols = (np.arange(y, y + h) % height), (np.arange(x, x + w) % width)
        np.add.at(count, (rows[:, None], cols[None, :]), 1)
    return count


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 70), (64, 31), (9, 9)])
@pytest.mark.parametrize("overlap", [1, 5, 8])
def test_windows_cover_the_canvas(size, overlap, wrap):
    height, width, window = *size, 16
    corners = plan_windows(height, width, window, overlap, wrap=wrap)
    assert corners == sorted(corners) and len(set(corners)) == len(corners)  # raster order, no repeats
    assert (coverage(corners, height, width, window, wrap) >= 1).all()
    for axis, side in ((0, height), (1, width)):
        starts = sorted({c[axis] for c in corners})
        if wrap:  # every gap, across the seam too, leaves the neighbours `overlap` in common
            gaps = np.diff(starts + [starts[0] + side])
            assert starts[0] == 0 and (gaps <= window - overlap).all()
        else:
            clipped = min(window, side)
            assert starts[0] == 0 and starts[-1] + clipped == side  # inside, the last flush with the edge
            assert (np.diff(starts) <= window - overlap).all()
    if not wrap and size == (16, 16):
        assert corners == [(0, 0)]


def test_plan_windows_and_sample_windows_check_their_arguments(team):
    for args, wrap, name in [
        ((32, 32, 16, 16), False, "overlap"),
        ((32, 32, 16, -1), False, "overlap"),
        ((32, 32, 0, 0), False, "window"),
        ((0, 32, 16, 4), False, "height"),
        ((32, 32, 16, 4), "yes", "wrap"),
    ]:
        with pytest.raises(ValueError, match=f"^{name} must"):
            plan_windows(*args, wrap=wrap)
    den, layout = team
    x = photo_inputs(1)
    for kwargs, message in [
        (dict(sync="mean"), "sync must be one of none, average, syncsde"),
        (dict(strength=-1.0), "strength must be"),
        (dict(window=18), "window must be a posit"),
        (dict(overlap=3), "overlap must be a multiple of 2"),
        (dict(overlap=0, wrap=True), "at least one cell with wrap"),
        (dict(batch_size=0), "batch_size must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            sample_windows(den, layout, x, **(dict(window=16, overlap=8, steps=1) | kwargs))


def test_weights_are_positive_smooth_tapers():
    w = window_weights(16, 24, 6)
    assert w.shape == (16, 24) and (w > 0).all() and (w <= 1).all()
    torch.testing.assert_close(w, _ramp(16, 6)[:, None] * _ramp(24, 6)[None, :])
    assert (w[6:-6, 6:-6] == 1).all()
    ramp = _ramp(24, 6)
    assert (ramp[:6].diff() > 0).all() and torch.equal(ramp, ramp.flip(0))
    torch.testing.assert_close(ramp[-6:] + ramp[:6], torch.ones(6))  # neighbours overlapping by 6 sum to 1
    # Every cell of a wrapped canvas, covered by however many windows, has positive total weight.
    total = torch.zeros(20, 28)
    for y, x in plan_windows(20, 28, 16, 6, wrap=True):
        rows, cols = torch.arange(y, y + 16) % 20, torch.arange(x, x + 16) % 28
        total.index_put_((rows[:, None], cols[None, :]), window_weights(16, 16, 6), accumulate=True)
    assert (total > 0).all()


@pytest.mark.parametrize("sync", SYNCS)
def test_one_window_is_sample_team(team, sync):
    den, layout = team
    x = photo_inputs()
    ref = sample_team(den, layout, x, steps=2, generator=gens())
    out = sample_windows(den, layout, x, window=64, overlap=8, sync=sync, steps=2, generator=gens())
    assert out.keys() == ref.keys() and all(torch.equal(out[n], ref[n]) for n in ref)
    one = dict(one_step=True, start={"diffuse.out": "image.in"}, start_level=0.5)
    ref = sample_team(den, layout, x, **one)
    out = sample_windows(den, layout, x, window=48, overlap=8, sync=sync, **one)
    assert all(torch.equal(out[n], ref[n]) for n in ref)


@pytest.mark.parametrize("sync", SYNCS)
def test_results_do_not_depend_on_batch_size(team, sync):
    den, layout = team
    x = photo_inputs()
    kw = dict(window=16, overlap=8, sync=sync, steps=2, outputs=["diffuse.out", "normals.out"])
    runs = [sample_windows(den, layout, x, batch_size=b, generator=gens(), **kw) for b in (1, 4, 64)]
    for run in runs[1:]:
        for n in run:
            torch.testing.assert_close(run[n], runs[0][n], atol=1e-5, rtol=0)
    # One generator for the whole batch: the same canvas noise whatever the batch size.
    one, many = (
        sample_windows(den, layout, x, batch_size=b, generator=torch.Generator().manual_seed(3), **kw) for b in (2, 15)
    )
    torch.testing.assert_close(one["normals.out"], many["normals.out"], atol=1e-5, rtol=0)


def test_every_sync_runs_for_diffusion_and_one_step_teams(team):
    den, layout = team
    x = photo_inputs(size=(24, 40))
    kw = dict(window=16, overlap=8, wrap=True, steps=3, outputs=["diffuse.out", "roughness.out"])
    runs = {s: sample_windows(den, layout, x, sync=s, generator=gens(), **kw)["diffuse.out"] for s in SYNCS}
    for out in runs.values():
        assert out.shape == (2, 3, 24, 40) and torch.isfinite(out).all()
    assert (runs["average"] - runs["none"]).abs().mean() > 1e-3
    assert (runs["syncsde"] - runs["none"]).abs().mean() > 1e-3
    # strength spans the two: 0 is independent windows, a huge one MultiDiffusion's average.
    for strength, like in ((0.0, "none"), (1e9, "average")):
        out = sample_windows(den, layout, x, sync="syncsde", strength=strength, generator=gens(), **kw)
        assert torch.equal(out["diffuse.out"], runs[like])
    steps = {s: sample_windows(den, layout, x, sync=s, one_step=True, **kw)["diffuse.out"] for s in SYNCS}
    assert all(out.shape == (2, 3, 24, 40) and torch.isfinite(out).all() for out in steps.values())
    assert torch.equal(steps["syncsde"], steps["none"])  # one pass: no trajectories to synchronise
    assert (steps["average"] - steps["none"]).abs().mean() > 1e-4  # fused in latent space before decoding


def test_one_step_wraps_around_exactly(team):
    """On a torus, rolling the inputs by half the canvas (a whole number of window strides) rolls the outputs."""
    den, layout = team
    x = photo_inputs(1)
    for sync in ("none", "average"):
        kw = dict(window=16, overlap=8, wrap=True, sync=sync, one_step=True, outputs=["normals.out"])
        out = sample_windows(den, layout, x, **kw)["normals.out"]
        rolled = sample_windows(den, layout, {n: v.roll((16, 24), (-2, -1)) for n, v in x.items()}, **kw)["normals.out"]
        torch.testing.assert_close(rolled, out.roll((16, 24), (-2, -1)), atol=1e-5, rtol=0)


def seam_ratio(x: torch.Tensor, dim: int) -> float:
    """Mean |difference| across the wrap seam along `dim` over that between neighbouring interior lines."""
    last, first = x.select(dim, -1), x.select(dim, 0)
    return ((last - first).abs().mean() / x.diff(dim=dim).abs().mean()).item()


def test_wrapped_synthesis_has_no_seam():
    """The shipped synthesize team (trained: smooth maps, so seams show): with wrap the maps continue across the
    canvas edges as smoothly as inside; without, the opposite edges are unrelated."""
    pipe = TeamPipeline.load("synthesize", device="cpu", dtype="fp32")
    kw = dict(size=(48, 64), num_images=1, window=32, overlap=16, steps=4, batch_size=8)
    for sync in SYNCS:
        out = sample_windows(
            pipe.denoiser, pipe.layout, {}, wrap=True, sync=sync, generator=torch.Generator().manual_seed(0), **kw
        )
        maps = torch.stack(list(out.values()))
        assert seam_ratio(maps, -2) < 1.5 and seam_ratio(maps, -1) < 1.5, sync  # 0.9 to 1.3 seen
    out = sample_windows(
        pipe.denoiser, pipe.layout, {}, wrap=False, sync="average", generator=torch.Generator().manual_seed(0), **kw
    )
    maps = torch.stack(list(out.values()))
    assert seam_ratio(maps, -2) > 2 and seam_ratio(maps, -1) > 2  # 2.6 to 3.7 seen


class _DDIMDenoiser:
    prediction_type = "epsilon"

    def __init__(self):
        from diffusers import DDIMScheduler

        self.scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def test_syncsde_step_is_the_released_wide_image_step():
    """f_t / (strength t/T) = gamma_t sqrt(abar_t / abar_prev): the released DDIM step's coefficient gamma_t in
    scale-free coordinates (sync.py), for every step but the last (there DDIM's final alpha, here s = 0)."""
    den = _DDIMDenoiser()
    den.scheduler.set_timesteps(50)
    ts, abar = den.scheduler.timesteps, den.scheduler.alphas_cumprod.double()
    for i in range(len(ts) - 1):
        t, prev = int(ts[i]), int(ts[i + 1])
        gamma = (abar[prev] / abar[t]).sqrt() - ((1 - abar[prev]) / (1 - abar[t])).sqrt()
        f = syncsde_fraction(den, ts, i, 1e-3) / (1e-3 * t / int(ts[0]))
        assert math.isclose(f, float(gamma * (abar[t] / abar[prev]).sqrt()), rel_tol=1e-5)
    assert syncsde_fraction(den, ts, 0, 1e3) == 1.0  # clamped
    assert noise_to_signal(den, 999) > 10 > noise_to_signal(den, 1)


@pytest.fixture()
def sd3(tmp_path, monkeypatch):
    """A tiny SD3 denoiser (VAE factor 2, pixel_multiple 4) whose transformer predicts zero velocity: every output
    is then its input's clean latents decoded, so where each window's latents land shows in the pixels."""
    import huggingface_hub.constants

    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.models.hub import load_hub_denoiser
    from teamwork_cli.models.hub.testing import save_tiny_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path / "cache"))
    den = load_hub_denoiser(str(save_tiny_pipeline("sd3", tmp_path / "sd3")), cache_embeds=False)
    inject_adapter(den.model, None, 2, 2)  # zero `up`: the base model
    return den


@pytest.mark.parametrize("wrap", [False, True])
def test_hub_latent_windows_land_on_their_pixels(sd3, wrap):
    den = sd3
    layout = TeamLayout.from_names(["image.in", "image.out"])
    f = den.vae_scale_factor
    assert f == 2 and den.pixel_multiple == 4
    x = torch.zeros(1, 3, 32, 56)
    for q, (ys, xs) in enumerate(
        [
            (slice(0, 16), slice(0, 28)),
            (slice(0, 16), slice(28, 56)),
            (slice(16, 32), slice(0, 28)),
            (slice(16, 32), slice(28, 56)),
        ]
    ):
        x[0, :, ys, xs] = torch.tensor([(-0.8, 0.2, 0.6), (0.7, -0.5, -0.2), (0.1, 0.8, -0.7), (-0.3, -0.6, 0.9)][q])[
            :, None, None
        ]
    kw = dict(one_step=True, start={"image.out": "image.in"}, start_level=0.0)  # x0 = the input's latents
    # A real run, the transformer predicting: runs through the hub path without error.
    out = sample_windows(
        den,
        layout,
        {"image.in": x},
        window=24,
        overlap=8,
        wrap=wrap,
        sync="syncsde",
        steps=2,
        generator=torch.Generator().manual_seed(0),
    )["image.out"]
    assert out.shape == x.shape and torch.isfinite(out).all()
    den.predict = lambda sample, timesteps, **cond: torch.zeros_like(sample)
    out = sample_windows(den, layout, {"image.in": x}, window=24, overlap=8, wrap=wrap, sync="none", **kw)["image.out"]
    # The same by hand: every window's pixels cut out, encoded, decoded, pasted back where they came from.
    corners = plan_windows(32 // f, 56 // f, 24 // f, 8 // f, wrap=wrap)
    assert len(corners) > 2
    acc, total, weights = torch.zeros(3, 32, 56), torch.zeros(32, 56), window_weights(24, 24, 8)
    for y, x0 in corners:  # latent corners times the VAE's factor: the windows' pixels
        rows, cols = (torch.arange(y * f, y * f + 24) % 32)[:, None], (torch.arange(x0 * f, x0 * f + 24) % 56)[None]
        acc[:, rows, cols] += den.decode(den.encode(x[:, :, rows, cols]))[0] * weights
        total[rows, cols] += weights
    torch.testing.assert_close(out[0], acc / total, atol=1e-5, rtol=0)
    # Windowed, a window as large as the canvas is the full-frame result exactly.
    full = sample_team(den, layout, {"image.in": x}, **kw)["image.out"]
    assert torch.equal(sample_windows(den, layout, {"image.in": x}, window=64, overlap=8, **kw)["image.out"], full)
