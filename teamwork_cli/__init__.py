"""Teamwork: collaborative diffusion with low-rank coordination and adaptation (Sartor & Peers 2025).

The names below are imported on first use (as diffusers' top level does), so `import teamwork_cli` and
`teamwork --help` stay fast and torch loads only when a name that needs it is touched.

    from teamwork_cli import TeamPipeline, read_map
    pipe = TeamPipeline.load("svbrdf")  # a shipped adapter by name, or a .safetensors path
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "TeamPipeline": "teamwork_cli.pipelines.team_pipeline",
    "sample_team": "teamwork_cli.pipelines.sampling",
    "TeamLayout": "teamwork_cli.core.layout",
    "load_preset": "teamwork_cli.core.layout",
    "available_presets": "teamwork_cli.core.layout",
    "TeamBatch": "teamwork_cli.core.team",
    "TeamworkError": "teamwork_cli.core.errors",
    "encode": "teamwork_cli.core.encoding",
    "decode": "teamwork_cli.core.encoding",
    "TeamworkConfig": "teamwork_cli.adapters.config",
    "TeamworkLinear": "teamwork_cli.adapters.layer",
    "TeamworkConv2d": "teamwork_cli.adapters.layer",
    "inject_adapter": "teamwork_cli.adapters.model",
    "remove_adapter": "teamwork_cli.adapters.model",
    "team_context": "teamwork_cli.adapters.model",
    "layers_to_adapt": "teamwork_cli.adapters.profiles",
    "register_backbone": "teamwork_cli.adapters.profiles",
    "AdapterInfo": "teamwork_cli.adapters.checkpoint",
    "load_adapter": "teamwork_cli.adapters.checkpoint",
    "save_adapter": "teamwork_cli.adapters.checkpoint",
    "read_adapter_info": "teamwork_cli.adapters.checkpoint",
    "load_denoiser": "teamwork_cli.models.loading",
    "read_map": "teamwork_cli.materials.read",
    "read_image": "teamwork_cli.materials.read",
    "write_map": "teamwork_cli.materials.write",
    "load_material": "teamwork_cli.materials.folders",
    "render_flash": "teamwork_cli.graphics.render",
    "render_rmse": "teamwork_cli.graphics.render",
}

__all__ = [
    "__version__",
    "AdapterInfo",
    "TeamBatch",
    "TeamLayout",
    "TeamPipeline",
    "TeamworkConfig",
    "TeamworkConv2d",
    "TeamworkError",
    "TeamworkLinear",
    "available_presets",
    "decode",
    "encode",
    "inject_adapter",
    "layers_to_adapt",
    "load_adapter",
    "load_denoiser",
    "load_material",
    "load_preset",
    "read_adapter_info",
    "read_image",
    "read_map",
    "register_backbone",
    "remove_adapter",
    "render_flash",
    "render_rmse",
    "sample_team",
    "save_adapter",
    "team_context",
    "write_map",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from teamwork_cli.adapters.checkpoint import AdapterInfo, load_adapter, read_adapter_info, save_adapter
    from teamwork_cli.adapters.config import TeamworkConfig
    from teamwork_cli.adapters.layer import TeamworkConv2d, TeamworkLinear
    from teamwork_cli.adapters.model import inject_adapter, remove_adapter, team_context
    from teamwork_cli.adapters.profiles import layers_to_adapt, register_backbone
    from teamwork_cli.core.encoding import decode, encode
    from teamwork_cli.core.errors import TeamworkError
    from teamwork_cli.core.layout import TeamLayout, available_presets, load_preset
    from teamwork_cli.core.team import TeamBatch
    from teamwork_cli.graphics.render import render_flash, render_rmse
    from teamwork_cli.materials.folders import load_material
    from teamwork_cli.materials.read import read_image, read_map
    from teamwork_cli.materials.write import write_map
    from teamwork_cli.models.loading import load_denoiser
    from teamwork_cli.pipelines.sampling import sample_team
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'teamwork_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
