"""`teamwork svbrdf PHOTO... -o DIR`: material maps from flash photos."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P

if TYPE_CHECKING:
    import torch


def svbrdf(
    inputs: list[str] = typer.Argument(..., metavar="PHOTO", help="Flash photos: files, folders or quoted globs."),
    out: Path = O.OUT_OPT,
    adapter: str = typer.Option(
        None,
        "--adapter",
        help="Teamwork adapter (.safetensors, published format): a file, a shipped adapter's name "
        "or owner/repo/file.safetensors on the hub; default: the shipped svbrdf adapter of "
        "the embedded model (one-step). svbrdf-diffusion is its diffusion adapter, sampled in --steps.",
    ),
    base: str = O.BASE_OPT,
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(1, "--steps", min=1, help=O.STEPS_HELP),
    ensemble: int = typer.Option(
        None,
        "--ensemble",
        min=1,
        help="Average the maps of this many samples "
        "(different noise, one batch): less noise, cost x N. Default: 2 on a GPU or a CPU "
        "with native bf16, 1 on other CPUs; one-step adapters (the shipped one) run once.",
    ),
    fit: str = typer.Option(
        "levels",
        "--fit",
        autocompletion=O.completer(("levels", "diffuse", "none")),
        help="After the network, from the photo: levels (fit the maps' "
        "global levels: roughness, specular, diffuse gain, normal strength, then solve the "
        "diffuse map per pixel given the others; a few seconds), diffuse (the per-pixel solve "
        "only, instant) or none (the network's maps as they are).",
        metavar="levels|diffuse|none",
    ),
    seed: int = O.SEED_OPT,
    tileable: bool = O.TILEABLE_OPT,
    window: int = O.WINDOW_OPT,
    overlap: int = O.OVERLAP_OPT,
    sync: str = O.SYNC_OPT,
    sync_strength: float = O.SYNC_STRENGTH_OPT,
    resolution: int = O.RES_OPT,
    fov: float = typer.Option(45.0, "--fov", help="Camera field of view in degrees, for the halfway map."),
    fmt: str = O.FORMAT_OPT,
    gltf: bool = typer.Option(
        False, "--gltf", help="Also write <stem>.gltf, a textured quad material (its extra textures beside it)."
    ),
    glb: bool = O.GLB_OPT,
    gltf_size: float = O.GLTF_SIZE_OPT,
    batch_size: int = O.BATCH_OPT,
    device: str = O.DEVICE_OPT,
    dtype: str = O.DTYPE_OPT,
    offload: bool = O.OFFLOAD_OPT,
    attention_slicing: bool = O.SLICING_OPT,
    compile_model: bool = O.COMPILE_OPT,
    guidance: float = O.GUIDANCE_OPT,
    overwrite: bool = O.OVERWRITE_OPT,
    as_json: bool = O.JSON_OPT,
    verbose: bool = O.VERBOSE_OPT,
    max_pixels: int = O.MAX_PIXELS_OPT,
    normal_convention: str = O.NORMALS_OPT,
    exr_normals: str = O.EXR_NORMALS_OPT,
) -> int:
    """Estimate diffuse, specular, roughness and normal maps (plus glTF basecolor/metallic) from photos taken
    with the flash on, camera and light together, looking straight at a flat material.

    Writes DIR/<stem>_{diffuse,specular,roughness,normals,basecolor,metallic,render}.<ext>; `render` is the
    estimate re-rendered under the photo's flash, to compare with the photo. Lists the files on stdout.

    Many photos on several GPUs: accelerate launch -m teamwork_cli svbrdf FOLDER -o DIR (each process takes
    every P-th file, on its own GPU).

    Example: teamwork svbrdf photo.jpg -o maps/
    """
    # The library (torch, diffusers) loads here, not at start-up: `teamwork --help` stays fast.
    import torch

    from teamwork_cli.core.conventions import normals_gl_to_dx
    from teamwork_cli.core.encoding import encode
    from teamwork_cli.core.rows import map_rows
    from teamwork_cli.materials import outputs
    from teamwork_cli.materials.gltf import export_gltf, gltf_files
    from teamwork_cli.models.hub.resolve import task_adapter
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.tasks import svbrdf as task
    from teamwork_cli.tasks.ensemble import default_size as default_ensemble

    ext, bits = O.split_format(fmt)
    if fit not in task.FITS:
        raise typer.BadParameter(f"must be one of {', '.join(task.FITS)}; got {fit!r}", param_hint="--fit")
    if not 0 < fov < 180:
        raise typer.BadParameter(f"must be between 0 and 180 degrees; got {fov}", param_hint="--fov")
    if (gltf or glb) and normal_convention == "directx":
        raise typer.BadParameter(
            "glTF normal maps are OpenGL (+Y up): drop --gltf/--glb or use opengl", param_hint="--normal-convention"
        )
    O.check_gltf_size(gltf_size, gltf, glb)
    kinds = [binary for binary, wanted in ((False, gltf), (True, glb)) if wanted]
    P.use_max_pixels(max_pixels)
    files = C.inputs_or_fail(inputs)
    # Checked before the model loads; a photo over 1024 x 1024 px goes in windows even without --window.
    windows = O.window_options(tileable, window, overlap, sync, sync_strength, batch_size, automatic=True)
    files = P.plan_inputs(files, "svbrdf", resolution=resolution, windows=windows)
    if not files:
        return C.refused_all(files, as_json)
    adapter = str(task_adapter("svbrdf", adapter))  # a local file, a shipped name, or owner/repo/file on the hub
    pipe = TeamPipeline.load(
        adapter,
        base=base,
        device=device,
        dtype=dtype,
        offload=offload,
        attention_slicing=attention_slicing,
        compile=compile_model,
        guidance=guidance,
        transformer=transformer,
    )
    task.check_team(pipe)
    channels = list(task.OUTPUTS)
    if ensemble is None:
        ensemble = default_ensemble(pipe.device.type, pipe.autocast, pipe.one_step)

    def read(path: Path) -> tuple[tuple[int, int], list]:
        formats = {c: (ext, bits) for c in channels}
        plan = outputs.plan_outputs(out, path.stem, formats, overwrite, exr_normals=exr_normals)  # before the work
        if not overwrite:
            outputs.refuse_existing(p for b in kinds for p in gltf_files(out, path.stem, plan.paths, binary=b))
        photo = C.read_channel(path, "image")
        h, w = photo.shape[-2:]
        short = min(h, w) if resolution is None else round(min(h, w) * resolution / max(h, w))  # as processed
        if short < 16:
            raise ValueError(
                f"{path}: image is {w}x{h}; its shorter side must be at least 16 px as processed "
                "(at --resolution, the longer side's size)"
            )
        # [plan, stored photo]: the photo is kept as the model and the fit read it (sRGB), and let go of once
        # the maps are made, so a large photo's canvas is not held while they are written.
        return tuple(photo.shape[-2:]), [plan, map_rows(functools.partial(encode, "image"), photo)]

    def infer(batch: list[Path], data: list[list]) -> list[dict[str, torch.Tensor]]:
        with C.progress_bar() as bar:
            name = C.batch_label(batch)
            job = bar.add_task(name, total=steps)
            # Every file gets --seed, as it would alone (one seed per image: batching changes nothing).
            maps = task.estimate(
                pipe,
                # One photo goes in as it is (no copy), and estimate holds the only reference: it frees it once read.
                data[0].pop() if len(data) == 1 else torch.cat([d.pop() for d in data]),
                fov_deg=fov,
                steps=steps,
                seed=[seed] * len(batch),
                resolution=resolution,
                ensemble=ensemble,
                fit=fit,
                callback=lambda i, n: bar.update(job, completed=i, total=n),
                windows=windows,
                stage=C.stage_reporter(bar, job, name),
            )
        if normal_convention == "directx":  # the files only: the re-render above used the true normals
            maps["normals"] = normals_gl_to_dx(maps["normals"], axis=1)
        return [{c: m[k : k + 1] for c, m in maps.items()} for k in range(len(batch))]

    def save(path: Path, data: list, maps: dict[str, torch.Tensor]) -> list[Path]:
        plan = data[0]

        def export() -> list[Path]:  # all of a photo's files or none, the glTF's included
            files = [p for b in kinds for p in gltf_files(out, path.stem, plan.paths, binary=b)]
            fresh = [p for p in files if not p.exists()]
            try:
                for b in kinds:
                    export_gltf(out, path.stem, plan.paths, overwrite=overwrite, binary=b, size=gltf_size)
            except BaseException:
                outputs.remove(fresh)  # the .gltf's files when the .glb fails
                raise
            return files

        return outputs.write_outputs(plan, maps, overwrite, also=export if kinds else None)

    return C.run_batches(files, read, infer, save, batch_size=batch_size, as_json=as_json, verbose=verbose)
