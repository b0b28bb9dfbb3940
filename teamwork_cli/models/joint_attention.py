"""Joint attention across teammates: the coupling baseline of the Teamwork paper (Sartor & Peers 2025, Fig. 1d), and
the reference implementation's `*_PLUSATTN` profiles (docs/conventions.md section 5).

Instead of (or besides) Teamwork's low-rank coordination offset, the teammates of one image communicate by attending
to each other: the token sequences of all of an image's rows are concatenated into one long sequence for
self-attention (as multi-view and joint-modality diffusion models do).  With T teammates of L tokens each, attention
costs O((T L)^2) per image against Teamwork's O(T L^2) plus a rank-r offset, which is what benchmarks/scaling.py
measures.  Rows are the teammate-major rows of a `TeamBatch` (core/team.py); the rows of different images never
attend to each other.

Which attention modules are coupled, per backbone, as the reference's joint-attention profiles couple them:

- SD3 / SD3.5 (`SD3Transformer2DModel`): `transformer_blocks.N.attn`, the joint image + prompt attention; SD3.5's
  extra image-only `attn2` stays per row.  Every row's prompt tokens join the image's sequence.
- Flux (`FluxTransformer2DModel`): the double blocks' `transformer_blocks.N.attn`; the image's prompt tokens once
  (from its first row), then each teammate's image tokens, placed by RoPE with the teammate's image-id offset
  (`teamwork.teammate_image_ids`) added to the first id axis.
- FLUX.2 (`Flux2Transformer2DModel`, the reference's FLUX2_PLUSATTN): the double blocks' `transformer_blocks.N.attn`
  as Flux's, and the single blocks `single_transformer_blocks.N` (their fused attention sees [prompt, image] in
  one sequence; the prompt part is taken from the image's first row); teammates placed by RoPE at the T offset
  `teamwork.teammate_image_ids` (default 0, 10, 20, ...).
- SD2 / SDXL (`UNet2DConditionModel`): the self-attention `attn1` of the down and up blocks' transformer blocks.

`attn_allow` (T x T, row i: the teammates that teammate i may attend to) masks the image-to-image edges.  Tokens
belong to their row's teammate, SD3's per-row prompt tokens included; Flux's shared prompt tokens attend to and are
attended by every teammate, as in the reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from teamwork_cli.adapters.model import adapter_layers
from teamwork_cli.core.team import TeamBatch, TeamState

# denoiser class -> (the coupled modules' paths, processor kind); the paths are the reference's PLUSATTN globs.
_UNET_ATTN1 = r"(down_blocks|up_blocks)\.\d+\.attentions\.\d+\.transformer_blocks\.\d+\.attn1"
FAMILIES: dict[str, tuple[str, str]] = {
    "SD3Transformer2DModel": (r"transformer_blocks\.\d+\.attn", "mmdit"),
    "FluxTransformer2DModel": (r"transformer_blocks\.\d+\.attn", "flux"),
    # A single block is marked as a whole (as the reference's files mark it); its `attn` gets the processor.
    "Flux2Transformer2DModel": (r"transformer_blocks\.\d+\.attn|single_transformer_blocks\.\d+", "flux2"),
    "UNet2DConditionModel": (_UNET_ATTN1, "self"),
}
SUPPORTED = tuple(FAMILIES)


def allow_tensor(allow: Sequence[Sequence[bool]] | Tensor | None, num_teammates: int) -> Tensor | None:
    """A T x T bool tensor (None: every teammate may attend to every other)."""
    if allow is None:
        return None
    m = torch.as_tensor(allow, dtype=torch.bool)
    if m.shape != (num_teammates, num_teammates) or not bool(m.diagonal().all()):
        raise ValueError(
            f"attn_allow must be a {num_teammates}x{num_teammates} matrix with a true diagonal, got {m.int().tolist()}"
        )
    return None if bool(m.all()) else m


def block_mask(teammates: Sequence[int], length: int, allow: Tensor, prefix: int = 0) -> Tensor:
    """Bool SDPA mask (True: attend) of a sequence [prefix tokens, `length` tokens of each of `teammates`]; the
    prefix (Flux's shared prompt) attends to and is attended by everything."""
    idx = torch.as_tensor(list(teammates), dtype=torch.long)
    teams = allow[idx][:, idx].repeat_interleave(length, 0).repeat_interleave(length, 1)
    if not prefix:
        return teams
    full = torch.ones(prefix + teams.shape[0], prefix + teams.shape[1], dtype=torch.bool)
    full[prefix:, prefix:] = teams
    return full


def team_attention(q: Tensor, k: Tensor, v: Tensor, batch: TeamBatch, allow: Tensor | None = None) -> Tensor:
    """SDPA where each image's rows form one sequence.  q, k, v: [rows, heads, L, d] -> [rows, heads, L, d]."""
    rows, heads, length, dim = q.shape
    t, n = batch.num_teammates, batch.num_groups
    if len(batch.full_teammates) == t:
        # Every teammate in every image: row = teammate * n + image, so a reshape lines each image's rows up.
        def fold(x: Tensor) -> Tensor:
            return x.view(t, n, heads, length, dim).permute(1, 2, 0, 3, 4).reshape(n, heads, t * length, dim)

        mask = None if allow is None else block_mask(range(t), length, allow).to(q.device)
        out = F.scaled_dot_product_attention(fold(q), fold(k), fold(v), attn_mask=mask)
        return out.view(n, heads, t, length, dim).permute(2, 0, 1, 3, 4).reshape(rows, heads, length, dim)
    out = torch.empty_like(q)
    index = batch.row_index.to(q.device)
    for g in range(n):  # images with different active sets have different sequence lengths
        present = index[g] >= 0
        r = index[g][present]

        def cat(x: Tensor, r: Tensor = r) -> Tensor:
            return x[r].transpose(0, 1).reshape(1, heads, len(r) * length, dim)

        mask = None
        if allow is not None:
            mask = block_mask(present.nonzero().flatten().tolist(), length, allow).to(q.device)
        o = F.scaled_dot_product_attention(cat(q), cat(k), cat(v), attn_mask=mask)
        out[r] = o.view(heads, len(r), length, dim).transpose(0, 1)
    return out


def family_of(model: nn.Module) -> tuple[str, str]:
    for cls in type(model).__mro__:
        if cls.__name__ in FAMILIES:
            return FAMILIES[cls.__name__]
    raise ValueError(
        f"joint attention across teammates is implemented for {', '.join(SUPPORTED)}; got {type(model).__name__}"
    )


def attention_module(module: nn.Module) -> nn.Module | None:
    """The module whose processor a coupled path sets: the path's own, or (a FLUX.2 single block) its `attn`'s."""
    if hasattr(module, "set_processor"):
        return module
    attn = getattr(module, "attn", None)
    return attn if hasattr(attn, "set_processor") else None


def joint_attention_paths(model: nn.Module) -> list[str]:
    """The attention modules a joint-attention profile couples by default (the reference's PLUSATTN set)."""
    pattern, _ = family_of(model)
    return [name for name, _ in model.named_modules() if re.fullmatch(pattern, name)]


def check_joint_paths(model: nn.Module, paths: Sequence[str]) -> dict[str, nn.Module]:
    pattern, _ = family_of(model)
    modules = dict(model.named_modules())
    out = {}
    for path in paths:
        if path not in modules:
            raise ValueError(f"joint attention at {path}: not a module of {type(model).__name__}")
        if not re.fullmatch(pattern, path) or attention_module(modules[path]) is None:
            raise ValueError(
                f"joint attention at {path} ({type(modules[path]).__name__}) is not supported on "
                f"{type(model).__name__}; it couples the attention modules matching {pattern}"
            )
        out[path] = modules[path]
    if not out:
        raise ValueError(f"no attention module of {type(model).__name__} to couple")
    return out


def enable_joint_attention(
    model: nn.Module,
    num_teammates: int | None = None,
    *,
    paths: Sequence[str] | None = None,
    attn_allow: Sequence[Sequence[bool]] | Tensor | None = None,
    image_ids: Sequence[int] | None = None,
) -> TeamState:
    """Make the coupled attention modules (`paths`, default `joint_attention_paths`) attend across the teammates of
    each image.  attn_allow: which teammates each may attend to (None: all); image_ids: Flux's per-teammate RoPE
    offsets (default 0, 1, 2, ..., the reference's default for FLUX_PLUSATTN; 0, 10, 20, ... on FLUX.2).

    Shares the TeamState of the model's Teamwork adapter layers if it has any (the paper's baseline pairs joint
    attention with per-teammate adapters without coordination, `inject_adapter(..., communication=False)`), so
    `team_context(model, batch)` drives both; otherwise pass the returned state to `team_context(state, batch)`.
    """
    from teamwork_cli.models.joint_processors import make_processor

    _, kind = family_of(model)
    modules = check_joint_paths(model, joint_attention_paths(model) if paths is None else paths)
    layers = adapter_layers(model)
    if layers:
        state = next(iter(layers.values())).state
        if num_teammates is not None and num_teammates != state.num_teammates:
            raise ValueError(f"num_teammates={num_teammates} but the model's adapters have {state.num_teammates}")
    elif num_teammates is None:
        raise ValueError("num_teammates is required when the model has no Teamwork adapter layers")
    else:
        state = TeamState(num_teammates)
    t = state.num_teammates
    # The reference's defaults: FLUX.2 klein's reference-image T ids 0, 10, 20, ...; elsewhere 0, 1, 2, ...
    step = 10 if kind == "flux2" else 1
    ids = [step * i for i in range(t)] if image_ids is None else [int(i) for i in image_ids]
    if len(ids) != t:
        raise ValueError(f"image_ids {ids} must have one entry per teammate ({t})")
    processor = make_processor(kind, state, allow_tensor(attn_allow, t), ids, model)
    for m in modules.values():
        attention_module(m).set_processor(processor)
    return state


def joint_attention_layers(model: nn.Module) -> list[str]:
    """Paths of the modules that currently attend across teammates (what a file marks with `P.adapter`)."""
    from teamwork_cli.models.joint_processors import TeamProcessor

    try:
        pattern, _ = family_of(model)
    except ValueError:  # a denoiser without joint attention (the embedded UNet, Z-Image)
        return []
    return [
        name
        for name, m in model.named_modules()
        if re.fullmatch(pattern, name) and isinstance(getattr(attention_module(m), "processor", None), TeamProcessor)
    ]


def disable_joint_attention(model: nn.Module) -> None:
    """Back to diffusers' default processors (per-row attention, no coupling)."""
    from teamwork_cli.models.joint_processors import default_processor

    _, kind = family_of(model)
    modules = dict(model.named_modules())
    for name in joint_attention_layers(model):
        attn = attention_module(modules[name])
        attn.processor.release()
        attn.set_processor(default_processor(kind, attn))


__all__ = [
    "FAMILIES",
    "allow_tensor",
    "attention_module",
    "block_mask",
    "check_joint_paths",
    "disable_joint_attention",
    "enable_joint_attention",
    "joint_attention_layers",
    "joint_attention_paths",
    "team_attention",
]
