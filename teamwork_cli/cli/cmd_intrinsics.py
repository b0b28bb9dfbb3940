"""`teamwork intrinsics PHOTO... -o DIR`: albedo, shading, normals, depth, ... of scene photos."""

from __future__ import annotations

from pathlib import Path

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P
from teamwork_cli.cli import tasks_common as TC


def intrinsics(
    inputs: list[str] = typer.Argument(..., metavar="PHOTO", help="Scene photos: files, folders or quoted globs."),
    out: Path = O.OUT_OPT,
    request: str = typer.Option(
        None,
        "--request",
        "-r",
        help="Comma-separated channels to compute, e.g. "
        "albedo,normals (default: all the adapter gives); the others are not run, which "
        "is faster but changes the requested ones a little (teammates read each other).",
    ),
    adapter: str = typer.Option(
        None,
        "--adapter",
        help="Teamwork adapter (.safetensors, published format): a file, a shipped adapter's name or "
        "owner/repo/file.safetensors on the hub; default: the shipped intrinsics adapter (one-step). "
        "intrinsics-diffusion is its diffusion adapter, sampled in --steps.",
    ),
    base: str = O.BASE_OPT,
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(1, "--steps", min=1, help=O.STEPS_HELP),
    ensemble: int = typer.Option(
        None,
        "--ensemble",
        min=1,
        help="Average the channels of this many samples "
        "(different noise, one batch): less noise, cost x N. Default: 2 on a GPU or a CPU "
        "with native bf16, else 1 (as svbrdf); one-step adapters (the shipped one) run once.",
    ),
    seed: int = O.SEED_OPT,
    tileable: bool = O.TILEABLE_OPT,
    window: int = O.WINDOW_OPT,
    overlap: int = O.OVERLAP_OPT,
    sync: str = O.SYNC_OPT,
    sync_strength: float = O.SYNC_STRENGTH_OPT,
    resolution: int = O.RES_OPT,
    fmt: str = O.FORMAT_OPT,
    device: str = O.DEVICE_OPT,
    dtype: str = O.DTYPE_OPT,
    overwrite: bool = O.OVERWRITE_OPT,
    as_json: bool = O.JSON_OPT,
    verbose: bool = O.VERBOSE_OPT,
    max_pixels: int = O.MAX_PIXELS_OPT,
    exr_normals: str = O.EXR_NORMALS_OPT,
) -> int:
    """Decompose photos into intrinsic channels: albedo, diffuseshading, inverseshading, residual, normals
    (camera space), depth (relative), roughness, metallic, diffuse, specular: whichever the adapter gives.

    Writes DIR/<stem>_<channel>.<ext>. diffuseshading is unbounded, so it is always written as EXR (float16, or
    float32 with --format exr32); inverseshading, its bounded picture (S / (1 + S)) ** (1 / 2.2), follows --format.
    The published SD3 decomposition checkpoint works too (docs/conventions.md section 5):
    --adapter samsartor/teamwork-release/decomposition_heterogeneous_sd3.safetensors
    --base stabilityai/stable-diffusion-3-medium-diffusers

    Example: teamwork intrinsics room.jpg -o intrinsics/ --request albedo,normals
    """
    # The library (torch, diffusers) loads here, not at start-up: `teamwork --help` stays fast.
    from teamwork_cli.materials import outputs
    from teamwork_cli.tasks import intrinsics as task
    from teamwork_cli.tasks.ensemble import default_size as default_ensemble

    ext, bits = O.split_format(fmt)
    P.use_max_pixels(max_pixels)
    files = C.inputs_or_fail(inputs)
    windows = O.window_options(
        tileable, window, overlap, sync, sync_strength, automatic=True
    )  # checked before the model loads
    files = P.plan_inputs(files, "intrinsics", resolution=resolution, windows=windows)
    if not files:
        return C.refused_all(files, as_json)
    pipe = TC.load_team("intrinsics", adapter, base, device, dtype, transformer)
    task.check_team(pipe)
    if ensemble is None:
        ensemble = default_ensemble(pipe.device.type, pipe.autocast, pipe.one_step)
    channels = task.available(pipe) if request is None else [c.strip() for c in request.split(",") if c.strip()]
    try:
        task.teammates_for(pipe, channels)
    except ValueError as e:
        raise typer.BadParameter(
            f"{str(e).removeprefix('request: ')} (names separated by commas)", param_hint="--request"
        ) from None
    formats = {c: (("exr", 32 if fmt == "exr32" else 16) if c == "diffuseshading" else (ext, bits)) for c in channels}

    def work(path: Path) -> list[Path]:
        plan = outputs.plan_outputs(out, path.stem, formats, overwrite, exr_normals=exr_normals)
        photo = C.read_channel(path, "image")
        from teamwork_cli.core.encoding import encode

        with C.progress_bar() as bar:
            job = bar.add_task(path.name, total=steps)
            maps = task.estimate(
                pipe,
                encode("image", photo),
                channels,
                steps=steps,
                seed=seed,
                resolution=resolution,
                ensemble=ensemble,
                callback=lambda i, n: bar.update(job, completed=i, total=n),
                windows=windows,
            )
        return outputs.write_outputs(plan, maps, overwrite)

    return C.run_batch(files, work, as_json=as_json, verbose=verbose)
