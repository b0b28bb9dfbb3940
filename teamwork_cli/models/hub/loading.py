"""`load_hub_denoiser`: a diffusers pipeline (local folder or hub id) as a `TeamDenoiser`.

The family comes from `model_index.json`.  The prompt embeddings are computed once with the pipeline's own
`encode_prompt`, kept on the denoiser, and the text encoders are never loaded again: the embeddings are also
cached on disk (TEAMWORK_CACHE, default ~/.cache/teamwork), which spares later runs loading e.g. SD3's and
Flux's 4.7B-parameter T5 encoder.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.denoiser import TeamDenoiser
from teamwork_cli.models.hub.errors import hub_download, hub_error
from teamwork_cli.models.hub.families import Family, family_for

_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_TEXT_PARTS = ("text_encoder", "tokenizer")
EMBEDS_VERSION = "1"


def locate(base: str) -> tuple[str, dict, Path]:
    """(what to pass to from_pretrained, model_index.json contents, local folder holding model_index.json)."""
    path = Path(base).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise TeamworkError(
                f"base model {base}: folder has no model_index.json, so it is not a diffusers pipeline",
                "pass a diffusers pipeline folder (as saved by save_pretrained), a hub id, or 'embedded'",
            )
        return str(path), json.loads(index.read_text()), path
    if not _REPO_ID.match(base) or path.exists() or base.startswith((".", "/", "~")):
        raise TeamworkError(
            f"base model {base}: no such folder, and not a hub id of the form owner/name",
            "pass a diffusers pipeline folder or a hub id such as stabilityai/stable-diffusion-3-medium-diffusers",
        )
    try:
        index = Path(hub_download(base, "model_index.json"))
    except Exception as e:  # the hub's error classes; translated into one message
        raise hub_error(f"base model {base}", base, e, f"hf download {base}") from e
    return base, json.loads(index.read_text()), index.parent  # parent: the snapshot folder of one commit


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence diffusers/transformers loading bars and notices (download bars of the hub stay)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(levels[0])
        tlog.set_verbosity(levels[1])
        dlog.enable_progress_bar()
        tlog.enable_progress_bar()


def cache_dir() -> Path:
    root = os.environ.get("TEAMWORK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "teamwork"
    )
    return Path(root) / "prompt-embeds"


def embeds_key(family: Family, folder: Path, prompt: str) -> str:
    """Identifies the text encoders: the folder (a hub snapshot folder names its commit) and their files' stats."""
    stats = []
    for part in sorted(p for p in folder.iterdir() if p.name.startswith(_TEXT_PARTS)) if folder.is_dir() else []:
        for f in sorted(part.rglob("*")):
            if f.is_file():
                st = f.stat()
                stats.append([str(f.relative_to(folder)), st.st_size, st.st_mtime_ns])
    blob = json.dumps([EMBEDS_VERSION, family.pipeline, str(folder.resolve()), prompt, stats])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _read_cached(key: str) -> dict[str, torch.Tensor] | None:
    from safetensors.torch import load_file

    path = cache_dir() / f"{key}.safetensors"
    try:
        return load_file(path) if path.is_file() else None
    except Exception:  # a damaged cache file is recomputed, not fatal
        return None


def _write_cached(key: str, embeds: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path = cache_dir() / f"{key}.safetensors"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in embeds.items()}, os.fspath(tmp))
        os.replace(tmp, path)
    except OSError:  # a read-only cache only costs the next run a text-encoder pass
        pass


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    # diffusers renamed `torch_dtype` to `dtype` (0.36+ warns on the old name); older versions only know the old.
    from diffusers.utils import deprecation_utils

    return {"dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype": dtype}


def _from_pretrained(cls, source: str, what: str, dtype: torch.dtype, **kwargs):
    try:
        with _quiet():
            return cls.from_pretrained(source, **_dtype_kwarg(dtype), **kwargs)
    except (OSError, ValueError) as e:
        if Path(source).is_dir():
            raise TeamworkError(
                f"{what}: cannot load the pipeline in {source}: {e}",
                "check that the folder is complete (save_pretrained writes every component)",
            ) from e
        raise hub_error(what, source, e, f"hf download {source}") from e


