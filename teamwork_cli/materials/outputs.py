"""The one output writer: every map of one input, all or none (docs/conventions.md section 2).

Commands plan an input's files before any work (`plan_outputs`, which refuses existing files unless
overwrite), then hand the maps to `write_outputs`. Each map is written under a hidden name beside its target and
moved into place only when all are written, so a failure (a value EXR half cannot hold, a full disk, a signal)
leaves neither a partial set nor, with overwrite, a mix of old and new maps. Files made from the maps after
they are in place (a glTF) join the same all-or-nothing through `also`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from teamwork_cli.materials import files
from teamwork_cli.materials.files import ImageError, OutputExistsError, map_path
from teamwork_cli.materials.write import write_map

SERIAL_WRITE_PIXELS = 8_000_000  # maps larger than this (about 8 MP) are written one at a time


@dataclass(frozen=True)
class OutputPlan:
    """Where each map of one input goes (channel -> path) and at which bit depth (channel -> bits)."""

    paths: dict[str, Path]
    bits: dict[str, int]
    exr_normals: str = "encoded"  # a normals map in EXR: (n+1)/2, or "signed" raw n (docs/conventions.md 1)


def plan_outputs(
    out_dir: Path, stem: str, formats: dict[str, tuple[str, int]], overwrite: bool, *, exr_normals: str = "encoded"
) -> OutputPlan:
    """`out_dir/<stem>_<channel>.<ext>` for channel -> (ext, bits); refuses existing files unless overwrite."""
    paths = {c: map_path(out_dir, stem, c, ext) for c, (ext, _) in formats.items()}
    if not overwrite:
        refuse_existing(paths.values())
    return OutputPlan(paths, {c: bits for c, (_, bits) in formats.items()}, exr_normals)


def refuse_existing(paths: Iterable[Path]) -> None:
    exist = [str(p) for p in paths if p.exists()]
    if exist:
        more = f" (and {len(exist) - 1} more)" if len(exist) > 1 else ""
        raise OutputExistsError(f"{exist[0]}: already exists{more}; pass --overwrite to replace")


def remove(paths: Iterable[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def write_outputs(
    plan: OutputPlan,
    values: dict[str, torch.Tensor],
    overwrite: bool,
    *,
    alpha: dict[str, np.ndarray] | None = None,
    also: Callable[[], list[Path]] | None = None,
) -> list[Path]:
    """Write every planned map ([1, C, H, W] values; `alpha` H x W for some), or none; returns the paths.

    also: makes more files from the maps once they are in place and returns their paths; if it fails, the maps
    this call created are removed again (with overwrite, the replaced maps stay replaced)."""
    fresh = {p for p in plan.paths.values() if not p.exists()}
    staged: dict[Path, Path] = {}
    done: list[Path] = []
    for p in plan.paths.values():  # every temporary is named before any is written, so cleanup finds them all
        staged[p] = p.with_name(f".{p.stem}.part-{secrets.token_hex(4)}{p.suffix}")  # the suffix picks the format

    def stage(c: str) -> None:
        p = plan.paths[c]
        tmp = staged[p]
        # An H x W x C view of the values (no copy: the writer reads them a band of rows at a time).
        arr = values[c][0].float().permute(1, 2, 0).numpy()
        try:
            write_map(tmp, arr, c, bits=plan.bits[c], alpha=(alpha or {}).get(c), exr_normals=plan.exr_normals)
        except ImageError as e:
            raise ImageError(str(e).replace(str(tmp), str(p))) from e

    # The maps are encoded and compressed in parallel threads (zlib, numpy and OpenEXR release the GIL): 7 maps
    # of a 512 px photo in ~0.25 s instead of ~0.45 s on 2 cores. Large maps go one after another: each holds its
    # file's samples and bytes while it is written, and several at once would add a map's worth each.
    large = max((v[0, 0].numel() for v in values.values()), default=0) > SERIAL_WRITE_PIXELS
    workers = 1 if large else max(1, min(len(staged), os.cpu_count() or 1, 8))
    try:
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for job in [pool.submit(stage, c) for c in plan.paths]:
                job.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # no write still running when the cleanup below runs
        for p, tmp in staged.items():
            if overwrite:
                os.replace(tmp, p)
            else:
                files.link_new(tmp, p)
            done.append(p)
        if also is not None:
            done += also()
    except BaseException:
        remove(p for p in done if p in fresh)  # only what this call created: never a rival's file
        raise
    finally:
        remove(staged.values())
    return done


__all__ = ["SERIAL_WRITE_PIXELS", "OutputPlan", "plan_outputs", "refuse_existing", "remove", "write_outputs"]
