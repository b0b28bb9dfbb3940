"""`teamwork shade --albedo A --normals N [--roughness R --metallic M --depth D --basecolor B] -o OUT.png`: neural
shading (--basecolor B [--metallic M] may stand in for --albedo)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P
from teamwork_cli.cli import tasks_common as TC
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import SUPPORTED_WRITE

BITS = {".png": 16, ".tif": 16, ".tiff": 16, ".exr": 16, ".jpg": 8, ".jpeg": 8}


def shade(
    albedo: Path = typer.Option(
        None,
        "--albedo",
        help="Albedo (diffuse reflectance) buffer; sRGB in PNG/JPEG. "
        "Required unless --basecolor is given (then basecolor * (1 - metallic)).",
    ),
    normals: Path = typer.Option(
        ..., "--normals", help="Camera-space normals: +X right, +Y up, +Z towards the viewer, stored as (n+1)/2."
    ),
    roughness: Path = typer.Option(None, "--roughness", help="Roughness buffer (grey, linear); optional."),
    metallic: Path = typer.Option(None, "--metallic", help="Metallic buffer (grey, linear); optional."),
    depth: Path = typer.Option(None, "--depth", help="Relative depth (grey, larger is farther); optional."),
    basecolor: Path = typer.Option(
        None,
        "--basecolor",
        help="glTF base colour (sRGB in PNG/JPEG); optional, "
        "with --metallic it gives metals their colour (a metal's albedo is black). "
        "Without --albedo, the albedo is basecolor * (1 - metallic), as glTF defines.",
    ),
    out: Path = typer.Option(
        ..., "-o", "--out", help="The image to write: .png (16-bit), .exr (linear), .tif or .jpg."
    ),
    adapter: str = typer.Option(
        None, "--adapter", help="Teamwork adapter (.safetensors); default: the shipped shade adapter."
    ),
    base: str = O.BASE_OPT,
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(4, "--steps", min=1, help="Sampling steps."),
    seed: int = O.SEED_OPT,
    tileable: bool = O.TILEABLE_OPT,
    window: int = O.WINDOW_OPT,
    overlap: int = O.OVERLAP_OPT,
    sync: str = O.SYNC_OPT,
    sync_strength: float = O.SYNC_STRENGTH_OPT,
    resolution: int = O.RES_OPT,
    device: str = O.DEVICE_OPT,
    dtype: str = O.DTYPE_OPT,
    overwrite: bool = O.OVERWRITE_OPT,
    as_json: bool = O.JSON_OPT,
    verbose: bool = O.VERBOSE_OPT,
    max_pixels: int = O.MAX_PIXELS_OPT,
) -> int:
    """Render an image from intrinsic buffers (a G-buffer) with the shading adapter.

    The buffers hold no lights, so the image is lit as the adapter learned: the shipped one by a studio rig (a
    white key light above and to the right of the camera, casting shadows to the left, and a weak sky).

    The shipped adapter refines the buffers' classical local shading (a deferred render under that rig, no
    shadows, computed from the buffers you give) into the image: cast shadows, falloff, metal colours.

    Buffers the adapter takes but you do not give (roughness, metallic, depth, basecolor) are replaced by neutral
    values (roughness 0.5, metallic 0, depth 0.5, grey metals), which the shipped adapter was trained to expect.

    Example: teamwork shade --albedo room_albedo.png --normals room_normals.png -o room_shaded.png

    Example (metal-roughness buffers): teamwork shade --basecolor base.png --metallic metal.png --normals n.png
    -o shaded.png
    """
    # The library (torch, diffusers) loads here, not at start-up: `teamwork --help` stays fast.
    from teamwork_cli.core.encoding import encode
    from teamwork_cli.materials.read import image_size
    from teamwork_cli.materials.write import write_map
    from teamwork_cli.tasks import shade as task

    suffix = out.suffix.lower()
    if suffix not in SUPPORTED_WRITE:
        raise typer.BadParameter(
            f"must end in one of {', '.join(SUPPORTED_WRITE)}; got {out.name!r}", param_hint="-o/--out"
        )
    if albedo is None and basecolor is None:
        raise typer.BadParameter(
            "give the albedo buffer, or --basecolor (with --metallic) to derive it", param_hint="--albedo"
        )
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists; pass --overwrite to replace")
    given = {
        "albedo": albedo,
        "normals": normals,
        "roughness": roughness,
        "metallic": metallic,
        "depth": depth,
        "basecolor": basecolor,
    }
    given = {c: p for c, p in given.items() if p is not None}
    P.use_max_pixels(max_pixels)
    windows = O.window_options(
        tileable, window, overlap, sync, sync_strength, automatic=True
    )  # checked before the model loads
    first = next(iter(given.values()))  # the buffers share one size (checked once read)
    P.check_input("shade", first, image_size(first), resolution=resolution, windows=windows)
    # Read first: a missing or unreadable buffer is reported before the model loads.
    buffers = {c: encode(c, C.read_channel(p, c)) for c, p in given.items()}
    pipe = TC.load_team("shade", adapter, base, device, dtype, transformer)
    ins = task.check_team(pipe)
    extra = [c for c in given if c not in ins and not (c == "basecolor" and albedo is None)]
    if extra:
        raise TeamworkError(
            f"this adapter does not take {', '.join(extra)} (its buffers: {', '.join(ins)})",
            "leave out the options for buffers it does not use",
        )
    if basecolor is not None and metallic is None:  # legal, but a likely slip: basecolor only colours metals
        print(
            "Note: --basecolor without --metallic: every surface is taken as a dielectric (metallic 0)", file=sys.stderr
        )
    t0 = time.perf_counter()
    with C.progress_bar() as bar:
        job = bar.add_task(out.name, total=steps)
        image = task.shade(
            pipe,
            buffers,
            steps=steps,
            seed=seed,
            resolution=resolution,
            callback=lambda i, n: bar.update(job, completed=i, total=n),
            windows=windows,
        )
    write_map(out, image[0].permute(1, 2, 0).numpy(), "image", bits=BITS[suffix], overwrite=overwrite)
    C.emit(",".join(str(p) for p in given.values()), [out], as_json)  # the input: the buffers it was shaded from
    if verbose:
        C.report_usage(out, time.perf_counter() - t0)
    return 0
