"""The options the commands share, with their aliases and help, their choices as str enums, and the callbacks
that check them before any model loads (bad usage exits 2 there).

Command modules declare their own options beside these; anything two commands take is defined here once.
"""

from __future__ import annotations

import re
from enum import Enum, StrEnum
from pathlib import Path

import typer

from teamwork_cli.core.channels import NORMAL_CONVENTIONS
from teamwork_cli.materials.files import SUPPORTED_READ, SUPPORTED_WRITE

# --format name -> bit depth; the extension is the name without its digits (exr32 -> exr)
FORMATS = {"png": 16, "png8": 8, "exr": 16, "exr32": 32, "tif": 16, "jpg": 8}


class Format(StrEnum):
    """--format choices."""

    PNG = "png"
    PNG8 = "png8"
    EXR = "exr"
    EXR32 = "exr32"
    TIF = "tif"
    JPG = "jpg"


class ExrNormals(StrEnum):
    """--exr-normals choices (docs/conventions.md section 1)."""

    ENCODED = "encoded"
    SIGNED = "signed"


# --normal-convention choices, from the library's own list (docs/conventions.md section 1: OpenGL is stored)
NormalConvention = StrEnum("NormalConvention", {c.upper(): c for c in NORMAL_CONVENTIONS})


def choices(enum: type[Enum]) -> tuple[str, ...]:
    return tuple(m.value for m in enum)


def metavar(enum: type[Enum]) -> str:
    return "|".join(choices(enum))


def completer(values: type[Enum] | tuple[str, ...]):  # -> Callable[[str], list[str]]
    """Shell completion of an option's choices (`teamwork --install-completion`)."""
    names = choices(values) if isinstance(values, type) else values
    return lambda incomplete: [v for v in names if v.startswith(incomplete)]


OUT_OPT = typer.Option(
    ...,
    "-o",
    "--out",
    help="Output folder; files are named <stem>_<channel>.<ext>.",
    callback=lambda out: check_out_dir(out),
)
FORMAT_OPT = typer.Option(
    "png",
    "--format",
    "-f",
    metavar=metavar(Format),
    autocompletion=completer(Format),
    help="png (16-bit), png8, exr (half float), exr32, tif (16-bit) or jpg.",
)
OVERWRITE_OPT = typer.Option(False, "--overwrite", help="Replace existing output files.")
VERBOSE_OPT = typer.Option(
    False,
    "--verbose",
    "-v",
    help="Per input on stderr: its wall time and the process's peak memory so far.",
)
MAX_PIXELS_OPT = typer.Option(
    None,
    "--max-pixels",
    min=1,
    metavar="N",
    help="Refuse any image over N pixels, read from its header before decoding, and any size asked for over it "
    "(default 200000000, or TEAMWORK_MAX_PIXELS). Each input's memory is also planned before the model loads: "
    "one that cannot fit in the memory available is refused with its own Error line and the others still run.",
)
JSON_OPT = typer.Option(
    False,
    "--json",
    help='One JSON record per input on stdout instead of the file list: {"input": ..., "files": [...]}, or '
    '{"input": ..., "error": ...} for one that failed (its Error line still goes to stderr).',
)
STEPS_HELP = "Sampling steps (estimation tasks do well with 1 to 4; a one-step adapter always takes 1)."
SEED_MAX = 2**63 - 1  # torch seeds generators with a 64-bit integer
SEED_OPT = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Random seed; the same seed gives the same result.")
RES_OPT = typer.Option(
    None,
    "--resolution",
    min=16,
    help="Process with the longer side at this many pixels, then "
    "resize to the input size (default: the input's own size).",
)


def check_normal_convention(value: str) -> str:
    if value not in choices(NormalConvention):
        raise typer.BadParameter(f"must be one of {', '.join(choices(NormalConvention))}; got {value!r}")
    return value


NORMALS_OPT = typer.Option(
    "opengl",
    "--normal-convention",
    help="Normal maps as opengl (+Y up: glTF, Blender; the default) or directx (+Y down: Unreal, some exporters).",
    callback=lambda value: check_normal_convention(value),
    metavar=metavar(NormalConvention),
    autocompletion=completer(NormalConvention),
)


EXR_NORMALS_OPT = typer.Option(
    "encoded",
    "--exr-normals",
    metavar=metavar(ExrNormals),
    autocompletion=completer(ExrNormals),
    help="Normal maps in EXR as encoded (n+1)/2, like PNG, what Blender's and other "
    "tools' texture nodes read (the default), or signed raw vectors.",
    callback=lambda v: check_choice(v, ExrNormals),
)


