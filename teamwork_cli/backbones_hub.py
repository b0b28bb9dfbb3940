"""Diffusers pipelines (SD3, SDXL, SD2, Flux) as Teamwork denoisers; the code lives in `teamwork_cli.hub`."""

from __future__ import annotations

from .hub import load_hub_denoiser, resolve_adapter, supported_pipelines

__all__ = ["load_hub_denoiser", "resolve_adapter", "supported_pipelines"]
