"""The supported diffusers pipelines, keyed by `model_index.json`'s `_class_name`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str  # short name, as in the published checkpoints' file names
    pipeline: str  # diffusers pipeline class (`_class_name` of model_index.json)
    denoiser: str  # the pipeline component the adapter attaches to
    module: str  # teamwork_cli.models.hub.<module> holds its encode_prompt and build
    encode: str = "encode_prompt"
    build: str = "build"

    def functions(self) -> tuple[Callable, Callable]:
        import importlib

        mod = importlib.import_module(f"teamwork_cli.models.hub.{self.module}")
        return getattr(mod, self.encode), getattr(mod, self.build)


FAMILIES: dict[str, Family] = {
    f.pipeline: f
    for f in (
        Family("sd3", "StableDiffusion3Pipeline", "transformer", "sd3"),
        Family("sdxl", "StableDiffusionXLPipeline", "unet", "unet", "encode_prompt_sdxl", "build_sdxl"),
        Family("sd2", "StableDiffusionPipeline", "unet", "unet", "encode_prompt_sd", "build_sd"),
        Family("flux", "FluxPipeline", "transformer", "flux"),
        Family("flux2", "Flux2KleinPipeline", "transformer", "flux2"),
        Family("zimage", "ZImagePipeline", "transformer", "zimage"),
    )
}


def supported_pipelines() -> list[str]:
    return list(FAMILIES)


def family_for(class_name: str, where: str) -> Family:
    from teamwork_cli.core.errors import TeamworkError

    fam = FAMILIES.get(class_name)
    if fam is None:
        raise TeamworkError(
            f"{where} is a {class_name or 'pipeline without _class_name'}; Teamwork supports "
            f"{', '.join(supported_pipelines())}",
            "pass one of those pipelines (or the embedded model) with --base",
        )
    return fam
