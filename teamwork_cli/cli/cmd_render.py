"""`teamwork render MAPS -o preview.png`: a material rendered under the flash, a light, or a contact sheet."""

from __future__ import annotations

from pathlib import Path

import typer

from teamwork_cli.cli import options as O
from teamwork_cli.cli import planning as P
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import SUPPORTED_WRITE, WRITE_BITS, ImageError, OutputExistsError

MAPS_HINT = "give a folder of maps named <stem>_<channel>.<ext> or <channel>.<ext>, or a prefix like maps/brick"


def render_cmd(
    maps: str = typer.Argument(
        ...,
        metavar="MAPS",
        help="Material: a folder of maps (<stem>_<channel>.<ext> or <channel>.<ext>) or a prefix such as maps/brick.",
    ),
    out: Path = typer.Option(
        ...,
        "-o",
        "--out",
        help="Output image: .png (16-bit, or --bits 8), .jpg, .tif or .exr (linear radiance clipped to [0, 1]).",
    ),
    light: str = typer.Option(
        None,
        "--light",
        help="Point light at x,y,z instead of the flash (the camera "
        "stays at (0, 0, h); the patch spans [-1, 1] and h = 2.414 at 45 degrees).",
    ),
    fov: float = typer.Option(45.0, "--fov", help="Camera field of view in degrees; sets the height h."),
    sheet: bool = typer.Option(
        False,
        "--sheet",
        help="A contact sheet: every map, then renders under the flash and four lights (and --light), labelled.",
    ),
    gltf: bool = typer.Option(
        False,
        "--gltf",
        help="Also write <out stem>.gltf beside the image: a textured quad, its textures beside it (copied "
        "or converted there; basecolor/metallic PNGs are derived if the material has none).",
    ),
    glb: bool = O.GLB_OPT,
    gltf_size: float = O.GLTF_SIZE_OPT,
    size: int = typer.Option(None, "--size", min=1, help="Resample the maps so the longer side has this many pixels."),
    max_pixels: int = O.MAX_PIXELS_OPT,
    bits: int = typer.Option(16, "--bits", help="Bits per sample: 8 or 16 for PNG/TIFF, 16 or 32 for EXR."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    normal_convention: str = O.NORMALS_OPT,
) -> None:
    """Render a material (docs/conventions.md section 3) to check it by eye; prints the written files.

    Missing maps get defaults (specular 0.04, roughness 0.5, flat normals), noted on stderr.

    Example: teamwork render maps/brick --sheet -o brick_sheet.png
    """
    if (gltf or glb) and normal_convention == "directx":
        raise typer.BadParameter(
            "glTF normal maps are OpenGL (+Y up); the glTF would reference a DirectX map",
            param_hint="--normal-convention",
        )
    O.check_gltf_size(gltf_size, gltf, glb)
    point = _parse_light(light)
    if not 1 <= fov < 180:
        raise typer.BadParameter(f"must be in [1, 180), got {fov}", param_hint="--fov")
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give an image file name", param_hint="'-o' / '--out'")
    ext = out.suffix.lower()
    if ext not in SUPPORTED_WRITE:
        raise typer.BadParameter(
            f"{out}: cannot write {ext or 'a file without extension'}; give a file name ending "
            f"in {', '.join(SUPPORTED_WRITE)}",
            param_hint="'-o' / '--out'",
        )
    if bits not in WRITE_BITS[ext]:
        raise typer.BadParameter(
            f"{bits} is not available for {ext}; allowed: {', '.join(map(str, WRITE_BITS[ext]))}", param_hint="--bits"
        )
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite to replace it")
    # The renderer (torch) loads here, not at start-up: `teamwork --help` stays fast.
    import torch

    from teamwork_cli.core.conventions import srgb_to_linear
    from teamwork_cli.graphics.preview import contact_sheet, photo
    from teamwork_cli.materials import outputs
    from teamwork_cli.materials.folders import find_material, read_material
    from teamwork_cli.materials.read import image_size
    from teamwork_cli.materials.write import write_map

    try:
        material = find_material(maps)
    except ImageError as e:
        raise TeamworkError(str(e), MAPS_HINT) from e
    P.use_max_pixels(max_pixels)
    first = next(iter(material.files.values()))
    width, height = P.processed_size(*image_size(first), size)  # the headers' size, before any map is decoded
    P.check_size("render", width, height, None, "--size" if size else "MAPS")
    values, notes = read_material(material, size=size, normal_convention=normal_convention)
    for note in notes:
        typer.echo(f"Note: {note}", err=True)
    with torch.no_grad():
        image = contact_sheet(values, fov, point) if sheet else photo(values, fov, point)
    from teamwork_cli.materials.gltf import export_gltf, gltf_files

    # A normal map named as DirectX (`_nor_dx`) is read flipped above; the glTF gets an OpenGL copy.
    kinds = [binary for binary, wanted in ((False, gltf), (True, glb)) if wanted]
    dx = material.directx_normals
    extra = [p for b in kinds for p in gltf_files(out.parent, out.stem, material.files, binary=b, normals_directx=dx)]
    if not overwrite:
        outputs.refuse_existing(extra)
    # write_map takes values: the sRGB picture is decoded so the file stores exactly these sRGB samples.
    # The image first: it checks the extension and --bits, and a glTF failure then takes it back.
    fresh = [p for p in [out, *extra] if not p.exists()]
    written = [write_map(out, srgb_to_linear(image), "render", bits=bits, overwrite=overwrite)]
    try:
        for b in kinds:
            export_gltf(
                out.parent, out.stem, material.files, overwrite=overwrite, binary=b, size=gltf_size, normals_directx=dx
            )
    except BaseException:
        outputs.remove(fresh)
        raise
    written += extra
    for p in written:
        typer.echo(str(p))


def _parse_light(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        x, y, z = (float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected three numbers x,y,z such as 1,0,2.4; got {text!r}", param_hint="--light"
        ) from None
    return x, y, z
