"""What the intrinsics, inpaint, shade and synthesize commands share beyond `common`: loading a task's adapter
(with a clear message while it is not shipped) and all-or-nothing writes where maps differ in format.

(Kept apart from `common.py`, which another change is reworking; `write_mixed` could replace `common.write_all`.)
"""

from __future__ import annotations

from pathlib import Path

import torch

from teamwork_cli.materials.io import OutputExistsError, map_path
from teamwork_cli.pipelines.team_pipeline import TeamPipeline


def adapter_path(preset: str, adapter: str | None) -> str:
    """The adapter a task runs: --adapter (a file, a shipped name, owner/repo/file on the hub), else the shipped one."""
    from teamwork_cli.models.hub import resolve

    return str(resolve.task_adapter(preset, adapter))


def load_team(preset: str, adapter: str | None, base: str | None, device: str, dtype: str) -> TeamPipeline:
    return TeamPipeline.load(adapter_path(preset, adapter), base=base, device=device, dtype=dtype)


def plan_files(out_dir: Path, stem: str, formats: dict[str, tuple[str, int]], overwrite: bool
               ) -> dict[str, tuple[Path, int]]:
    """channel -> (path, bits) from channel -> (ext, bits); refuses existing files unless overwrite."""
    plan = {c: (map_path(out_dir, stem, c, ext), bits) for c, (ext, bits) in formats.items()}
    if not overwrite:
        exist = [str(p) for p, _ in plan.values() if p.exists()]
        if exist:
            more = f" (and {len(exist) - 1} more)" if len(exist) > 1 else ""
            raise OutputExistsError(f"{exist[0]}: already exists{more}; pass --overwrite to replace")
    return plan


def write_mixed(plan: dict[str, tuple[Path, int]], values: dict[str, torch.Tensor], overwrite: bool,
                alpha: dict | None = None) -> list[Path]:
    """Write every map ([1, C, H, W] values) at its own path and bit depth, or none of them."""
    from teamwork_cli.cli.common import write_all

    return write_all({c: p for c, (p, _) in plan.items()}, values, {c: b for c, (_, b) in plan.items()}, overwrite,
                     alpha)


def size_text(x: torch.Tensor) -> str:
    return f"{x.shape[-1]}x{x.shape[-2]}"