def _prompt_embeds(
    cls,
    family: Family,
    encode: Callable,
    source: str,
    folder: Path,
    prompt: str,
    dtype: torch.dtype,
    use_cache: bool,
    components: set[str],
) -> dict[str, torch.Tensor]:
    key = embeds_key(family, folder, prompt)
    cached = _read_cached(key) if use_cache else None
    if cached is not None:
        return cached
    # Text encoders run once: on the GPU if there is one (T5-XXL takes minutes on a CPU), in bf16 rather than
    # fp16 for half-precision runs (T5 overflows in fp16).
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text_dtype = torch.float32 if dtype == torch.float32 else torch.bfloat16
    skip = {name: None for name in components if not name.startswith(_TEXT_PARTS)}
    pipe = _from_pretrained(cls, source, f"text encoders of {source}", text_dtype, **skip).to(device)
    with torch.no_grad():
        embeds = {k: v.float().cpu() for k, v in encode(pipe, prompt, device).items()}
    del pipe  # frees the text encoders
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if use_cache:
        _write_cached(key, embeds)
    return embeds


def load_hub_denoiser(
    base: str,
    dtype: torch.dtype = torch.float32,
    *,
    prompt: str = "",
    vae_tiling: bool = True,
    vae_slicing: bool = False,
    cache_embeds: bool = True,
    transformer: str | Path | None = None,
    **family_options,
) -> TeamDenoiser:
    """The denoiser of a diffusers pipeline (SD3, SDXL, SD2, Flux, FLUX.2-klein, Z-Image) with `prompt`'s embeddings
    cached on it.

    base: a local pipeline folder or a hub id (downloaded or taken from the cache; HF_HUB_OFFLINE=1 honoured).
    prompt: every teammate's prompt (the published checkpoints were trained with the empty prompt).
    vae_tiling / vae_slicing: diffusers' tiled VAE (only acts above the VAE's sample_size) / one image at a time.
    family_options: `guidance` (Flux, default 3.5), `timestep_spacing` (SD2/SDXL, default "trailing"),
    `micro_conditioning` (SDXL, "published" or "diffusers").
    transformer: a GGUF file of the base's transformer, used in place of the pipeline's own weights (quantized,
    computed in `dtype`; models/hub/gguf.py).
    """
    import diffusers

    source, index, folder = locate(base)
    family = family_for(index.get("_class_name", ""), f"base model {base}")
    with _quiet():  # importing a pipeline class can log optional-dependency notices
        cls = getattr(diffusers, family.pipeline)
        encode, build = family.functions()
    _check_options(family, build, family_options)
    quantized = None
    if transformer is not None:  # checked (file, family, loader) before the text encoders run
        from teamwork_cli.models.hub.gguf import check_gguf_file, load_gguf_transformer, transformer_class

        check_gguf_file(transformer)
        transformer_class(family, index, f"base model {base}")
    components = {k for k, v in index.items() if not k.startswith("_") and isinstance(v, list)}
    embeds = _prompt_embeds(cls, family, encode, source, folder, prompt, dtype, cache_embeds, components)
    if transformer is not None:
        quantized = load_gguf_transformer(transformer, family, index, source, dtype, f"base model {base}")
    # Everything but the denoiser, VAE and scheduler stays on disk (the denoiser too when a GGUF file gives it).
    skip = {name: None for name in components if name not in (family.denoiser, "vae", "scheduler")}
    if quantized is not None:
        skip[family.denoiser] = quantized
    pipe = _from_pretrained(cls, source, f"base model {base}", dtype, **skip)
    model = getattr(pipe, family.denoiser)
    den = build(
        model, pipe.scheduler, pipe.vae, embeds, vae_tiling=vae_tiling, vae_slicing=vae_slicing, **family_options
    )
    den.base_model = base
    return den


def _check_options(family: Family, build: Callable, options: dict) -> None:
    allowed = [p.name for p in inspect.signature(build).parameters.values() if p.kind is p.KEYWORD_ONLY]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(
            f"{family.name} backbone options {bad} are not supported; allowed: {', '.join(allowed) or '(none)'}"
        )
