"""diffusers attention processors that attend across the teammates of each image (models/joint_attention.py).

Each computes the same projections as diffusers' own processor for its module (the projections are per token, so
the adapter layers in them act per row as usual), regroups the rows of each image into one sequence before the
scaled dot-product attention, and splits the result back into rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from teamwork_cli.core.team import TeamState
from teamwork_cli.models.joint_attention import block_mask, team_attention


class TeamProcessor:
    """Common state: the team's row layout, the attn_allow mask (None: all edges) and the RoPE image-id offsets."""

    def __init__(self, state: TeamState, allow: Tensor | None, image_ids: Sequence[int]) -> None:
        self.state = state
        self.allow = allow
        self.image_ids = list(image_ids)

    def release(self) -> None:
        """Undo what the processor hooked into the model (nothing, but for FLUX.2's)."""


def _heads(x: Tensor, heads: int, norm: nn.Module | None = None) -> Tensor:
    """[rows, L, heads * d] -> [rows, heads, L, d], then the module's q/k norm where it has one."""
    x = x.view(x.shape[0], -1, heads, x.shape[-1] // heads).transpose(1, 2)
    return norm(x) if norm is not None else x


class TeamSelfAttnProcessor(TeamProcessor):
    """SD2/SDXL `attn1` (diffusers' AttnProcessor2_0 for self-attention) over all teammates of each image."""

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
    ) -> Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("joint attention couples self-attention only (no encoder states, no attention mask)")
        if getattr(attn, "spatial_norm", None) is not None or getattr(attn, "group_norm", None) is not None:
            raise ValueError("joint attention does not support attention with a spatial or group norm")
        batch = self.state.require()
        residual, shape = hidden_states, hidden_states.shape
        if hidden_states.ndim == 4:
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        q = _heads(attn.to_q(hidden_states), attn.heads, attn.norm_q)
        k = _heads(attn.to_k(hidden_states), attn.heads, attn.norm_k)
        v = _heads(attn.to_v(hidden_states), attn.heads)
        out = team_attention(q, k, v, batch, self.allow).transpose(1, 2).flatten(2).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if len(shape) == 4:
            out = out.transpose(1, 2).reshape(shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class TeamJointAttnProcessor(TeamProcessor):
    """SD3 joint attention (image tokens + each row's prompt tokens) over all teammates of each image at once."""

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
        n_img = hidden_states.shape[1]
        q = _heads(attn.to_q(hidden_states), attn.heads, attn.norm_q)
        k = _heads(attn.to_k(hidden_states), attn.heads, attn.norm_k)
        v = _heads(attn.to_v(hidden_states), attn.heads)
        if encoder_hidden_states is not None:  # prompt tokens join the sequence, as in SD3's own processor
            q = torch.cat([q, _heads(attn.add_q_proj(encoder_hidden_states), attn.heads, attn.norm_added_q)], dim=2)
            k = torch.cat([k, _heads(attn.add_k_proj(encoder_hidden_states), attn.heads, attn.norm_added_k)], dim=2)
            v = torch.cat([v, _heads(attn.add_v_proj(encoder_hidden_states), attn.heads)], dim=2)
        out = team_attention(q, k, v, batch, self.allow).transpose(1, 2).flatten(2)
        image = attn.to_out[1](attn.to_out[0](out[:, :n_img].to(q.dtype)))
        if encoder_hidden_states is None:
            return image
        context = out[:, n_img:].to(q.dtype)
        if not attn.context_pre_only:
            context = attn.to_add_out(context)
        return image, context


class TeamFluxAttnProcessor(TeamProcessor):
    """Flux double-block attention: per image one sequence [its prompt tokens (from its first row), the image tokens
    of each active teammate], each teammate's tokens rotated at its own image ids: the row's ids with the teammate's
    offset added to the first id axis (RoPE positions compose: rotation by p + o = rotation by p, then by o)."""

    def __init__(self, state: TeamState, allow: Tensor | None, image_ids: Sequence[int], rope: tuple[float, int]):
        super().__init__(state, allow, image_ids)
        self.theta, self.axis0_dim = rope

    def _offset(self, cos: Tensor, sin: Tensor, offset: int) -> tuple[Tensor, Tensor]:
        if offset == 0:
            return cos, sin
        # Flux's FluxPosEmbed: axis 0 takes the first axes_dim[0] channels, frequency theta^(-2j/dim), each
        # channel pair repeated (repeat_interleave_real); the other axes are unchanged by an axis-0 offset.
        d = self.axis0_dim
        freqs = 1.0 / self.theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        angle = torch.zeros(cos.shape[-1], dtype=torch.float64)
        angle[:d] = (offset * freqs).repeat_interleave(2)
        cb, sb = angle.cos().to(cos), angle.sin().to(cos)
        return cos * cb - sin * sb, sin * cb + cos * sb

    def _attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        tq: Tensor,
        tk: Tensor,
        tv: Tensor,
        image_rotary_emb: tuple[Tensor, Tensor] | None,
        batch,
    ) -> tuple[Tensor, Tensor]:
        """Image q/k/v [rows, n_img, heads, d] and prompt q/k/v [rows, n_txt, heads, d] (RoPE not yet applied) ->
        (image out, prompt out), each image's rows attending as one sequence, its prompt taken from its first row
        and its prompt output given to all its rows."""
        from diffusers.models.embeddings import apply_rotary_emb

        n_txt, n_img = tq.shape[1], q.shape[1]
        rope = None
        if image_rotary_emb is not None:
            cos, sin = image_rotary_emb
            rope = (cos[:n_txt], sin[:n_txt]), [self._offset(cos[n_txt:], sin[n_txt:], o) for o in self.image_ids]
        img_out = torch.empty_like(q)
        txt_out = torch.empty_like(tq)
        index = batch.row_index.to(q.device)
        for g in range(batch.num_groups):
            present = index[g] >= 0
            rows, teams = index[g][present], present.nonzero().flatten().tolist()
            first = int(rows[0])
            qs, ks = [tq[first : first + 1]], [tk[first : first + 1]]
            if rope is not None:
                qs, ks = (
                    [apply_rotary_emb(qs[0], rope[0], sequence_dim=1)],
                    [apply_rotary_emb(ks[0], rope[0], sequence_dim=1)],
                )
            for r, t in zip(rows.tolist(), teams, strict=True):
                qr, kr = q[r : r + 1], k[r : r + 1]
                if rope is not None:
                    qr, kr = (
                        apply_rotary_emb(qr, rope[1][t], sequence_dim=1),
                        apply_rotary_emb(kr, rope[1][t], sequence_dim=1),
                    )
                qs.append(qr)
                ks.append(kr)
            vs = [tv[first : first + 1], *(v[r : r + 1] for r in rows.tolist())]
            mask = None if self.allow is None else block_mask(teams, n_img, self.allow, prefix=n_txt).to(q.device)
            o = F.scaled_dot_product_attention(
                *(torch.cat(x, dim=1).transpose(1, 2) for x in (qs, ks, vs)), attn_mask=mask
            ).transpose(1, 2)  # [1, n_txt + len(rows) * n_img, heads, d]
            txt_out[rows] = o[:, :n_txt].expand(len(rows), -1, -1, -1)
            img_out[rows] = o[0, n_txt:].unflatten(0, (len(rows), n_img))
        return img_out, txt_out

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        image_rotary_emb: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        if encoder_hidden_states is None or attention_mask is not None:
            raise ValueError("joint attention on Flux couples the double blocks (prompt tokens, no attention mask)")
        batch = self.state.require()

        def split(x: Tensor, norm: nn.Module | None) -> Tensor:  # [rows, L, heads, d], as diffusers' processor
            x = x.unflatten(-1, (-1, attn.head_dim))
            return norm(x) if norm is not None else x

        q, k, v = split(attn.to_q(hidden_states), attn.norm_q), split(attn.to_k(hidden_states), attn.norm_k), None
        v = split(attn.to_v(hidden_states), None)
        tq = split(attn.add_q_proj(encoder_hidden_states), attn.norm_added_q)
        tk = split(attn.add_k_proj(encoder_hidden_states), attn.norm_added_k)
        tv = split(attn.add_v_proj(encoder_hidden_states), None)
        img_out, txt_out = self._attend(q, k, v, tq, tk, tv, image_rotary_emb, batch)
        image = attn.to_out[1](attn.to_out[0](img_out.flatten(2).to(q.dtype)))
        return image, attn.to_add_out(txt_out.flatten(2).to(q.dtype))


