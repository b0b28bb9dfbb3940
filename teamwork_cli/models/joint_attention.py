"""Joint attention across teammates: the coupling baseline of the Teamwork paper (Sartor & Peers 2025, Fig. 1d).

Instead of Teamwork's low-rank coordination offset, the teammates of one image communicate by attending to each
other: the token sequences of all of an image's rows are concatenated into one long sequence for self-attention
(as multi-view and joint-modality diffusion models do).  With T teammates of L tokens each, attention costs
O((T L)^2) per image against Teamwork's O(T L^2) plus a rank-r offset, which is what benchmarks/scaling.py measures.

Implemented for the SD3 MMDiT (`SD3Transformer2DModel`): a diffusers attention processor that computes the same
projections as SD3's joint (image + prompt) attention, then regroups the batch rows of each image before the
scaled dot-product attention.  Rows are the teammate-major rows of a `TeamBatch` (core/team.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from teamwork_cli.adapters.model import adapter_layers
from teamwork_cli.core.team import TeamBatch, TeamState

SUPPORTED = ("SD3Transformer2DModel",)


def team_attention(q: Tensor, k: Tensor, v: Tensor, batch: TeamBatch) -> Tensor:
    """SDPA where each image's rows form one sequence.  q, k, v: [rows, heads, L, d] -> [rows, heads, L, d]."""
    rows, heads, length, dim = q.shape
    t, n = batch.num_teammates, batch.num_groups
    if len(batch.full_teammates) == t:
        # Every teammate in every image: row = teammate * n + image, so a reshape lines each image's rows up.
        def fold(x: Tensor) -> Tensor:
            return x.view(t, n, heads, length, dim).permute(1, 2, 0, 3, 4).reshape(n, heads, t * length, dim)

        out = F.scaled_dot_product_attention(fold(q), fold(k), fold(v))
        return out.view(n, heads, t, length, dim).permute(2, 0, 1, 3, 4).reshape(rows, heads, length, dim)
    out = torch.empty_like(q)
    index = batch.row_index.to(q.device)
    for g in range(n):  # images with different active sets have different sequence lengths
        r = index[g][index[g] >= 0]

        def cat(x: Tensor, r: Tensor = r) -> Tensor:
            return x[r].transpose(0, 1).reshape(1, heads, len(r) * length, dim)

        o = F.scaled_dot_product_attention(cat(q), cat(k), cat(v))
        out[r] = o.view(heads, len(r), length, dim).transpose(0, 1)
    return out


class TeamJointAttnProcessor:
    """SD3 joint attention (image tokens + prompt tokens) over all teammates of each image at once."""

    def __init__(self, state: TeamState) -> None:
        self.state = state

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        *args,
        **kwargs,
    ) -> Tensor | tuple[Tensor, Tensor]:
        if attention_mask is not None:
            raise ValueError("TeamJointAttnProcessor takes no attention_mask (SD3 uses none)")
        batch = self.state.require()
        rows, n_img = hidden_states.shape[0], hidden_states.shape[1]

        def heads(x: Tensor, norm: nn.Module | None) -> Tensor:
            x = x.view(rows, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)
            return norm(x) if norm is not None else x

        q = heads(attn.to_q(hidden_states), attn.norm_q)
        k = heads(attn.to_k(hidden_states), attn.norm_k)
        v = heads(attn.to_v(hidden_states), None)
        if encoder_hidden_states is not None:  # prompt tokens join the sequence, as in SD3's own processor
            q = torch.cat([q, heads(attn.add_q_proj(encoder_hidden_states), attn.norm_added_q)], dim=2)
            k = torch.cat([k, heads(attn.add_k_proj(encoder_hidden_states), attn.norm_added_k)], dim=2)
            v = torch.cat([v, heads(attn.add_v_proj(encoder_hidden_states), None)], dim=2)
        out = team_attention(q, k, v, batch).transpose(1, 2).reshape(rows, -1, q.shape[1] * q.shape[3])
        image = attn.to_out[1](attn.to_out[0](out[:, :n_img].to(q.dtype)))
        if encoder_hidden_states is None:
            return image
        context = out[:, n_img:].to(q.dtype)
        if not attn.context_pre_only:
            context = attn.to_add_out(context)
        return image, context


def _attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    if not any(cls.__name__ in SUPPORTED for cls in type(model).__mro__):
        raise ValueError(
            f"joint attention across teammates is implemented for {', '.join(SUPPORTED)}; got {type(model).__name__}"
        )
    # attn: the joint image+prompt attention of each block; attn2: SD3.5's extra image-only self-attention.
    return {
        name: m
        for name, m in model.named_modules()
        if name.startswith("transformer_blocks.") and name.rsplit(".", 1)[-1] in ("attn", "attn2")
    }


def enable_joint_attention(model: nn.Module, num_teammates: int | None = None) -> TeamState:
    """Make every self-attention of the SD3 image stream attend across the teammates of each image.

    Shares the TeamState of the model's Teamwork adapter layers if it has any (the paper's baseline pairs joint
    attention with per-teammate adapters without coordination, `inject_adapter(..., communication=False)`), so
    `team_context(model, batch)` drives both; otherwise pass the returned state to `team_context(state, batch)`.
    """
    modules = _attention_modules(model)
    layers = adapter_layers(model)
    if layers:
        state = next(iter(layers.values())).state
        if num_teammates is not None and num_teammates != state.num_teammates:
            raise ValueError(f"num_teammates={num_teammates} but the model's adapters have {state.num_teammates}")
    elif num_teammates is None:
        raise ValueError("num_teammates is required when the model has no Teamwork adapter layers")
    else:
        state = TeamState(num_teammates)
    processor = TeamJointAttnProcessor(state)
    for m in modules.values():
        m.set_processor(processor)
    return state


def disable_joint_attention(model: nn.Module) -> None:
    """Back to diffusers' default processors (per-row attention, no coupling)."""
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    for m in _attention_modules(model).values():
        m.set_processor(JointAttnProcessor2_0())


__all__ = ["TeamJointAttnProcessor", "disable_joint_attention", "enable_joint_attention", "team_attention"]
