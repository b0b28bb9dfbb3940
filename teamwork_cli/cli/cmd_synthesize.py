"""`teamwork synthesize -n 8 -o DIR`: complete materials generated from noise."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P
from teamwork_cli.cli import tasks_common as TC


def _size(text: str) -> tuple[int, int]:
    """'256' or 'WxH' -> (height, width)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 8:
        raise typer.BadParameter(f"must be N or WxH with sides of at least 8 pixels; got {text!r}", param_hint="--size")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[1], parts[0])


def synthesize(
    count: int = typer.Option(8, "-n", "--count", help="How many materials to make."),
    out: Path = O.OUT_OPT,
    size: str = typer.Option("256", "--size", help="Map size: N (square) or WxH."),
    prompt: str = typer.Option(
        "",
        "--prompt",
        help="Text prompt for every teammate (text-conditioned bases only; the embedded model is unconditional).",
    ),
    stem: str = typer.Option("material", "--stem", help="File names are <stem>_<NNN>_<channel>.<ext>."),
    adapter: str = typer.Option(
        None, "--adapter", help="Teamwork adapter (.safetensors); default: the shipped synthesize adapter."
    ),
    base: str = O.BASE_OPT,
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(16, "--steps", min=1, help="Sampling steps (generation needs more than estimation)."),
    seed: int = typer.Option(
        0,
        "--seed",
        min=0,
        max=O.SEED_MAX,
        help="Material i is made from seed + i: the same seed gives the same "
        "materials, and -n 1 --seed S+i remakes material i.",
    ),
    tileable: bool = O.TILEABLE_OPT,
    window: int = O.WINDOW_OPT,
    overlap: int = O.OVERLAP_OPT,
    sync: str = O.SYNC_OPT,
    sync_strength: float = O.SYNC_STRENGTH_OPT,
    fmt: str = O.FORMAT_OPT,
    device: str = O.DEVICE_OPT,
    dtype: str = O.DTYPE_OPT,
    overwrite: bool = O.OVERWRITE_OPT,
    as_json: bool = O.JSON_OPT,
    verbose: bool = O.VERBOSE_OPT,
    max_pixels: int = O.MAX_PIXELS_OPT,
    exr_normals: str = O.EXR_NORMALS_OPT,
) -> int:
    """Generate materials: diffuse, specular, roughness and normal maps plus `image`, their flash render as the
    model drew it, all denoised together; also glTF basecolor and metallic.

    Writes DIR/<stem>_000_<channel>.<ext>, DIR/<stem>_001_<channel>.<ext>, ...

    Example: teamwork synthesize -n 8 -o materials/ --seed 1
    """
    # The library (torch, diffusers) loads here, not at start-up: `teamwork --help` stays fast.
    from teamwork_cli.materials import outputs
    from teamwork_cli.tasks import synthesize as task

    ext, bits = O.split_format(fmt)
    if count < 1:
        raise typer.BadParameter(f"must be at least 1; got {count}", param_hint="-n")
    if not stem or stem != Path(stem).name or stem in (".", ".."):
        raise typer.BadParameter(
            f"a file name prefix without folders; got {stem!r} (use -o for the folder)", param_hint="--stem"
        )
    P.use_max_pixels(max_pixels)
    hw = _size(size)
    windows = O.window_options(tileable, window, overlap, sync, sync_strength)  # checked before the model loads
    P.check_size("synthesize", hw[1], hw[0], windows, "--size")
    pipe = task.load_with_prompt(TC.adapter_path("synthesize", adapter), base, prompt, device, dtype, transformer)
    channels = task.check_team(pipe)
    if {"diffuse", "specular"} <= set(channels):
        channels += ["basecolor", "metallic"]
    stems = [f"{stem}_{i:03d}" for i in range(count)]
    formats = {c: (ext, bits) for c in channels}
    plans = [outputs.plan_outputs(out, s, formats, overwrite, exr_normals=exr_normals) for s in stems]
    with C.progress_bar() as bar:
        job = bar.add_task(f"{count} materials", total=count * steps)
        for i, plan in enumerate(plans):  # written as they come: an interruption keeps the finished ones
            t0 = time.perf_counter()
            (maps,) = task.synthesize(
                pipe,
                1,
                hw,
                steps=steps,
                seed=seed + i,
                callback=lambda k, n, i=i: bar.update(job, completed=i * steps + k),
                windows=windows,
            )
            C.emit(stems[i], outputs.write_outputs(plan, maps, overwrite), as_json)  # a material: its stem
            if verbose:
                C.report_usage(stems[i], time.perf_counter() - t0)
    return 0