class TeamFlux2Processor(TeamFluxAttnProcessor):
    """FLUX.2: the double blocks' attention as Flux's (same projections and norms), and the single blocks' fused
    attention (diffusers' Flux2ParallelSelfAttnProcessor), whose one sequence per row is [prompt, image]: its
    q/k/v are split there, the image part attends across teammates and the prompt part (from each image's first
    row) with them, as the reference's joint single block does; the MLP half and the fused output projection stay
    per row.  The prompt length comes from the transformer's own call (a forward pre-hook)."""

    def __init__(self, state, allow, image_ids, rope, model: nn.Module) -> None:
        super().__init__(state, allow, image_ids, rope)
        self.text_len: int | None = None
        self._hook = model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        ehs = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        self.text_len = None if ehs is None else int(ehs.shape[1])

    def release(self) -> None:
        self._hook.remove()

    def __call__(self, attn: nn.Module, hidden_states: Tensor, *args, **kwargs):
        if not hasattr(attn, "to_qkv_mlp_proj"):
            return super().__call__(attn, hidden_states, *args, **kwargs)
        names = ("attention_mask", "image_rotary_emb")
        call = {**dict(zip(names, args, strict=False)), **kwargs}
        if call.get("attention_mask") is not None or self.text_len is None:
            raise ValueError(
                "joint attention on FLUX.2 single blocks needs the transformer's prompt, no attention mask"
            )
        batch, n_txt = self.state.require(), self.text_len
        proj = attn.to_qkv_mlp_proj(hidden_states)
        qkv, mlp = torch.split(proj, [3 * attn.inner_dim, proj.shape[-1] - 3 * attn.inner_dim], dim=-1)
        q, k, v = (x.unflatten(-1, (-1, attn.head_dim)) for x in qkv.chunk(3, dim=-1))
        q, k = attn.norm_q(q), attn.norm_k(k)  # per head: the same before or after the split
        img, txt = self._attend(
            q[:, n_txt:],
            k[:, n_txt:],
            v[:, n_txt:],
            q[:, :n_txt],
            k[:, :n_txt],
            v[:, :n_txt],
            call.get("image_rotary_emb"),
            batch,
        )
        out = torch.cat([txt, img], dim=1).flatten(2).to(q.dtype)
        return attn.to_out(torch.cat([out, attn.mlp_act_fn(mlp)], dim=-1))


