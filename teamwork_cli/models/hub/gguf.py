"""GGUF-quantized transformers: a diffusers base's transformer read from a `.gguf` file (`--transformer`).

diffusers loads such a file with the model class's single-file loader and a `GGUFQuantizationConfig`: each
nn.Linear whose weight the file quantizes (Q8_0, Q4_K, ...) becomes a `GGUFLinear` that keeps the GGUF blocks
(uint8 bytes) and dequantizes them at each forward into the compute dtype; tensors stored as F16/F32 load as
ordinary parameters in that dtype.  The architecture comes from the base pipeline's `transformer/config.json`,
so the file must hold the transformer of that same model (in the original or the diffusers tensor names, which
the single-file converters of diffusers accept).  The adapter layers wrap `GGUFLinear` like any nn.Linear
(adapters/layer.py, `TeamworkGGUFLinear`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from teamwork_cli.adapters.layer import is_gguf_linear
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub.families import Family

GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file (GGUF spec, "File Structure")
_HINT_FILE = "give the .gguf file of the base's transformer, e.g. a FLUX.1-dev Q8_0 file with --base of FLUX.1-dev"


def check_gguf_file(path: str | Path) -> Path:
    """The file, if it exists and starts with the GGUF magic; else a TeamworkError saying which."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TeamworkError(f"transformer file {path} not found", _HINT_FILE)
    if not p.is_file():
        raise TeamworkError(f"transformer file {path} is not a regular file", _HINT_FILE)
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        why = e.strerror or e
        raise TeamworkError(f"transformer file {path} cannot be read: {why}", "check its permissions") from e
    if magic != GGUF_MAGIC:
        raise TeamworkError(
            f"transformer file {path} is not a GGUF file (it does not start with the GGUF magic bytes)",
            "--transformer takes a .gguf file; an adapter (.safetensors) goes to --adapter, a pipeline to --base",
        )
    return p


def transformer_class(family: Family, index: dict, where: str) -> type[nn.Module]:
    """The diffusers class of the base's transformer (from model_index.json), if diffusers can load it from a
    single file; else a TeamworkError."""
    import diffusers
    from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES

    if family.denoiser != "transformer":
        raise TeamworkError(
            f"{where} is a {family.pipeline}, which denoises with a UNet, not a transformer",
            "--transformer FILE.gguf applies to SD3, Flux, FLUX.2-klein and Z-Image bases; drop it for SD2/SDXL",
        )
    entry = index.get("transformer")
    name = entry[1] if isinstance(entry, list) and len(entry) == 2 else None
    cls = getattr(diffusers, name, None) if isinstance(name, str) else None
    loadable = [getattr(diffusers, n, None) for n in SINGLE_FILE_LOADABLE_CLASSES]
    if cls is None or not any(isinstance(c, type) and issubclass(cls, c) for c in loadable):
        raise TeamworkError(
            f"{where}: its transformer ({name or 'unnamed in model_index.json'}) has no single-file loader in "
            f"diffusers {diffusers.__version__}, so it cannot be read from a GGUF file",
            "drop --transformer (the pipeline's own weights are used), or use a diffusers version whose "
            "from_single_file supports this transformer",
        )
    return cls


def load_gguf_transformer(
    path: str | Path, family: Family, index: dict, source: str, compute_dtype: torch.dtype, where: str
) -> nn.Module:
    """The transformer of `source` (a pipeline folder or hub id) with its weights from the GGUF file at `path`,
    computing in `compute_dtype`."""
    p = check_gguf_file(path)
    cls = transformer_class(family, index, where)
    try:
        from diffusers import GGUFQuantizationConfig
        from diffusers.utils import is_gguf_available

        available = is_gguf_available()
    except ImportError:
        available = False
    if not available:
        raise TeamworkError(
            "reading GGUF files needs the gguf package, which is not installed",
            "pip install 'teamwork[gguf]' (or pip install 'gguf>=0.10')",
        )
    from teamwork_cli.models.hub.errors import offline
    from teamwork_cli.models.hub.loading import _dtype_kwarg, _quiet

    try:
        with _quiet():
            model = cls.from_single_file(
                str(p),
                config=source,
                subfolder="transformer",
                quantization_config=GGUFQuantizationConfig(compute_dtype=compute_dtype),
                local_files_only=offline() or Path(source).is_dir(),
                **_dtype_kwarg(compute_dtype),
            )
    except Exception as e:  # diffusers' converters raise KeyError/ValueError/RuntimeError on a mismatched file
        if isinstance(e, OSError) and not Path(source).is_dir():  # the config of a hub base could not be fetched
            from teamwork_cli.models.hub.errors import hub_error

            raise hub_error(f"transformer config of {where}", source, e, f"hf download {source}") from e
        raise TeamworkError(
            f"transformer file {path}: diffusers could not load it as the {cls.__name__} of {where}: "
            f"{type(e).__name__}: {e}",
            "the GGUF file must hold the transformer of the same model as --base (same architecture and size)",
        ) from e
    return model


def set_compute_dtype(model: nn.Module, dtype: torch.dtype) -> int:
    """Make every GGUFLinear of `model` dequantize into `dtype` (after its other weights were cast, e.g. to bf16
    for training); returns how many it changed."""
    n = 0
    for m in model.modules():
        if is_gguf_linear(m):
            m.compute_dtype = dtype
            n += 1
    quantizer = getattr(model, "hf_quantizer", None)
    if n and quantizer is not None and hasattr(quantizer, "compute_dtype"):
        quantizer.compute_dtype = dtype
    return n


__all__ = ["GGUF_MAGIC", "check_gguf_file", "is_gguf_linear", "load_gguf_transformer", "set_compute_dtype"]
