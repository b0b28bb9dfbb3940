"""`load_denoiser`: the embedded model or a diffusers pipeline, by name or folder (no adapter, no pipeline)."""

from __future__ import annotations

from pathlib import Path

import torch

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.denoiser import TeamDenoiser
from teamwork_cli.models.embedded import BASE_DIR, EmbeddedDenoiser

EMBEDDED_BASE_NAMES = ("embedded", "teamwork-embedded", "")  # names of the embedded base in --base and files


def is_embedded(base: str | None) -> bool:
    return base is None or base in EMBEDDED_BASE_NAMES or (Path(base) / "teamwork.json").is_file()


def check_transformer_base(base: str | None, transformer: str | Path | None) -> None:
    """A GGUF transformer (--transformer) replaces a diffusers base's transformer; the embedded model has none."""
    if transformer is not None and is_embedded(base):
        raise TeamworkError(
            f"--transformer {transformer}: the embedded base model has no transformer to replace (GGUF files hold "
            "diffusers transformers)",
            "pass --base with the SD3, Flux, FLUX.2-klein or Z-Image pipeline the GGUF file belongs to (and an "
            "adapter trained for it), or drop --transformer",
        )


def load_denoiser(base: str | None, dtype: torch.dtype = torch.float32, **options) -> TeamDenoiser:
    """The embedded model (None, 'embedded' or a folder with teamwork.json), else a diffusers pipeline.

    options: the hub backbones' `load_hub_denoiser` options (prompt, guidance, ...); None values are dropped.
    """
    options = {k: v for k, v in options.items() if v is not None}
    embedded = is_embedded(base)
    check_transformer_base(base, options.get("transformer"))
    if embedded and any(k != "prompt" or v != "" for k, v in options.items()):
        raise ValueError(
            f"{', '.join(sorted(options))}: the embedded model has no such option (no text prompt, no "
            "guidance); these apply to the diffusers bases (SD3, SDXL, SD2, Flux, FLUX.2-klein, Z-Image) "
            "given with --base"
        )
    if base is None or base in EMBEDDED_BASE_NAMES:
        if not (BASE_DIR / "teamwork.json").is_file():
            raise TeamworkError(
                f"the embedded base model is missing from {BASE_DIR}",
                "reinstall teamwork, or retrain it with `python -m teamwork_cli.training.pretrain`",
            )
        return EmbeddedDenoiser.from_pretrained(BASE_DIR, dtype)
    if (Path(base) / "teamwork.json").is_file():
        return EmbeddedDenoiser.from_pretrained(base, dtype)
    from teamwork_cli.models.hub import load_hub_denoiser  # diffusers pipelines (models/hub/families.py)

    return load_hub_denoiser(base, dtype, **options)


__all__ = ["EMBEDDED_BASE_NAMES", "check_transformer_base", "is_embedded", "load_denoiser"]
