"""What the intrinsics, inpaint, shade and synthesize commands share beyond `common`: loading a task's adapter
(the shipped one unless --adapter names another), and an image's size as error messages print it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pipeline (torch, diffusers) loads when a command runs, not at start-up
    import torch

    from teamwork_cli.pipelines.team_pipeline import TeamPipeline


def adapter_path(preset: str, adapter: str | None) -> str:
    """The adapter a task runs: --adapter (a file, a shipped name, owner/repo/file on the hub), else the shipped one."""
    from teamwork_cli.models.hub import resolve

    return str(resolve.task_adapter(preset, adapter))


def load_team(
    preset: str, adapter: str | None, base: str | None, device: str, dtype: str, transformer: str | None = None
) -> TeamPipeline:
    """transformer: --transformer, a GGUF file of the base's transformer (models/hub/gguf.py)."""
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    path = adapter_path(preset, adapter)
    return TeamPipeline.load(path, base=base, device=device, dtype=dtype, transformer=transformer)


def size_text(x: torch.Tensor) -> str:
    return f"{x.shape[-1]}x{x.shape[-2]}"
