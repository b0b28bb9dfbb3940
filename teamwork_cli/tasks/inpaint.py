"""Fill the masked region of an image, or of every map of a material at once (paper section 5).

The team sees each map with the masked pixels blanked (so it cannot copy what is to be replaced) and the mask
itself (`mask.in`, 1 = fill). Blanked means mid grey, or, for an adapter trained with `finetune --hole-fill
harmonic` (recorded as teamwork.hole_fill), the harmonic fill of the hole (`holefill`): a smooth guess the team
then refines. The result is composited with the input in the *file* domain: outside the mask every pixel is the
input's stored value, so a map written at the input's bit depth is bit-exact there.
Training data blanks the same way (`training.task_data.inpaint_source`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from teamwork_cli.adapters.checkpoint import AdapterInfo
from teamwork_cli.core.channels import channel_spec
from teamwork_cli.core.conventions import srgb_to_linear
from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.core.layout import TeamLayout
from teamwork_cli.graphics.holefill import HOLE_FILLS, blank
from teamwork_cli.graphics.periodic import seamless_maps
from teamwork_cli.materials.read import float_normals_encoded, read_image
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.tiling import WindowOptions


def check_team(team: TeamPipeline | AdapterInfo) -> list[str]:
    """The channels an inpainting adapter fills: X.out with X.in for each, plus mask.in. An adapter's info (its
    header) is enough, so a command can check its inputs against them before loading the model."""
    info = team.info if isinstance(team, TeamPipeline) else team
    layout = team.layout if isinstance(team, TeamPipeline) else TeamLayout.from_names(info.teammates)
    ins = {t.channel for t in layout.inputs}
    outs = [t.channel for t in layout.outputs]
    if "mask" not in ins or not outs or not set(outs) <= ins:
        raise ValueError(
            f"adapter {info.path} is not an inpainting adapter: it has inputs {sorted(ins)} and "
            f"outputs {outs}; inpainting needs mask.in and, for every X.out, X.in"
        )
    return outs


def read_encoded(path: str | Path, channel: str) -> Tensor:
    """A map as [1, C, H, W] in its [0, 1] file encoding: integer files give exactly their stored values."""
    return read_both(path, channel).encoded


class MapFile(NamedTuple):
    encoded: Tensor  # [1, C, H, W] in the [0, 1] file encoding: what the team sees (float files clipped)
    values: Tensor  # the exact values stored: what `inpaint` keeps outside the mask (HDR, negatives included)
    alpha: np.ndarray | None  # H x W, if the file has an alpha: `teamwork inpaint` writes it back unchanged
    grey: bool = False  # a single-channel file read for a colour channel: `teamwork inpaint` writes it grey
    signed_normals: bool = False  # a float normal map holding raw n: `teamwork inpaint` writes it raw again


def read_both(path: str | Path, channel: str) -> MapFile:
    """A map as the team sees it and as the file stores it, from one read of the file."""
    img = read_image(path)
    px = img.pixels[..., : 3 if img.pixels.shape[2] >= 3 else 1]
    spec = channel_spec(channel)
    if spec.encoding == "vector" and px.shape[2] != 3:
        raise ValueError(f"{path}: channel {channel!r} needs a 3-component (RGB) file, this one is grey")
    if spec.is_grey and px.shape[2] == 3:
        px = px.mean(axis=2, keepdims=True)
    elif not spec.is_grey and px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(px, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    alpha = img.pixels[..., -1].copy() if img.has_alpha else None
    grey = img.pixels.shape[2] <= 2 and not spec.is_grey  # grey or grey + alpha, repeated to RGB above
    if img.is_float and channel == "normals" and float_normals_encoded(px):  # (n+1)/2, as PNG (conventions 1)
        return MapFile(x.clamp(0, 1), x * 2 - 1, alpha, grey)
    if img.is_float:  # EXR / float TIFF hold values, not an encoding
        return MapFile(encode(channel, x).clamp(0, 1), x, alpha, grey, signed_normals=channel == "normals")
    x = x.clamp(0, 1)
    return MapFile(x, stored_value(channel, x), alpha, grey)


def to_grey(value: Tensor, mask: Tensor) -> Tensor:
    """[N, 3, H, W] -> [N, 1, H, W], the fill of a grey file: the mean colour in the hole; outside it the three
    components all hold the file's value, so the first is taken as is (a float mean of three could round)."""
    return torch.where(mask > 0.5, value.mean(dim=1, keepdim=True), value[:, :1])


def stored_value(channel: str, encoded: Tensor) -> Tensor:
    """The value whose file encoding is exactly `encoded` (vectors *not* renormalised, unlike `decode`)."""
    enc = channel_spec(channel).encoding
    if enc == "srgb":
        return srgb_to_linear(encoded)
    if enc == "vector":
        return encoded * 2 - 1
    return decode(channel, encoded)


def read_mask(path: str | Path) -> Tensor:
    """[1, 1, H, W] binary mask, 1 = fill: white, or any bright colour (a channel > 0.5: a stroke painted in pure
    red counts). An image with transparent pixels (a layer exported from a paint program) is read from its alpha
    instead, whatever colour the strokes and the transparent pixels hold: opaque = fill."""
    img = read_image(path)
    colour = img.pixels[..., : 3 if img.pixels.shape[2] >= 3 else 1]
    if img.has_alpha and img.pixels[..., -1].min() < 0.5:
        m = img.pixels[..., -1]
    else:  # opaque everywhere: the alpha says nothing
        m = colour.max(axis=2)
    return torch.from_numpy(np.ascontiguousarray(m > 0.5)).float()[None, None]