# glTF exports (materials/gltf.py), besides each command's own --gltf.
GLB_OPT = typer.Option(
    False,
    "--glb",
    help="Also write <stem>.glb: the textured quad of --gltf as one self-contained binary file.",
)
GLTF_SIZE_OPT = typer.Option(
    None,
    "--gltf-size",
    metavar="METRES",
    help="The glTF quad's longer side in metres (glTF's unit), the other side in the maps' aspect ratio "
    "(default: 2 x 2).",
)


def check_gltf_size(size: float | None, gltf: bool, glb: bool) -> None:
    if size is None:
        return
    if not size > 0:  # NaN too
        raise typer.BadParameter(f"must be a positive length in metres; got {size}", param_hint="--gltf-size")
    if not (gltf or glb):
        raise typer.BadParameter("sizes the glTF quad: give --gltf or --glb too", param_hint="--gltf-size")


# Windows (pipelines/tiling.py): tileable maps and photos processed at full resolution.
TILEABLE_OPT = typer.Option(
    False,
    "--tileable",
    help="Make every map wrap seamlessly left-right and top-bottom, all maps jointly (windows wrap around the "
    "edges). A photo that does not tile itself is blended, within one --overlap of each edge, with its own "
    "centre: the maps' content there is a mix of both (inpaint refills that band, but a map that wraps already, "
    "such as a constant one, keeps its own pixels there); within the same band the "
    "maps are then made exactly periodic (periodic-plus-smooth decomposition), the rest is left as it is.",
)
WINDOW_OPT = typer.Option(
    None,
    "--window",
    min=16,
    help="Process in overlapping windows of N px whenever the image (after --resolution) is larger, at full "
    "resolution (the model's pass sees a batch of windows at a time, but the whole canvas's latents are kept: "
    "memory still grows with the photo). Default: the adapter's training resolution (or the base's native "
    "size), used with --tileable and, for svbrdf, intrinsics and shade, for images over 1024x1024 pixels; "
    "smaller images without --tileable take one pass over the whole image.",
)
OVERLAP_OPT = typer.Option(None, "--overlap", min=0, help="Windows' overlap in px (default: a quarter window).")


class Sync(StrEnum):
    """--sync choices (pipelines/sync.py)."""

    NONE = "none"
    AVERAGE = "average"
    SYNCSDE = "syncsde"


SYNC_OPT = typer.Option(
    "syncsde",
    "--sync",
    metavar=metavar(Sync),
    autocompletion=completer(Sync),
    help="How windows' trajectories are kept in step: syncsde (SyncSDE, Lee et al. 2025: a tie to the windows' "
    "consensus whose strength follows the noise level; the default), average (MultiDiffusion) or none "
    "(independent windows, blended in the overlaps).",
    callback=lambda v: check_choice(v, Sync),
)
SYNC_STRENGTH_OPT = typer.Option(
    1.0, "--sync-strength", min=0.0, help="SyncSDE's strength 1/lambda (0: independent windows; large: average)."
)


def window_options(
    tileable: bool,
    window: int | None,
    overlap: int | None,
    sync: str,
    strength: float,
    batch_size: int = 1,
    *,
    automatic: bool = False,
):  # -> WindowOptions | None; the pipelines module is imported here, not at start-up
    """The library's WindowOptions for the window options given, or None for one pass. automatic: with neither
    --window nor --tileable, a photo over 1024 x 1024 pixels still goes in windows (`WindowOptions.automatic`).
    batch_size: the command's --batch-size; its default (1) lets the windows batch themselves."""
    if not tileable and window is None and not automatic:
        return None
    from teamwork_cli.pipelines.tiling import WindowOptions

    batch = None if batch_size == 1 else batch_size
    if not tileable and window is None:
        return WindowOptions.automatic(overlap=overlap, sync=sync, strength=strength, batch_size=batch)
    return WindowOptions(window, overlap, tileable, sync, strength, batch)


def check_choice(value: str, enum: type[Enum]) -> str:
    if value not in choices(enum):
        raise typer.BadParameter(f"must be one of {', '.join(choices(enum))}; got {value!r}")
    return value


def check_device(value: str) -> str:
    if value not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d+", value):
        raise typer.BadParameter(f"must be auto, cpu, cuda, cuda:N or mps; got {value!r}")
    # Checked here, before a model loads: torch's own failure comes late and reads like a bug.
    if value.startswith("cuda") or value == "mps":
        import torch  # here, not at start-up: `teamwork --help` loads no torch
    if value.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device (or a torch built without CUDA)"
            raise typer.BadParameter(f"{value} is not available: this machine has {have}; use auto or cpu")
    if value == "mps" and not torch.backends.mps.is_available():
        raise typer.BadParameter("mps is not available on this machine (Apple silicon only); use auto or cpu")
    return value


