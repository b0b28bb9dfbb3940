"""Teamwork adapter layers: low-rank coordination and adaptation (Sartor & Peers 2025).

One denoiser forward processes a *team*: every image (group) has one batch row per active teammate (the row
layout, `TeamBatch`, is in core/team.py). Each adapted layer of teammate t of an image with active set S computes
(docs/conventions.md section 5)

    y_t = base(x_t) + (sum_{s in S} x_s A_s) B_t + bias_t            (coordination on)
    y_t = base(x_t) + x_t A_t B_t + bias_t                           (coordination off, the ablation)

with A = `down` [T, in, rank], B = `up` [T, rank, out], and no scaling factor.  Rows are laid out
teammate-major (all rows of teammate 0, then teammate 1, ...) so each teammate's rows are one contiguous
slice: the layer does one matmul per teammate on a view of the input, never a gather of activations.
When every image has every teammate (the usual sampling batch) TeamworkLinear and TeamworkConv2d instead line
the teammates up in one [T, ...] view and use batched matmuls.

Structure follows peft's tuner layers: the wrapper holds the frozen `base_layer` and a child module named
`adapter` with the explicit parameters, so `model.state_dict()` names them `P.adapter.down` etc., which is
exactly the published checkpoint key layout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from teamwork_cli.core.team import TeamBatch, TeamState


class TeamworkParams(nn.Module):
    """The adapter's own parameters; a child named `adapter` so keys read `P.adapter.down/up/bias`."""

    def __init__(
        self,
        num_teammates: int,
        in_features: int,
        out_features: int,
        rank: int,
        use_bias: bool,
        dtype: torch.dtype,
        device: torch.device,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.down = nn.Parameter(torch.empty(num_teammates, in_features, rank, **kw))
        self.up = nn.Parameter(torch.empty(num_teammates, rank, out_features, **kw))
        self.register_parameter(
            "bias", nn.Parameter(torch.empty(num_teammates, out_features, **kw)) if use_bias else None
        )  # published format: no bias tensor when off
        if init_weights:  # a loader that overwrites everything skips this (and leaves the global RNG alone)
            self.reset_parameters()

    def reset_parameters(self) -> None:
        # Inits from docs/conventions.md section 5: zero `up` makes a fresh adapter an exact no-op.
        with torch.no_grad():
            self.down.normal_(0.0, 0.02)
            self.up.zero_()
            if self.bias is not None:
                self.bias.zero_()


class TeamworkLayer(nn.Module):
    """Common forward; subclasses say how to apply A_t / B_t to their tensor layout."""

    in_features: int
    out_features: int

    def __init__(
        self,
        base_layer: nn.Module,
        in_features: int,
        out_features: int,
        num_teammates: int,
        rank: int,
        state: TeamState | None = None,
        *,
        communication: bool = True,
        use_bias: bool | None = None,
        dtype: torch.dtype = torch.float32,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        if num_teammates < 1 or rank < 1:
            raise ValueError(f"num_teammates and rank must be >= 1, got {num_teammates} and {rank}")
        if state is not None and state.num_teammates != num_teammates:
            raise ValueError(f"state has {state.num_teammates} teammates, layer asked for {num_teammates}")
        base_bias = getattr(base_layer, "bias", None)
        use_bias = (base_bias is not None) if use_bias is None else use_bias
        self.base_layer = base_layer
        self.in_features, self.out_features = in_features, out_features
        self.adapter = TeamworkParams(
            num_teammates, in_features, out_features, rank, use_bias, dtype, base_layer.weight.device, init_weights
        )
        self.communication = communication
        self.state = state if state is not None else TeamState(num_teammates)

    # Delegation, as peft does: diffusers reads e.g. `attn.to_q.weight.dtype`.
    @property
    def weight(self) -> Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base_layer.bias

    @property
    def rank(self) -> int:
        return self.adapter.down.shape[2]

    @property
    def num_teammates(self) -> int:
        return self.adapter.down.shape[0]

    def _base(self, x: Tensor) -> Tensor:
        return self.base_layer(x)

    def _down(self, x: Tensor, t: int) -> Tensor:
        raise NotImplementedError

    def _add_up(self, out: Tensor, h: Tensor, t: int) -> None:
        """out += h B_t, in place, where h is this slice's rank-space activation."""
        raise NotImplementedError

    def _bias(self, t: int) -> Tensor:
        raise NotImplementedError

    def _add_dense(self, x: Tensor, out: Tensor, batch: TeamBatch) -> bool:
        """Optional fast path when every image has every teammate; False = not handled, use the slices."""
        return False

    def forward(self, x: Tensor) -> Tensor:
        batch = self.state.require()
        if x.shape[0] != batch.num_rows:
            raise ValueError(
                f"input has {x.shape[0]} rows but the team batch has {batch.num_rows} "
                f"({batch.num_groups} images, {batch.num_teammates} teammates)"
            )
        out = self._base(x)
        down = self.adapter.down
        if x.dtype != down.dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(down.dtype)
        # The offset is added in place into the fresh base output (in its dtype): no full-size temporary.
        if len(batch.full_teammates) == batch.num_teammates and self._add_dense(x, out, batch):
            return out
        if self.communication:
            gids = batch.group_ids_on(x.device)
            z: Tensor | None = None
            for t, a, b in batch.slices:
                h = self._down(x[a:b], t)
                if z is None:
                    z = h.new_zeros((batch.num_groups, *h.shape[1:]))
                z.index_add_(0, gids[a:b], h)  # per-image sum over the active set S
            assert z is not None
            for t, a, b in batch.slices:
                zt = z if t in batch.full_teammates else z.index_select(0, gids[a:b])
                self._add_up(out[a:b], zt, t)
        else:
            for t, a, b in batch.slices:
                self._add_up(out[a:b], self._down(x[a:b], t), t)
        if self.adapter.bias is not None:
            for t, a, b in batch.slices:
                out[a:b].add_(self._bias(t))
        return out


class TeamworkLinear(TeamworkLayer):
    """nn.Linear with a Teamwork adapter; inputs [rows, ..., in] (token dimensions allowed)."""

    def __init__(
        self,
        base_layer: nn.Linear,
        num_teammates: int,
        rank: int,
        state: TeamState | None = None,
        *,
        communication: bool = True,
        use_bias: bool | None = None,
        dtype: torch.dtype = torch.float32,
        init_weights: bool = True,
    ) -> None:
        super().__init__(
            base_layer,
            base_layer.in_features,
            base_layer.out_features,
            num_teammates,
            rank,
            state,
            communication=communication,
            use_bias=use_bias,
            dtype=dtype,
            init_weights=init_weights,
        )

    def _down(self, x: Tensor, t: int) -> Tensor:
        return torch.matmul(x, self.adapter.down[t])

    def _add_up(self, out: Tensor, h: Tensor, t: int) -> None:
        up = self.adapter.up[t]
        if out.dtype == h.dtype == up.dtype and out.is_contiguous() and h.is_contiguous():
            # BLAS C += A B straight into the base output: no [rows, ..., out] temporary and one pass less
            # over the output-sized tensor than matmul + add_.
            out.view(-1, up.shape[1]).addmm_(h.view(-1, up.shape[0]), up)
        else:  # autocast or mixed dtypes: in-place addmm_ would not cast
            out.add_(torch.matmul(h, up))

    def _bias(self, t: int) -> Tensor:
        return self.adapter.bias[t]

    def _add_dense(self, x: Tensor, out: Tensor, batch: TeamBatch) -> bool:
        # Every teammate active in every image (the usual sampling batch): rows t*N + g, so [T, N*tokens, .]
        # views line teammates up and one batched matmul per step replaces T small ones.  Fewer kernel launches
        # matter on a shared CPU, where each parallel region can wait on a descheduled thread.
        if not (x.is_contiguous() and out.is_contiguous()):
            return False
        t = batch.num_teammates
        _dense_offset(self, x.view(t, -1, self.in_features), out.view(t, -1, self.out_features))
        return True


def _dense_offset(layer: TeamworkLayer, x: Tensor, out: Tensor) -> None:
    """out[t] += (sum_s x[s] A_s) B_t + bias_t (or x[t] A_t B_t + bias_t without coordination), in place, for
    [T, M, in] and [T, M, out] views whose rows line up across teammates."""
    ad = layer.adapter
    h = torch.bmm(x, ad.down)  # [T, M, rank]
    if layer.communication:
        h = h.sum(dim=0).expand_as(h)  # the image's sum over S, the same for every teammate
    # The offset goes into the base output in its own dtype (bf16 under autocast): one fused C += A B and no
    # output-sized temporary; the small factors are cast, never the activations.  A bias in another dtype
    # would make the in-place add compute in fp32 through a full-size temporary (4x slower on a CPU).
    up = ad.up if ad.up.dtype == out.dtype else ad.up.to(out.dtype)
    out.baddbmm_(h.to(out.dtype), up)
    if ad.bias is not None:
        out.add_(ad.bias.to(out.dtype).unsqueeze(1))


class TeamworkConv2d(TeamworkLayer):
    """nn.Conv2d with a pointwise (1x1) Teamwork offset on the input grid, strided like the base layer.

    Computed as [rank, C] @ [n, C, H*W] matmuls on NCHW views, which needs no copy of the activations
    or of the parameters (a 1x1 conv is a matmul over channels).
    """

    def __init__(
        self,
        base_layer: nn.Conv2d,
        num_teammates: int,
        rank: int,
        state: TeamState | None = None,
        *,
        communication: bool = True,
        use_bias: bool | None = None,
        dtype: torch.dtype = torch.float32,
        init_weights: bool = True,
    ) -> None:
        k, pad, dil = base_layer.kernel_size, base_layer.padding, base_layer.dilation
        if isinstance(pad, str):
            ok = pad == "same" or all(kk == 1 for kk in k)
        else:
            ok = all(2 * p == d * (kk - 1) for kk, p, d in zip(k, pad, dil, strict=True))
        if not ok:  # otherwise the output grid differs from the strided input grid
            raise ValueError(
                f"Conv2d with kernel {k}, padding {pad}, dilation {dil} does not keep the input "
                "grid; only 'same'-padded convolutions (2*padding == dilation*(kernel-1)) are "
                "supported"
            )
        super().__init__(
            base_layer,
            base_layer.in_channels,
            base_layer.out_channels,
            num_teammates,
            rank,
            state,
            communication=communication,
            use_bias=use_bias,
            dtype=dtype,
            init_weights=init_weights,
        )
        self.stride = (int(base_layer.stride[0]), int(base_layer.stride[1]))

    def _down(self, x: Tensor, t: int) -> Tensor:
        sh, sw = self.stride
        if sh != 1 or sw != 1:
            x = x[:, :, ::sh, ::sw]
        n, c = x.shape[:2]
        return torch.matmul(self.adapter.down[t].mT, x.reshape(n, c, -1))  # [n, rank, H*W]

    def _add_up(self, out: Tensor, h: Tensor, t: int) -> None:
        out.add_(torch.matmul(self.adapter.up[t].mT, h).view(out.shape))

    def _bias(self, t: int) -> Tensor:
        return self.adapter.bias[t][:, None, None]

    def _add_dense(self, x: Tensor, out: Tensor, batch: TeamBatch) -> bool:
        # Every teammate active in every image: rows t*N + g, so teammates line up in a [T, ...] view and
        # batched matmuls replace 2T small ones (and their autograd bookkeeping): training runs ~2x faster.
        if self.stride != (1, 1):
            return False
        t, n = batch.num_teammates, batch.num_groups
        cl = torch.channels_last
        if x.is_contiguous(memory_format=cl) and out.is_contiguous(memory_format=cl) and not x.is_contiguous():
            # Channels-last (NHWC) activations, as oneDNN's convolutions prefer: the 1x1 offset is then the
            # linear layer's, on [T, N*H*W, C] views of the NHWC memory.
            xv = x.permute(0, 2, 3, 1).reshape(t, -1, self.in_features)
            _dense_offset(self, xv, out.permute(0, 2, 3, 1).view(t, -1, self.out_features))
            return True
        if not (x.is_contiguous() and out.is_contiguous()):
            return False
        ad = self.adapter
        h = torch.matmul(ad.down.mT.unsqueeze(1), x.view(t, n, self.in_features, -1))  # [T, N, rank, HW]
        if self.communication:
            h = h.sum(dim=0, keepdim=True)  # the image's sum over S, shared by every teammate
        o = out.view(t, n, self.out_features, -1)
        o.add_(torch.matmul(ad.up.mT.unsqueeze(1), h).to(o.dtype))
        if ad.bias is not None:
            o.add_(ad.bias[:, None, :, None].to(o.dtype))
        return True


class TeamworkGGUFLinear(TeamworkLinear):
    """diffusers' GGUFLinear (an nn.Linear whose weight is GGUF-quantized uint8 blocks, dequantized at each
    forward into its `compute_dtype`; models/hub/gguf.py) with a Teamwork adapter.

    The base output is the dequantized layer's, in the compute dtype; the low-rank offset is added onto it in
    that dtype (its factors cast, as for any base dtype).  The input is cast to the compute dtype first, outside
    autocast: GGUFLinear's native forward does not cast it, and F.linear refuses mixed dtypes.
    """

    def _base(self, x: Tensor) -> Tensor:
        compute = self.base_layer.compute_dtype
        if compute is not None and x.dtype != compute and not torch.is_autocast_enabled(x.device.type):
            x = x.to(compute)
        return self.base_layer(x)


def is_gguf_linear(module: nn.Module) -> bool:
    """diffusers' GGUFLinear, recognised by what it holds (a `compute_dtype` and a weight with a GGUF
    `quant_type`), so the adapters import neither diffusers nor gguf."""
    return isinstance(module, nn.Linear) and hasattr(module, "compute_dtype") and hasattr(module.weight, "quant_type")


# Dispatch by layer type (isinstance, so diffusers' LoRACompatible* subclasses are covered); GGUFLinear, an
# nn.Linear subclass, is picked out first.
ADAPTER_CLASSES: dict[type[nn.Module], type[TeamworkLayer]] = {nn.Linear: TeamworkLinear, nn.Conv2d: TeamworkConv2d}


def adapter_class_for(module: nn.Module) -> type[TeamworkLayer] | None:
    if is_gguf_linear(module):
        return TeamworkGGUFLinear
    for base_type, cls in ADAPTER_CLASSES.items():
        if isinstance(module, base_type):
            return cls
    return None


__all__ = [
    "ADAPTER_CLASSES",
    "TeamworkConv2d",
    "TeamworkGGUFLinear",
    "TeamworkLayer",
    "TeamworkLinear",
    "TeamworkParams",
    "adapter_class_for",
    "is_gguf_linear",
]