def check_mask(mask: Tensor) -> str | None:
    """Raises if the mask leaves nothing to fill from; returns a note if it selects nothing (output = input)."""
    if bool((mask > 0.5).all()):
        raise ValueError("the mask covers the whole image: there is nothing around the hole to fill it from")
    if not bool((mask > 0.5).any()):
        return "the mask is empty (no pixel above 50%): the outputs are the inputs"
    return None


def hole_fill(pipe: TeamPipeline) -> str:
    """How the adapter was shown holes in training (metadata teamwork.hole_fill; older files: grey)."""
    fill = pipe.info.metadata.get("teamwork.hole_fill", "grey")
    if fill not in HOLE_FILLS:
        raise ValueError(
            f"adapter {pipe.info.path}: metadata teamwork.hole_fill={fill!r} is not one of "
            f"{', '.join(HOLE_FILLS)} (a newer teamwork wrote it?)"
        )
    return fill


def wraps(x: Tensor) -> Tensor:
    """Bool [N]: whether each map of [N, C, H, W] already wraps around: its mean step from the last row to the
    first (and last column to first) at most 1.5 times the mean step between the rows (columns) next to those
    edges, so a smooth periodic map passes wherever its seam falls and a constant one (0 against 0) does too."""
    x = x.float()
    ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for dim in (-2, -1):
        n = x.shape[dim]
        across = (x.select(dim, -1) - x.select(dim, 0)).abs().flatten(1).mean(1)
        near = (x.select(dim, 1) - x.select(dim, 0)).abs() + (x.select(dim, n - 1) - x.select(dim, n - 2)).abs()
        ok &= across <= 1.5 * near.flatten(1).mean(1) / 2
    return ok


def inpaint(
    pipe: TeamPipeline,
    maps: dict[str, Tensor],
    mask: Tensor,
    *,
    steps: int = 8,
    seed: int = 0,
    resolution: int | None = None,
    callback: Callable[[int, int], None] | None = None,
    keep_context: bool = True,
    keep: dict[str, Tensor] | None = None,
    windows: WindowOptions | None = None,
) -> dict[str, Tensor]:
    """Maps (channel values, [N, C, H, W]) with the mask's region filled; `maps` in file encoding, mask binary.

    keep: the values to return outside the mask (default: those `maps` encode); give the exact values of a
    float file (`read_both`), which its [0, 1] encoding clips.

    keep_context: hold the outputs' unmasked region to the input at every step, so the fill is sampled in
    agreement with its surroundings (`pipelines.sampling.sample_team`'s `known`); otherwise the team redraws the
    whole map and only the final composite restores the outside.
    windows: process in windows (`TeamPipeline`); with windows.tileable a band one overlap wide along every edge
    is filled too (added to the mask), so the maps wrap around; a map that wraps already (`wraps`: a constant
    one, say) keeps its own pixels in that band, which the refill would only disturb."""
    channels = check_team(pipe)
    missing = [c for c in channels if c not in maps]
    if missing:
        raise ValueError(f"maps: missing {', '.join(missing)}; this adapter fills {', '.join(channels)}")
    sizes = {c: tuple(x.shape[-2:]) for c, x in maps.items()}
    if any(s != tuple(mask.shape[-2:]) for s in sizes.values()):
        raise ValueError(
            f"mask is {mask.shape[-1]}x{mask.shape[-2]} but the maps are "
            f"{', '.join(f'{c} {s[1]}x{s[0]}' for c, s in sizes.items())} (width x height)"
        )
    mask = (mask > 0.5).float()
    hole = mask
    plan = pipe.plan(*mask.shape[-2:], resolution, windows)
    if plan.tile:  # the edges are refilled so the result wraps: kept pixels there would keep the photo's seam
        band = plan.band(mask.shape[-2])
        mask = mask.clone()
        mask[..., :band, :], mask[..., -band:, :], mask[..., :, :band], mask[..., :, -band:] = 1, 1, 1, 1
    for m in mask:  # per image: a hole with no surroundings cannot be filled from them
        check_mask(m)
    fill = hole_fill(pipe)
    inputs = {f"{c}.in": blank(maps[c], mask, fill) for c in channels}
    inputs["mask.in"] = mask.expand(maps[channels[0]].shape[0], -1, -1, -1)
    # Blanked, like the inputs: a VAE's latent cells near the hole would otherwise encode the hidden pixels.
    guide = {"known": {f"{c}.out": inputs[f"{c}.in"] for c in channels}, "known_mask": 1 - mask} if keep_context else {}
    out = pipe(
        inputs,
        outputs=[f"{c}.out" for c in channels],
        steps=steps,
        seed=seed,
        resolution=resolution,
        callback=callback,
        windows=windows,
        **guide,
    )
    keep = keep or {}
    result = {}
    for c in channels:
        filled = mask
        if plan.tile:  # per image: where the input map wraps already only its hole is filled
            filled = torch.where(wraps(maps[c]).view(-1, 1, 1, 1), hole, mask)
        result[c] = torch.where(
            filled > 0.5, decode(c, out[f"{c}.out"]), keep[c] if c in keep else stored_value(c, maps[c])
        )
    # exactly periodic within the refilled edge band (the pixels beyond it are returned as they are)
    return seamless_maps(result, plan.band(mask.shape[-2])) if plan.tile else result
