"""Material synthesis: every map of a material and its flash render generated jointly from noise (paper section 5).

A team with no inputs (preset `synthesize`: diffuse, specular, roughness, normals, image). The image teammate is
trained to be the colocated flash render of the maps (docs/conventions.md section 3), so `coherence_rmse` (the image
teammate against the render of the generated maps) measures how well the teammates agree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from teamwork_cli.adapters.checkpoint import read_adapter_info
from teamwork_cli.core.conventions import diffuse_specular_to_basecolor
from teamwork_cli.core.encoding import decode
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.graphics import render as R
from teamwork_cli.graphics.periodic import seamless_maps
from teamwork_cli.models.loading import EMBEDDED_BASE_NAMES
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.pipelines.tiling import WindowOptions

MAPS = ("diffuse", "specular", "roughness", "normals")


def check_team(pipe: TeamPipeline) -> list[str]:
    if pipe.layout.inputs:
        raise ValueError(
            f"adapter {pipe.info.path} has inputs ({', '.join(t.name for t in pipe.layout.inputs)}); "
            "synthesis needs a team of outputs only, e.g. the synthesize preset"
        )
    return [t.channel for t in pipe.layout.outputs]


def synthesize(
    pipe: TeamPipeline,
    count: int,
    size: tuple[int, int],
    *,
    steps: int = 16,
    seed: int = 0,
    callback: Callable[[int, int], None] | None = None,
    windows: WindowOptions | None = None,
) -> list[dict[str, Tensor]]:
    """`count` materials (values, [1, C, H, W] per channel); material i is made from seed + i alone, so any one of
    them can be made again by itself. Adds glTF basecolor/metallic when the team has diffuse and specular."""
    channels = check_team(pipe)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if min(size) < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size[1]}x{size[0]}")
    result = []
    for i in range(count):

        def step(k: int, n: int, i: int = i) -> None:
            if callback:
                callback(i * n + k, count * n)

        out = pipe({}, steps=steps, seed=seed + i, size=size, num_images=1, callback=step, windows=windows)
        maps = {c: decode(c, out[f"{c}.out"]).float() for c in channels}
        if windows is not None and windows.tileable:  # exactly periodic in the edge band, all maps alike
            maps = seamless_maps(maps, pipe.plan(*size, None, windows).band(size[0]))
        if {"diffuse", "specular"} <= maps.keys():
            base, metal = diffuse_specular_to_basecolor(maps["diffuse"], maps["specular"], axis=1)
            maps["basecolor"], maps["metallic"] = base.float().clamp(0, 1), metal.float().clamp(0, 1)
        result.append(maps)
    return result


def coherence_rmse(maps: dict[str, Tensor]) -> float:
    """RMSE (sRGB photos in [0, 1]) between the image teammate and the flash render of the maps beside it."""
    photo = R.to_photo(R.render_flash(*(maps[m] for m in MAPS)))
    return ((photo - R.to_photo(maps["image"])) ** 2).mean().sqrt().item()


def load_with_prompt(
    adapter: str, base: str | None, prompt: str, device: str, dtype: str, transformer: str | None = None
) -> TeamPipeline:
    """TeamPipeline.load with every teammate's prompt set to `prompt` (docs/conventions.md section 6); the embedded
    model is unconditional, so a prompt needs a diffusers --base. transformer: a GGUF file of the base's
    transformer (--transformer)."""
    if not prompt:
        return TeamPipeline.load(adapter, base=base, device=device, dtype=dtype, transformer=transformer)
    name = base if base is not None else read_adapter_info(adapter).base_model
    if name is None or name in EMBEDDED_BASE_NAMES or (Path(name) / "teamwork.json").is_file():
        raise TeamworkError(
            "the embedded model takes no prompt",
            "leave out --prompt, or use a text-conditioned "
            "--base (SD3, SDXL, SD2, Flux, FLUX.2-klein or Z-Image) with an adapter trained for it",
        )
    return TeamPipeline.load(adapter, base=base, device=device, dtype=dtype, prompt=prompt, transformer=transformer)
