"""Material maps from one colocated flash photo (paper section 5.2; docs/conventions.md sections 1 and 3)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from teamwork_cli.core.conventions import diffuse_specular_to_basecolor
from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.core.rows import map_rows
from teamwork_cli.graphics import flashfit
from teamwork_cli.graphics import render as R
from teamwork_cli.graphics.periodic import seamless_maps
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.tiling import WindowOptions, edge_weight, make_periodic
from teamwork_cli.tasks import ensemble as ensemble_

MAPS = ("diffuse", "specular", "roughness", "normals")
OUTPUTS = (*MAPS, "basecolor", "metallic", "render")
# After the network, from the photo (`flashfit`): "diffuse" solves the diffuse map per pixel given the other maps;
# "levels" first fits the maps' global levels (roughness, specular, diffuse gain, normal strength), then does that.
FITS = ("levels", "diffuse", "none")


def check_team(pipe: TeamPipeline) -> None:
    outs = {t.channel for t in pipe.layout.outputs}
    ins = {t.channel for t in pipe.layout.inputs}
    missing = [m for m in MAPS if m not in outs]
    if "image" not in ins or missing or not ins <= {"image", "halfway"}:
        raise ValueError(
            f"adapter {pipe.info.path} is not an svbrdf adapter: it has inputs "
            f"{sorted(ins)} and outputs {sorted(outs)}; svbrdf needs image.in (and optionally "
            f"halfway.in) to {', '.join(m + '.out' for m in MAPS)}"
        )


def estimate(
    pipe: TeamPipeline,
    photo: Tensor,
    *,
    fov_deg: float = 45.0,
    steps: int = 1,
    seed: int | Sequence[int] = 0,
    resolution: int | None = None,
    ensemble: int = 1,
    fit: str = "none",
    callback: Callable[[int, int], None] | None = None,
    windows: WindowOptions | None = None,
    stage: Callable[[str], None] | None = None,
) -> dict[str, Tensor]:
    """Maps (channel values, [N, C, H, W]) for flash photos given as stored ([N, 3, H, W] sRGB in [0, 1]).

    Also `basecolor`/`metallic` (glTF) and `render`: the estimate re-rendered under the same flash, for checking.
    ensemble: average the maps of this many samples with different noise (test-time ensembling, as Marigold,
    Ke et al. 2024, section 3.3): the mean of samples is a lower-error estimate than any one of them.
    fit: one of FITS: "diffuse" solves the diffuse map per pixel from the photo given the other maps; "levels" fits
    the maps' global levels to the photo first (`flashfit`); "none" keeps the network's maps.
    windows: process in windows (`TeamPipeline`); with windows.tileable the maps wrap around, and the photo the
    fit sees is made to wrap the same way (`pipelines.tiling.make_periodic`), and the final maps are made exactly
    periodic within that band (`graphics.periodic.seamless_maps`).
    stage: called with the name of each stage as it starts ("network", "photo fit", "glTF conversion").
    """
    report = stage or (lambda name: None)
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")
    check_team(pipe)
    stored = photo
    h, w = photo.shape[-2:]
    inputs = {"image.in": photo}
    if pipe.layout.has("halfway.in"):
        # The halfway map describes the capture geometry at the photo's own pixels (docs/conventions.md section 3).
        hw = R.halfway_map(h, w, fov_deg).unsqueeze(0).expand(photo.shape[0], -1, -1, -1)
        inputs["halfway.in"] = encode("halfway", hw)
        del hw
    del photo  # `stored` and the inputs hold it: freed with them
    ensemble = 1 if pipe.one_step else ensemble  # a one-step adapter is deterministic: samples would agree
    report("network")
    inputs, seeds = ensemble_.repeat(inputs, seed, ensemble)  # one batch of n * ensemble rows
    handed = [inputs]  # handed over, not kept: the pipeline frees the halfway map once it has its own copy
    del inputs
    out = pipe(
        handed.pop(),
        outputs=[m + ".out" for m in MAPS],
        steps=steps,
        seed=seeds,
        resolution=resolution,
        callback=callback,
        windows=windows,
    )
    # Photo-sized canvases are freed as soon as they have no more use (`del` below).
    plan = pipe.plan(h, w, resolution, windows)
    if plan.tile:  # the fit reads the photo: the same wrap-around photo the team saw
        stored = make_periodic(stored, plan.band(h))
    # Decoded a band of rows at a time (per pixel: the same values), each output's canvas freed once decoded.
    maps = ensemble_.mean({m: map_rows(functools.partial(decode, m), out.pop(m + ".out")) for m in MAPS}, ensemble)
    del out
    if fit != "none":
        report("photo fit")
    if fit == "levels":
        maps = flashfit.fit_levels(maps, stored, fov_deg=fov_deg, inplace=True)  # the decoded maps are this call's own
    if fit != "none":
        # The microfacet terms are made chunk by chunk inside the solve and again for the re-render below: a
        # photo-sized copy of them would outweigh their cost (a fraction of a second at 4096 x 4096).
        solved = flashfit.demodulate_diffuse(maps, stored, fov_deg=fov_deg)["diffuse"]
        if plan.tile:  # the per-pixel solve follows the flash geometry, which does not wrap: the team's own
            # diffuse (which does) takes over towards the edges, over the band where the photo was blended
            keep = edge_weight(h, w, plan.band(h)).to(solved)
            solved = solved * keep + maps["diffuse"] * (1 - keep)
        maps["diffuse"] = solved
        del solved
    del stored
    if plan.tile:  # the fit's flash geometry does not wrap: the maps made exactly periodic in the edge band
        maps = seamless_maps(maps, plan.band(h), inplace=True)  # into the maps themselves: they are this call's
    report("glTF conversion")
    maps["basecolor"], maps["metallic"] = _basecolor(maps["diffuse"], maps["specular"])
    # A photo's linear value; written sRGB-encoded like the input.
    maps["render"] = flashfit.rerender(maps, fov_deg=fov_deg)
    return {k: v.to(torch.float32) for k, v in maps.items()}


def _basecolor(diffuse: Tensor, specular: Tensor, pixels: int = 1 << 17) -> tuple[Tensor, Tensor]:
    """glTF basecolor and metallic of [N, 3, H, W] maps, clipped to [0, 1], about `pixels` pixels at a time: the
    per-pixel search holds a few dozen temporaries of its chunk's size, which stay in the CPU's cache at this size
    (1.7x faster at 2048 px than 256-row chunks) and bound a large photo's memory; each chunk is written into
    the result in place (no list of parts to concatenate)."""
    rows = max(1, pixels // diffuse.shape[-1])
    n, _, h, w = diffuse.shape
    base = torch.empty(n, 3, h, w, device=diffuse.device)
    metal = torch.empty(n, 1, h, w, device=diffuse.device)
    for i in range(0, h, rows):
        b, m = diffuse_specular_to_basecolor(diffuse[..., i : i + rows, :], specular[..., i : i + rows, :], axis=1)
        base[..., i : i + rows, :] = b.float().clamp_(0, 1)
        metal[..., i : i + rows, :] = m.float().clamp_(0, 1)
    return base, metal
