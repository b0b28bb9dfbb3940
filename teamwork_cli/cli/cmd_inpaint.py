"""`teamwork inpaint IMAGE... --mask MASK -o DIR` (or `--maps PREFIX`): fill the white region of a mask."""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P
from teamwork_cli.cli import tasks_common as TC
from teamwork_cli.core.errors import TeamworkError

if TYPE_CHECKING:  # the library loads in the command, not at start-up
    from teamwork_cli.materials.folders import MaterialFiles

GLTF = ("basecolor", "metallic")  # a material's glTF pair, written back in step (tasks/inpaint_material.GLTF)


def find_materials(specs: list[str], channels: list[str]) -> dict[Path, MaterialFiles]:
    """Materials as prefix -> their map files: `DIR` (every <stem>_<channel>.<ext> in it, or, as in finetune data,
    DIR/<channel>.<ext>: the material named after DIR) or `DIR/<stem>`. Texture libraries' names are read too
    (Poly Haven's `brick_diff_1k.jpg`, ambientCG's `Bricks_1K-JPG_NormalDX.png`: `materials/folders.py`), and a
    material's basecolor/metallic files besides the channels the adapter fills."""
    from teamwork_cli.materials.folders import map_files

    wanted = {*channels, *GLTF}
    found: dict[Path, MaterialFiles] = {}
    for spec in _expand_globs(specs, channels):
        p = Path(spec).expanduser()
        folder, stem = (p, None) if p.is_dir() else (p.parent, p.name)
        if not folder.is_dir():
            raise TeamworkError(f"--maps {spec}: no such folder", "give a folder of maps or a prefix like maps/brick")
        for s, m in map_files(folder).items():
            files = {c: f for c, f in m.files.items() if c in wanted}
            if not files or (stem is not None and s != stem) or (stem is None and not s and not m.files):
                continue
            key = folder.resolve() / s if s else folder.resolve()  # DIR/diffuse.png: the material is DIR itself
            matched = {c: a for c, a in m.matched.items() if c in files}
            found.setdefault(key, dataclasses.replace(m, files=files, matched=matched))
        if stem is not None and folder.resolve() / stem not in found:
            where = (
                f"no such folder, and no file {stem}_<channel>.<ext>"
                if not p.exists()
                else f"no file {stem}_<channel>.<ext>"
            )
            raise TeamworkError(
                f"--maps {spec}: {where} for channels {', '.join(channels)}",
                "name maps like brick_diffuse.png, brick_normals.png, ...",
            )
    if not found:
        raise TeamworkError(
            f"--maps {', '.join(specs)}: no <stem>_<channel>.<ext> files for channels {', '.join(channels)}",
            "name maps like brick_diffuse.png, brick_normals.png, ... (or as Poly Haven and ambientCG do)",
        )
    return found


def _expand_globs(specs: list[str], channels: list[str]) -> list[str]:
    """Quoted globs in --maps: 'shoots/*' (folders) or 'shoots/*/brick' (prefixes of <prefix>_<channel> maps)."""
    from teamwork_cli.materials.folders import parse_map_name

    out = []
    for spec in specs:
        if not any(ch in spec for ch in "*?["):
            out.append(spec)
            continue
        spec = os.path.expanduser(spec)
        folders = [h for h in sorted(glob.glob(spec)) if Path(h).is_dir()]
        prefixes = sorted(
            {
                str(Path(h).parent / name[0])
                for h in glob.glob(spec + "_*")
                if (name := parse_map_name(Path(h))) and name[0] and name[1] in {*channels, *GLTF}
            }
        )
        if not folders and not prefixes:
            raise TeamworkError(
                f"--maps {spec}: matches no folder and no <prefix>_<channel> maps",
                "quote the glob, e.g. --maps 'shoots/*' or --maps 'shoots/*/brick'",
            )
        out += folders + prefixes
    return out


