"""What every task command shares: inputs, options, progress, atomic all-or-nothing writes, and the batch loop
(`run_batch` one file at a time, `run_batches` several images per forward), which also splits the files over
the processes of `accelerate launch` (teamwork_cli.distributed)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from teamwork_cli.core import devices, distributed
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import (
    SUPPORTED_READ,
    SUPPORTED_WRITE,
    ImageError,
    expand_inputs,
)
from teamwork_cli.materials.folders import NORMAL_CONVENTIONS
from teamwork_cli.materials.read import read_map

stderr = Console(stderr=True)

FORMATS = {"png": 16, "png8": 8, "exr": 16, "exr32": 32, "tif": 16, "jpg": 8}

OUT_OPT = typer.Option(..., "-o", "--out", help="Output folder; files are named <stem>_<channel>.<ext>.",
                       callback=lambda out: check_out_dir(out))
FORMAT_OPT = typer.Option("png", "--format", "-f", metavar="png|png8|exr|exr32|tif|jpg",
                          help="png (16-bit), png8, exr (half float), exr32, tif (16-bit) or jpg.")
OVERWRITE_OPT = typer.Option(False, "--overwrite", help="Replace existing output files.")
STEPS_HELP = "Sampling steps (estimation tasks do well with 1 to 4; a one-step adapter always takes 1)."
SEED_OPT = typer.Option(0, "--seed", help="Random seed; the same seed gives the same result.")
RES_OPT = typer.Option(None, "--resolution", min=16, help="Process with the longer side at this many pixels, then "
                       "resize to the input size (default: the input's own size).")
def check_normal_convention(value: str) -> str:
    if value not in NORMAL_CONVENTIONS:
        raise typer.BadParameter(f"must be one of {', '.join(NORMAL_CONVENTIONS)}; got {value!r}")
    return value


NORMALS_OPT = typer.Option("opengl", "--normal-convention", help="Normal maps as opengl (+Y up: glTF, Blender; the "
                           "default) or directx (+Y down: Unreal, some exporters).",
                           callback=lambda value: check_normal_convention(value), metavar="opengl|directx")


def check_device(value: str) -> str:
    if value not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d+", value):
        raise typer.BadParameter(f"must be auto, cpu, cuda, cuda:N or mps; got {value!r}")
    # Checked here, before a model loads: torch's own failure comes late and reads like a bug.
    if value.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device (or a torch built without CUDA)"
            raise typer.BadParameter(f"{value} is not available: this machine has {have}; use auto or cpu")
    if value == "mps" and not torch.backends.mps.is_available():
        raise typer.BadParameter("mps is not available on this machine (Apple silicon only); use auto or cpu")
    return value


def dtype_names() -> tuple[str, ...]:
    """What --dtype takes: `auto` and the names `core.devices.DTYPES` maps (read there, so the two cannot drift)."""
    return ("auto", *devices.DTYPES)


def check_dtype(value: str) -> str:
    if value not in dtype_names():
        raise typer.BadParameter(f"must be one of {', '.join(dtype_names())}; got {value!r}")
    return value


DEVICE_OPT = typer.Option("auto", "--device", help="auto (a GPU if there is one; under accelerate launch, each "
                          "process's own device), cpu, cuda, cuda:N or mps.", callback=lambda v: check_device(v),
                          metavar="auto|cpu|cuda[:N]|mps")
_FIXED_DTYPES = list(devices.DTYPES)  # the help lists them after auto, which it explains
DTYPE_OPT = typer.Option("auto", "--dtype", help="auto (bf16 on a CPU with native bf16, e.g. AVX-512 BF16 or "
                         f"AMX; else fp32), {', '.join(_FIXED_DTYPES[:-1])} or {_FIXED_DTYPES[-1]}; the adapter "
                         "stays fp32.", callback=lambda v: check_dtype(v), metavar="|".join(dtype_names()))
BASE_OPT = typer.Option(None, "--base", help="Base model: a folder or hub id (default: the adapter's "
                        "base_model, or the embedded model).")
BATCH_OPT = typer.Option(1, "--batch-size", min=1, help="Images per forward pass (faster on a GPU, more memory). "
                         "Only images of the same size share a batch; each image keeps its own noise, so its "
                         "result does not depend on the batch.")
OFFLOAD_OPT = typer.Option(False, "--offload", help="For GPUs too small for the model: keep the weights in CPU "
                           "memory and move them to the GPU block by block as they run (slower). No effect on a "
                           "CPU or with the embedded model.")
SLICING_OPT = typer.Option(False, "--attention-slicing", help="Less memory, a little slower: SD2/SDXL compute "
                           "attention in slices, and the VAE takes one image at a time (SD3/Flux already use "
                           "memory-efficient attention).")
COMPILE_OPT = typer.Option(False, "--compile", help="torch.compile the denoiser: faster once compiled; the first "
                           "batch of each image size is slow.")
GUIDANCE_OPT = typer.Option(None, "--guidance", help="Flux bases only: the guidance embedding's value (default "
                            "3.5, as the published checkpoint was trained).")
PROMPT_OPT = typer.Option(None, "--prompt", help="Text prompt given to every teammate (SD3/SDXL/SD2/Flux bases; "
                          "default: the empty prompt the published checkpoints were trained with).")

T = TypeVar("T")
D = TypeVar("D")
R = TypeVar("R")
# Failures of one file that must not stop the batch (anything else is a bug and stops it).
FILE_ERRORS = (ImageError, TeamworkError, ValueError, OSError, RuntimeError)


def split_format(fmt: str) -> tuple[str, int]:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}; got {fmt!r}", param_hint="--format")
    return fmt.rstrip("0123456789") if fmt != "exr32" else "exr", FORMATS[fmt]


class Inputs(list):
    """The files of the input patterns; `bad` patterns (missing, or matching no image) were reported already and
    count as failed inputs in the exit code."""

    bad: int = 0


INPUTS_HINT = "give image files, folders of images or quoted globs like 'photos/*.jpg'"


def inputs_or_fail(patterns: list[str]) -> Inputs:
    """Expand every pattern; a bad one is reported on stderr and the others still run (as a bad file would),
    unless none gives a file. Two inputs with one stem would write the same outputs: a usage error, before any
    work (--overwrite would otherwise let the second silently replace the first's files)."""
    files, errors, seen = Inputs(), [], set()
    for pattern in patterns:
        try:
            for f in expand_inputs([pattern]):
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    files.append(f)
        except ImageError as e:
            errors.append(str(e))
    if not files:
        raise TeamworkError("; ".join(errors), INPUTS_HINT)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise typer.BadParameter(f"{stems[f.stem]} and {f} would write the same outputs (<stem>_<channel>): "
                                     "rename one, or run them with different -o folders", param_hint="INPUTS")
        stems[f.stem] = f
    if distributed.current().is_main:  # counted once, not once per process
        for e in errors:
            print(f"Error: {e}", file=sys.stderr)
        files.bad = len(errors)
    return files


_IMAGE_SUFFIXES = {*SUPPORTED_READ, *SUPPORTED_WRITE, ".webp"}  # an -o that names a picture, not a folder


def check_out_dir(out: Path) -> Path:
    """-o callback: an output folder, not a file (checked before any model loads)."""
    if out is None:
        return out
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder", param_hint="'-o' / '--out'")
    if not out.exists() and out.suffix.lower() in _IMAGE_SUFFIXES:
        raise typer.BadParameter(f"{out} looks like an image file name; this command writes several files into a "
                                 "folder: give a folder", param_hint="'-o' / '--out'")
    return out


def read_channel(path: Path, channel: str) -> torch.Tensor:
    """A file as [1, C, H, W] channel values."""
    return torch.from_numpy(read_map(path, channel)).permute(2, 0, 1).unsqueeze(0).contiguous()


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Under accelerate launch only the first process draws: several live bars on one terminal garble it.
    enabled = enabled and distributed.current().is_main
    # Not on a pipe or a log file either: there a transient bar leaves only blank lines.
    enabled = enabled and stderr.is_terminal
    with Progress(*cols, console=stderr, transient=True, disable=not enabled) as bar:
        yield bar


def batch_label(items: Sequence[object]) -> str:
    """Progress-bar text of a batch: the first file's name, and how many more."""
    first = Path(str(items[0])).name
    return first if len(items) == 1 else f"{first} +{len(items) - 1}"


class _Tally:
    """Counts failed items, reports each on stderr, and turns the count (of all processes) into an exit code."""

    def __init__(self, files: Sequence[object]) -> None:
        bad = getattr(files, "bad", 0)  # input patterns that gave no file (Inputs), reported already
        self.total, self.failed = len(files) + bad, bad
        self.shard = distributed.current()

    def fail(self, items: Sequence[object], e: BaseException, batched: bool = False) -> None:
        if os.environ.get("TEAMWORK_DEBUG") == "1":
            raise e
        self.failed += len(items)
        msg = str(e)
        names = [str(i) for i in items]
        if not any(n in msg or Path(n).name in msg for n in names):
            msg = f"{', '.join(names)}: {msg}"
        prefix = f"[process {self.shard.index}] " if self.shard.count > 1 else ""
        print(f"{prefix}Error: {msg}", file=sys.stderr)
        if batched and "out of memory" in str(e).lower():
            print("Hint: lower --batch-size, or try --offload / --attention-slicing", file=sys.stderr)

    def exit_code(self) -> int:
        failed = distributed.total(self.failed)  # every process gets here, once, after its own share
        if failed and self.shard.is_main:
            rest = "nothing was written" if failed == self.total else "the others were written"
            print(f"Hint: {failed} of {self.total} inputs failed; {rest} (see the Error lines above)",
                  file=sys.stderr)
        return 1 if failed else 0


def run_batch(files: Sequence[T], work: Callable[[T], list[Path]]) -> int:
    """Run `work` on each file; a failing file is reported and the others still run. Exit code 1 if any failed.

    Under `accelerate launch`, this process runs only its share of `files` (see teamwork_cli.distributed).
    """
    tally = _Tally(files)
    for f in tally.shard.take(files):
        try:
            for p in work(f):
                typer.echo(str(p))
        except FILE_ERRORS as e:
            tally.fail([f], e)
    return tally.exit_code()


def run_batches(files: Sequence[T], read: Callable[[T], tuple[Hashable, D]],
                infer: Callable[[list[T], list[D]], list[R]], save: Callable[[T, D, R], list[Path]], *,
                batch_size: int = 1) -> int:
    """`run_batch` with up to `batch_size` files per forward pass.

    read(file) -> (key, data): load and check one file; files with equal keys (e.g. their image size) may share
    a batch. infer(files, datas) -> one result per file, from one forward. save(file, data, result) -> the
    paths written. A failure in read or save fails that file; in infer, the files of that batch.
    Files are processed as their batch fills, so stdout may list them out of input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tally = _Tally(files)
    pending: dict[Hashable, list[tuple[T, D]]] = {}

    def flush(key: Hashable) -> None:
        group = pending.pop(key)
        items, datas = [f for f, _ in group], [d for _, d in group]
        try:
            results = infer(items, datas)
        except FILE_ERRORS as e:
            tally.fail(items, e, batched=len(items) > 1)
            return
        for f, d, r in zip(items, datas, results, strict=True):
            try:
                for p in save(f, d, r):
                    typer.echo(str(p))
            except FILE_ERRORS as e:
                tally.fail([f], e)

    for f in tally.shard.take(files):
        try:
            key, data = read(f)
        except FILE_ERRORS as e:
            tally.fail([f], e)
            continue
        pending.setdefault(key, []).append((f, data))
        if len(pending[key]) >= batch_size:
            flush(key)
        elif sum(map(len, pending.values())) >= 2 * batch_size:
            # Many sizes, few of each: run the fullest group rather than hold every image in memory.
            flush(max(pending, key=lambda k: len(pending[k])))
    for key in list(pending):
        flush(key)
    return tally.exit_code()
