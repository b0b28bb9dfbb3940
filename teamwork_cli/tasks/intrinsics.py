"""Intrinsic decomposition of a scene photo (paper section 5; docs/conventions.md section 1, intrinsic channels).

An adapter with `image.in` and any intrinsic outputs (the published SD3 decomposition checkpoint has diffuse,
specular, roughness, normals, depth, albedo, inverseshading, diffuseshading, residual). Channels the adapter does
not output but can be derived are derived: diffuseshading <-> inverseshading (S / (1 + S)) ** (1 / 2.2), and
glTF metallic from diffuse + specular. Only the teammates a request needs are run; the others stay inactive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from teamwork_cli.core.conventions import diffuse_specular_to_basecolor, inverse_shading, shading_from_inverse
from teamwork_cli.core.encoding import MAX_SHADING, decode
from teamwork_cli.graphics.periodic import seamless_maps
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.tiling import WindowOptions
from teamwork_cli.tasks import ensemble as ensemble_

# Derived channel -> the adapter outputs it can be computed from (any one of the alternatives).
DERIVED: dict[str, tuple[tuple[str, ...], ...]] = {
    "diffuseshading": (("inverseshading",),),
    "inverseshading": (("diffuseshading",),),
    "metallic": (("diffuse", "specular"),),
}


def check_team(pipe: TeamPipeline) -> None:
    ins = [t.channel for t in pipe.layout.inputs]
    if ins != ["image"]:
        raise ValueError(
            f"adapter {pipe.info.path} is not an intrinsics adapter: its inputs are {ins or 'none'}; "
            "intrinsics needs exactly image.in (and intrinsic outputs such as albedo.out)"
        )


def available(pipe: TeamPipeline) -> list[str]:
    """Channels this adapter can give: its outputs, then the derivable ones."""
    outs = [t.channel for t in pipe.layout.outputs]
    derived = [c for c, alts in DERIVED.items() if c not in outs and any(set(a) <= set(outs) for a in alts)]
    return outs + derived


def teammates_for(pipe: TeamPipeline, channels: list[str]) -> list[str]:
    """The output teammates to run for these channels (raises naming the available channels otherwise)."""
    avail = available(pipe)
    unknown = [c for c in channels if c not in avail]
    if unknown or not channels:
        raise ValueError(
            f"request: {', '.join(unknown) or '(nothing)'} not available; this adapter gives {', '.join(avail)}"
        )
    outs = {t.channel for t in pipe.layout.outputs}
    need: list[str] = []
    for c in channels:
        srcs = [c] if c in outs else next(a for a in DERIVED[c] if set(a) <= outs)
        need += [s for s in srcs if s not in need]
    return [f"{c}.out" for c in need]


def estimate(
    pipe: TeamPipeline,
    photo: Tensor,
    channels: list[str] | None = None,
    *,
    steps: int = 1,
    seed: int | Sequence[int] = 0,
    resolution: int | None = None,
    ensemble: int = 1,
    callback: Callable[[int, int], None] | None = None,
    windows: WindowOptions | None = None,
) -> dict[str, Tensor]:
    """Requested channels (values, [N, C, H, W]) of photos given as stored ([N, 3, H, W] sRGB in [0, 1]).

    ensemble: average this many samples with different noise (`tasks.ensemble`)."""
    check_team(pipe)
    channels = available(pipe) if channels is None else list(channels)
    run = teammates_for(pipe, channels)
    ensemble = 1 if pipe.one_step else ensemble  # a one-step adapter is deterministic: samples would agree
    inputs, seeds = ensemble_.repeat({"image.in": photo}, seed, ensemble)
    out = pipe(inputs, outputs=run, steps=steps, seed=seeds, resolution=resolution, callback=callback, windows=windows)
    got = ensemble_.mean({n.split(".")[0]: decode(n.split(".")[0], x) for n, x in out.items()}, ensemble)
    if windows is not None and windows.tileable:  # exactly periodic in the edge band, all maps alike (the
        # derived ones below follow pixel by pixel)
        got = seamless_maps(got, pipe.plan(*photo.shape[-2:], resolution, windows).band(photo.shape[-2]))
    if "diffuseshading" not in got and "inverseshading" in got:
        got["diffuseshading"] = shading_from_inverse(got["inverseshading"], max_shading=MAX_SHADING)
    if "inverseshading" not in got and "diffuseshading" in got:
        got["inverseshading"] = inverse_shading(got["diffuseshading"])
    if "metallic" not in got and {"diffuse", "specular"} <= got.keys():
        _, metal = diffuse_specular_to_basecolor(got["diffuse"], got["specular"], axis=1)
        got["metallic"] = metal.float().clamp(0, 1)
    return {c: got[c].to(torch.float32) for c in channels}