def check_complete(prefix: Path, maps: dict[str, Path], channels: list[str]) -> None:
    """An incomplete material fails alone (a stray diffuse.png beside complete materials must not stop them).
    diffuse and specular count as present where a basecolor map gives them (with metallic, or as a dielectric)."""
    derived = {"diffuse", "specular"} if "basecolor" in maps else set()
    missing = [c for c in channels if c not in maps and c not in derived]
    if missing:
        names = [f"{c}.<ext>" if prefix.is_dir() else f"{prefix.name}_{c}.<ext>" for c in missing]
        raise ValueError(
            f"material {prefix}: missing {', '.join(names)}; the adapter needs every map: {', '.join(channels)}"
        )


def inpaint(
    inputs: list[str] = typer.Argument(
        None, metavar="IMAGE", help="Images to fill: files, folders or quoted globs (not with --maps)."
    ),
    mask: Path = typer.Option(
        ...,
        "--mask",
        "-m",
        help="Mask image of the same size: white (any channel > 50%) "
        "= fill; or a transparent image whose alpha is the mask.",
    ),
    out: Path = O.OUT_OPT,
    maps: list[str] = typer.Option(
        None,
        "--maps",
        metavar="DIR|PREFIX",
        help="Fill a whole material instead: a "
        "folder of <stem>_<channel> maps (or of <channel> maps: diffuse.png, ...), a "
        "prefix like maps/brick (brick_diffuse.png, ...), or a quoted glob of either; "
        "repeat --maps for more.",
    ),
    adapter: str = typer.Option(
        None,
        "--adapter",
        help="Teamwork adapter (.safetensors or a shipped name); "
        "default: the shipped inpaint (with --maps, inpaint-material) adapter, a one-step "
        "fill that refines a harmonic fill. inpaint-diffusion (inpaint-material-diffusion) "
        "samples a generative fill instead: textured, different per --seed.",
    ),
    base: str = O.BASE_OPT,
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(8, "--steps", min=1, help="Sampling steps (a one-step adapter runs once)."),
    keep_context: bool = typer.Option(
        True,
        "--keep-context/--no-keep-context",
        help="Hold the unmasked region "
        "to the input at every step, so the fill agrees with its surroundings "
        "(RePaint-style); off: the team redraws everything, the outside is restored "
        "only at the end.",
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
) -> int:
    """Fill the white region of MASK in each image (or in every map of a material with --maps).

    Outside the mask the result is the input itself: written at the input's bit depth (e.g. --format png8 for
    8-bit inputs; 16-bit PNG holds 8-bit values exactly too) those pixels are bit-identical. Writes
    DIR/<stem>_image.<ext>, or DIR/<stem>_<channel>.<ext> for each map.

    Examples:

    \b
    teamwork inpaint photo.jpg --mask hole.png -o filled/
    teamwork inpaint --maps maps/brick --mask scratch.png -o fixed/
    """
    # The library (torch, diffusers) loads here, not at start-up: `teamwork --help` stays fast.
    from teamwork_cli.adapters.checkpoint import read_adapter_info
    from teamwork_cli.materials import outputs
    from teamwork_cli.materials.read import image_size
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.tasks import inpaint as task
    from teamwork_cli.tasks import inpaint_material as material_io

    ext, bits = O.split_format(fmt)
    P.use_max_pixels(max_pixels)
    if bool(inputs) == bool(maps):
        raise typer.BadParameter(
            "give images to fill, or --maps, not both" if inputs else "give images to fill, or --maps DIR",
            param_hint="INPUTS / --maps",
        )
    mask_t = task.read_mask(mask)
    try:
        note = task.check_mask(mask_t)
    except ValueError as e:
        raise typer.BadParameter(f"{mask}: {e}", param_hint="--mask") from None
    if note:
        typer.echo(f"Note: {mask}: {note}", err=True)
    path = TC.adapter_path("inpaint-material" if maps else "inpaint", adapter)
    # The adapter's header names the maps it fills: enough to check --maps and the inputs before the slow load.
    info = read_adapter_info(path)
    channels = task.check_team(info)
    if maps:
        if channels == ["image"]:
            raise TeamworkError(
                f"adapter {info.path} fills images, not materials",
                "drop --maps to fill images, or use a material adapter (inpaint-material)",
            )
        materials = find_materials(maps, channels)
        items = list(materials)
        names: dict[str, Path] = {}
        for item in items:  # outputs are named after the material: two of one name would collide
            if item.name in names:
                raise typer.BadParameter(
                    f"{names[item.name]} and {item} would write the same outputs "
                    f"({item.name}_<channel>): run them with different -o folders",
                    param_hint="--maps",
                )
            names[item.name] = item
    else:
        if channels != ["image"]:
            raise TeamworkError(
                f"adapter {info.path} fills {', '.join(channels)}, not images",
                "use --maps for a material adapter, or an inpaint adapter (image.in, mask.in)",
            )
        items = C.inputs_or_fail(inputs)
        from teamwork_cli.materials.folders import MaterialFiles

        materials = {p: MaterialFiles(p.stem, p.parent, p.stem, {"image": p}) for p in items}
    windows = O.window_options(tileable, window, overlap, sync, sync_strength)  # checked before the model loads
    first_map = (lambda item: image_size(next(iter(materials[item].files.values())))) if maps else None
    items = items if isinstance(items, C.Inputs) else C.Inputs(items)
    items = P.plan_inputs(items, "inpaint", resolution=resolution, windows=windows, size_of=first_map)
    if not items:
        return C.refused_all(items, as_json)
    pipe = TeamPipeline.load(path, base=base, device=device, dtype=dtype, transformer=transformer)

    def work(item: Path) -> list[Path]:
        material = materials[item]
        files = material.files
        if maps:
            check_complete(item, files, channels)
            for c, alias in material.matched.items():
                typer.echo(f"Note: {files[c].name}: read as {c} (a texture library's {alias!r})", err=True)
        stem = item.name if maps else item.stem
        # A material with basecolor/metallic gets them back, in step with the filled maps (`inpaint_material`).
        written = [*channels, *(GLTF if maps and any(c in files for c in GLTF) else ())]
        plan = outputs.plan_outputs(out, stem, {c: (ext, bits) for c in written}, overwrite)
        directx = material.directx_normals
        both = material_io.read_maps(files, channels, directx=directx)
        enc = {c: both[c].encoded for c in channels}
        for c, x in enc.items():
            if x.shape[-2:] != mask_t.shape[-2:]:
                raise ValueError(
                    f"mask {mask} is {TC.size_text(mask_t)} but {files[c]} is {TC.size_text(x)} "
                    "(width x height); the mask must have the image's size"
                )
        with C.progress_bar() as bar:
            job = bar.add_task(stem, total=steps)
            filled = task.inpaint(
                pipe,
                enc,
                mask_t,
                steps=steps,
                seed=seed,
                resolution=resolution,
                callback=lambda i, n: bar.update(job, completed=i, total=n),
                keep_context=keep_context,
                keep={c: both[c].values for c in channels},
                windows=windows,
            )
        filled = material_io.write_back(filled, both, mask_t, directx=directx)
        # The fill paints colour; an input's alpha (a decal's cut-out) is carried through unchanged, and a grey
        # input (read as three equal components) is written grey again.
        alpha = {c: m.alpha for c, m in both.items() if m.alpha is not None}
        filled = {c: task.to_grey(x, mask_t) if c in both and both[c].grey else x for c, x in filled.items()}
        if "normals" in both and both["normals"].signed_normals:  # raw n in, raw n out: the file keeps its form
            plan = dataclasses.replace(plan, exr_normals="signed")
        return outputs.write_outputs(plan, filled, overwrite, alpha=alpha)

    return C.run_batch(items, work, as_json=as_json, verbose=verbose)
