"""Neural shading: an image from intrinsic buffers (albedo, normals, and optionally roughness, metallic, depth,
basecolor).

Buffers follow docs/conventions.md section 1 (albedo is the diffuse reflectance, normals camera space, depth relative).
Buffers carry no lighting, so the shader renders under the one it learned: the studio rig of `graphics.scene` (a
white key light above and right of the camera, a weak sky and floor bounce, fixed exposure), with its cast shadows.
An optional buffer the user does not have is given to the adapter as a neutral constant (`neutral`), because
`TeamPipeline` runs every input teammate of an adapter; training on `procedural:scenes` replaces the optional
buffers by the same constants at random (`training.task_data.NEUTRAL_P`), so the adapter knows what "unknown"
looks like.
An adapter with a `deferred.in` teammate (preset shade) is also given the buffers' classical local shading
(`deferred`), computed here from the same buffers it sees, and refines it: shadows, falloff, metal colours.
Basecolor matters for metals only: docs/conventions.md's albedo (diffuse reflectance) of a metal is black, so without
it a metal's colour is unknown (grey); an artist's glTF maps have it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from teamwork_cli.core.encoding import decode
from teamwork_cli.graphics.buffers import DERIVED, OPTIONAL, REQUIRED, albedo_from_basecolor, neutral, with_deferred
from teamwork_cli.graphics.periodic import seamless_maps
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.tiling import WindowOptions


def check_team(pipe: TeamPipeline) -> list[str]:
    """The adapter's input buffers (without `deferred`); it must output image and take the required buffers."""
    ins = [t.channel for t in pipe.layout.inputs if t.channel != DERIVED]
    outs = [t.channel for t in pipe.layout.outputs]
    if "image" not in outs or not set(REQUIRED) <= set(ins):
        raise ValueError(
            f"adapter {pipe.info.path} is not a shading adapter: inputs {ins}, outputs {outs}; "
            f"shading needs {', '.join(c + '.in' for c in REQUIRED)} and image.out"
        )
    return ins


def shade(
    pipe: TeamPipeline,
    buffers: dict[str, Tensor],
    *,
    steps: int = 4,
    seed: int = 0,
    resolution: int | None = None,
    callback: Callable[[int, int], None] | None = None,
    windows: WindowOptions | None = None,
) -> Tensor:
    """Linear radiance [N, 3, H, W] from buffers in file encoding; missing optional ones are neutral, a missing
    albedo comes from basecolor and metallic (`albedo_from_basecolor`)."""
    ins = check_team(pipe)
    if "albedo" not in buffers and "basecolor" in buffers:  # used for the albedo even if the adapter lacks it
        buffers = albedo_from_basecolor(buffers)
        if "basecolor" not in ins:
            buffers = {c: v for c, v in buffers.items() if c != "basecolor"}
    missing = [c for c in ins if c not in buffers and c not in OPTIONAL]
    if missing:
        raise ValueError(
            f"buffers: missing {', '.join(missing)}; this adapter needs {', '.join(missing)} "
            f"(optional: {', '.join(c for c in ins if c in OPTIONAL) or 'none'})"
        )
    extra = [c for c in buffers if c not in ins]
    if extra:
        raise ValueError(f"buffers: {', '.join(extra)} are not inputs of this adapter ({', '.join(ins)})")
    ref = buffers[REQUIRED[0]]
    sizes = {c: tuple(x.shape[-2:]) for c, x in buffers.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            "buffers must all have one size; got "
            + ", ".join(f"{c} {s[1]}x{s[0]}" for c, s in sizes.items())
            + " (width x height)"
        )
    n, _, h, w = ref.shape
    inputs = {f"{c}.in": buffers[c] if c in buffers else neutral(c, n, h, w) for c in ins}
    if pipe.layout.has(f"{DERIVED}.in"):  # from the buffers the adapter sees; absent ones neutral, as there
        full = {c: inputs[f"{c}.in"] if f"{c}.in" in inputs else neutral(c, n, h, w) for c in REQUIRED + OPTIONAL}
        inputs[f"{DERIVED}.in"] = with_deferred(full)
    out = pipe(
        inputs,
        outputs=["image.out"],
        steps=steps,
        seed=seed,
        resolution=resolution,
        callback=callback,
        windows=windows,
    )
    image = decode("image", out["image.out"])
    if windows is not None and windows.tileable:  # exactly periodic in the edge band
        image = seamless_maps({"image": image}, pipe.plan(h, w, resolution, windows).band(h))["image"]
    return image
