"""Diffusers backbones for Teamwork: SD3, SDXL, SD2, Flux, FLUX.2-klein and Z-Image pipelines as `TeamDenoiser`s (one
module each)."""

from __future__ import annotations

from teamwork_cli.models.hub.families import FAMILIES, supported_pipelines
from teamwork_cli.models.hub.loading import load_hub_denoiser
from teamwork_cli.models.hub.resolve import resolve_adapter

__all__ = ["FAMILIES", "load_hub_denoiser", "resolve_adapter", "supported_pipelines"]