# The names `core.devices.DTYPES` maps (spelled out so that start-up loads no torch; a test keeps them equal).
DTYPE_NAMES = ("fp32", "bf16", "fp16")


def dtype_names() -> tuple[str, ...]:
    """What --dtype takes: `auto` and the fixed dtypes."""
    return ("auto", *DTYPE_NAMES)


def check_dtype(value: str) -> str:
    if value not in dtype_names():
        raise typer.BadParameter(f"must be one of {', '.join(dtype_names())}; got {value!r}")
    return value


DEVICE_OPT = typer.Option(
    "auto",
    "--device",
    help="auto (a GPU if there is one; under accelerate launch, each process's own device), cpu, cuda, cuda:N or mps.",
    callback=lambda v: check_device(v),
    metavar="auto|cpu|cuda[:N]|mps",
    autocompletion=completer(("auto", "cpu", "cuda", "mps")),
)
_FIXED_DTYPES = list(DTYPE_NAMES)  # the help lists them after auto, which it explains
DTYPE_OPT = typer.Option(
    "auto",
    "--dtype",
    help="auto (bf16 on a CPU with native bf16, e.g. AVX-512 BF16 or "
    f"AMX; else fp32), {', '.join(_FIXED_DTYPES[:-1])} or {_FIXED_DTYPES[-1]}; the adapter "
    "stays fp32.",
    callback=lambda v: check_dtype(v),
    metavar="|".join(dtype_names()),
    autocompletion=completer(dtype_names()),
)
BASE_OPT = typer.Option(
    None, "--base", help="Base model: a folder or hub id (default: the adapter's base_model, or the embedded model)."
)
TRANSFORMER_OPT = typer.Option(
    None,
    "--transformer",
    metavar="FILE.gguf",
    help="A GGUF-quantized transformer of the --base pipeline (SD3, Flux, FLUX.2-klein, Z-Image) to use in place "
    "of its own weights: less memory, dequantized to --dtype as it runs. The adapter stays as trained.",
)
BATCH_OPT = typer.Option(
    1,
    "--batch-size",
    min=1,
    help="Images per forward pass (faster on a GPU, more memory). "
    "Only images of the same size share a batch; each image keeps its own noise, so its "
    "result does not depend on the batch.",
)
OFFLOAD_OPT = typer.Option(
    False,
    "--offload",
    help="For GPUs too small for the model: keep the weights in CPU "
    "memory and move them to the GPU block by block as they run (slower). No effect on a "
    "CPU or with the embedded model.",
)
SLICING_OPT = typer.Option(
    False,
    "--attention-slicing",
    help="Less memory, a little slower: SD2/SDXL compute "
    "attention in slices, and the VAE takes one image at a time (SD3/Flux already use "
    "memory-efficient attention).",
)
COMPILE_OPT = typer.Option(
    False,
    "--compile",
    help="torch.compile the denoiser: faster once compiled; the first batch of each image size is slow.",
)
GUIDANCE_OPT = typer.Option(
    None,
    "--guidance",
    help="Flux bases only: the guidance embedding's value (default 3.5, as the published checkpoint was trained).",
)
PROMPT_OPT = typer.Option(
    None,
    "--prompt",
    help="Text prompt given to every teammate (SD3/SDXL/SD2/Flux bases; "
    "default: the empty prompt the published checkpoints were trained with).",
)


def split_format(fmt: str) -> tuple[str, int]:
    if fmt not in choices(Format):
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}; got {fmt!r}", param_hint="--format")
    return fmt.rstrip("0123456789") if fmt != "exr32" else "exr", FORMATS[fmt]


_IMAGE_SUFFIXES = {*SUPPORTED_READ, *SUPPORTED_WRITE, ".webp"}  # an -o that names a picture, not a folder


def check_out_dir(out: Path) -> Path:
    """-o callback: an output folder, not a file (checked before any model loads)."""
    if out is None:
        return out
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder", param_hint="'-o' / '--out'")
    if not out.exists() and out.suffix.lower() in _IMAGE_SUFFIXES:
        raise typer.BadParameter(
            f"{out} looks like an image file name; this command writes several files into a folder: give a folder",
            param_hint="'-o' / '--out'",
        )
    return out