def make_processor(
    kind: str, state: TeamState, allow: Tensor | None, image_ids: Sequence[int], model: nn.Module
) -> TeamProcessor:
    if kind == "self":
        return TeamSelfAttnProcessor(state, allow, image_ids)
    if kind == "mmdit":
        return TeamJointAttnProcessor(state, allow, image_ids)
    pos = model.pos_embed  # Flux(2)PosEmbed: the theta and per-axis channel counts of the ids' rotary embedding
    rope = (float(pos.theta), int(pos.axes_dim[0]))
    if kind == "flux2":
        return TeamFlux2Processor(state, allow, image_ids, rope, model)
    return TeamFluxAttnProcessor(state, allow, image_ids, rope)


def default_processor(kind: str, attn: nn.Module | None = None):
    if kind == "self":
        from diffusers.models.attention_processor import AttnProcessor2_0

        return AttnProcessor2_0()
    if kind == "mmdit":
        from diffusers.models.attention_processor import JointAttnProcessor2_0

        return JointAttnProcessor2_0()
    if kind == "flux2":
        from diffusers.models.transformers import transformer_flux2 as f2

        if hasattr(attn, "to_qkv_mlp_proj"):
            return f2.Flux2ParallelSelfAttnProcessor()
        return f2.Flux2AttnProcessor()
    from diffusers.models.transformers.transformer_flux import FluxAttnProcessor

    return FluxAttnProcessor()


__all__ = [
    "TeamFlux2Processor",
    "TeamFluxAttnProcessor",
    "TeamJointAttnProcessor",
    "TeamProcessor",
    "TeamSelfAttnProcessor",
    "default_processor",
    "make_processor",
]
