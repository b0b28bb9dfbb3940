"""What every task command shares: inputs, options, progress, and atomic all-or-nothing writes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import TeamworkError
from ..io import ImageError, OutputExistsError, expand_inputs, map_path, read_map, write_map

stderr = Console(stderr=True)

FORMATS = {"png": 16, "png8": 8, "exr": 16, "exr32": 32, "tif": 16, "jpg": 8}

OUT_OPT = typer.Option(..., "-o", "--out", help="Output folder; files are named <stem>_<channel>.<ext>.")
FORMAT_OPT = typer.Option("png", "--format", "-f",
                          help="png (16-bit), png8, exr (half float), exr32, tif (16-bit) or jpg.")
OVERWRITE_OPT = typer.Option(False, "--overwrite", help="Replace existing output files.")
STEPS_HELP = "Sampling steps (estimation tasks do well with 1 to 4)."
SEED_OPT = typer.Option(0, "--seed", help="Random seed; the same seed gives the same result.")
RES_OPT = typer.Option(None, "--resolution", help="Process with the longer side at this many pixels, then "
                       "resize to the input size (default: the input's own size).")
DEVICE_OPT = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps.")
DTYPE_OPT = typer.Option("auto", "--dtype", help="auto, fp32, bf16 or fp16.")
BASE_OPT = typer.Option(None, "--base", help="Base model: a folder or hub id (default: the adapter's "
                        "base_model, or the embedded model).")


def split_format(fmt: str) -> tuple[str, int]:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}; got {fmt!r}", param_hint="--format")
    return fmt.rstrip("0123456789") if fmt != "exr32" else "exr", FORMATS[fmt]


def inputs_or_fail(patterns: list[str]) -> list[Path]:
    try:
        return expand_inputs(patterns)
    except ImageError as e:
        raise TeamworkError(str(e), "give image files, folders of images or quoted globs like 'photos/*.jpg'") \
            from e


def read_channel(path: Path, channel: str) -> torch.Tensor:
    """A file as [1, C, H, W] channel values."""
    return torch.from_numpy(read_map(path, channel)).permute(2, 0, 1).unsqueeze(0).contiguous()


def planned(out_dir: Path, stem: str, channels: list[str], ext: str, overwrite: bool) -> dict[str, Path]:
    paths = {c: map_path(out_dir, stem, c, ext) for c in channels}
    if not overwrite:
        exist = [str(p) for p in paths.values() if p.exists()]
        if exist:
            raise OutputExistsError(f"{exist[0]}: already exists" + (f" (and {len(exist) - 1} more)"
                                                                       if len(exist) > 1 else "")
                                    + "; pass --overwrite to replace")
    return paths


def write_all(paths: dict[str, Path], values: dict[str, torch.Tensor], bits: int, overwrite: bool) -> list[Path]:
    """Write every map, or none: maps already written are removed again if a later one fails."""
    done: list[Path] = []
    try:
        for c, p in paths.items():
            arr = values[c][0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)
            write_map(p, arr, c, bits=bits, overwrite=overwrite)
            done.append(p)
    except BaseException:
        if not overwrite:
            for p in done:
                p.unlink(missing_ok=True)
        raise
    return done


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*cols, console=stderr, transient=True, disable=not enabled) as bar:
        yield bar


def run_batch(files: list[Path], work: Callable[[Path], list[Path]]) -> int:
    """Run `work` on each file; a failing file is reported and the others still run. Exit code 1 if any failed."""
    failed = 0
    for f in files:
        try:
            for p in work(f):
                typer.echo(str(p))
        except (ImageError, TeamworkError, ValueError, OSError, RuntimeError) as e:
            if os.environ.get("TEAMWORK_DEBUG") == "1":
                raise
            failed += 1
            print(f"Error: {e}", file=sys.stderr)
    if failed:
        print(f"Hint: {failed} of {len(files)} inputs failed; the others were written", file=sys.stderr)
    return 1 if failed else 0
