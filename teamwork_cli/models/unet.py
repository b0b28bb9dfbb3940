"""The embedded model's UNet: the architecture of diffusers' `UNet2DModel` for the configurations the embedded
model uses (DownBlock2D / UpBlock2D levels, a UNetMidBlock2D with or without self-attention), without diffusers.

Why not diffusers' own class: importing diffusers costs about 2.4 s on a 2-core CPU, more than the model's
whole pass at 512 px, and the embedded model needs none of it at inference.  The module tree, parameter names
and creation order are those of `UNet2DModel`, so

- a saved folder (`config.json` + `diffusion_pytorch_model.safetensors`) is a diffusers `UNet2DModel` folder
  and loads in diffusers unchanged, and the reverse;
- adapters address the same layer names (`down_blocks.0.resnets.0.conv1`, ...) whichever class runs them;
- the same seed gives the same initial weights, so the training recipe reproduces.

The forward follows the published UNet of Ho et al. 2020 ("Denoising Diffusion Probabilistic Models",
appendix B) as diffusers configures it: sinusoidal timestep features (flipped to cos, sin) into a two-layer MLP;
residual blocks GroupNorm-SiLU-conv, the time embedding added after the first conv; stride-2 conv downsampling,
nearest-neighbour 2x upsampling then a conv; skip connections concatenated on the way up.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
CLASS_NAME = "UNet2DModel"  # what the folder's config.json declares: diffusers loads it as that class


@dataclass(frozen=True)
class UNetConfig:
    """The `UNet2DModel` config keys this class implements; other keys must hold diffusers' defaults."""

    sample_size: int = 64
    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple[int, ...] = (224, 448, 672, 896)
    layers_per_block: int = 2
    down_block_types: tuple[str, ...] = ("DownBlock2D",) * 4
    up_block_types: tuple[str, ...] = ("UpBlock2D",) * 4
    mid_block_type: str | None = "UNetMidBlock2D"
    add_attention: bool = True
    attention_head_dim: int | None = 8
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    dropout: float = 0.0
    downsample_padding: int = 1
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    mid_block_scale_factor: float = 1.0

    # Keys accepted only at these values (diffusers' defaults; what the embedded model is built with).
    _FIXED = {
        "act_fn": "silu",
        "attn_norm_num_groups": None,
        "center_input_sample": False,
        "class_embed_type": None,
        "downsample_type": "conv",
        "num_class_embeds": None,
        "resnet_time_scale_shift": "default",
        "time_embedding_dim": None,
        "time_embedding_type": "positional",
        "upsample_type": "conv",
        "num_train_timesteps": None,
    }

    @classmethod
    def from_dict(cls, data: dict) -> UNetConfig:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        for k, v in data.items():
            if k.startswith("_") or k in names:
                continue
            if k not in cls._FIXED:
                raise ValueError(f"UNet config key {k!r} is not supported by the embedded UNet")
            if v != cls._FIXED[k]:
                raise ValueError(
                    f"UNet config {k}={v!r} is not supported by the embedded UNet (only {cls._FIXED[k]!r})"
                )
        for k in ("block_out_channels", "down_block_types", "up_block_types"):
            if k in known:
                known[k] = tuple(known[k])
        cfg = cls(**known)
        n = len(cfg.block_out_channels)
        if len(cfg.down_block_types) != n or len(cfg.up_block_types) != n:
            raise ValueError("down_block_types and up_block_types need one entry per block_out_channels")
        bad = {*cfg.down_block_types} - {"DownBlock2D"} | {*cfg.up_block_types} - {"UpBlock2D"}
        if bad or cfg.mid_block_type not in ("UNetMidBlock2D", None):
            raise ValueError(
                f"the embedded UNet has DownBlock2D/UpBlock2D levels and a UNetMidBlock2D (or none); got "
                f"{sorted(bad) or cfg.mid_block_type}"
            )
        return cfg

    def to_dict(self) -> dict:
        """config.json as diffusers writes it for a UNet2DModel (lists, every key, `_class_name`)."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"_class_name": CLASS_NAME, **data, **self._FIXED}


def timestep_features(timesteps: Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: float) -> Tensor:
    """Sinusoidal features of the timesteps (Vaswani et al. 2017, section 3.5; DDPM's time embedding):
    frequencies exp(-ln(10000) i / (dim/2 - shift)), i < dim/2, as [sin, cos], or [cos, sin] when flipped."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / (half - freq_shift)
    )
    angles = timesteps[:, None].float() * freqs[None]
    parts = [torch.cos(angles), torch.sin(angles)] if flip_sin_to_cos else [torch.sin(angles), torch.cos(angles)]
    out = torch.cat(parts, dim=-1)
    return F.pad(out, (0, 1)) if dim % 2 else out


class TimestepEmbedding(nn.Module):
    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, + projected time embedding, GroupNorm-SiLU-dropout-conv3x3, + (1x1-projected) input."""

    def __init__(self, c_in: int, c_out: int, temb: int, groups: int, eps: float, dropout: float, scale: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=eps)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None
        self.scale = scale

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        # In place where autograd allows it (a conv's or a norm's fresh output; SiLU only without gradients):
        # each full-size temporary saved is a pass over memory, which bounds these ops on a CPU.
        inplace = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        h.add_(self.time_emb_proj(F.silu(temb))[:, :, None, None].to(h.dtype))
        h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=inplace)))
        h.add_(x if self.conv_shortcut is None else self.conv_shortcut(x))
        return h if self.scale == 1 else h.div_(self.scale)


class SelfAttention(nn.Module):
    """Spatial self-attention with a GroupNorm in front and a residual connection (the mid block's)."""

    def __init__(self, c: int, head_dim: int, groups: int, eps: float, dropout: float, scale: float) -> None:
        super().__init__()
        self.heads = c // head_dim
        self.group_norm = nn.GroupNorm(groups, c, eps=eps)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c), nn.Dropout(dropout)])
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)  # [b, hw, c]

        def heads(t: Tensor) -> Tensor:
            return t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)

        q, k, v = heads(self.to_q(tokens)), heads(self.to_k(tokens)), heads(self.to_v(tokens))
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        a = self.to_out[1](self.to_out[0](a)).transpose(1, 2).reshape(b, c, h, w)
        out = a + x
        return out if self.scale == 1 else out / self.scale


class Downsample(nn.Module):
    def __init__(self, c: int, padding: int) -> None:
        super().__init__()
        if padding != 1:
            raise ValueError(f"downsample_padding must be 1 in the embedded UNet; got {padding}")
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cfg: UNetConfig, c_in: int, c_out: int, temb: int, last: bool) -> None:
        super().__init__()
        g, eps, p = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout
        self.resnets = nn.ModuleList(
            ResnetBlock(c_in if j == 0 else c_out, c_out, temb, g, eps, p, 1.0) for j in range(cfg.layers_per_block)
        )
        self.downsamplers = None if last else nn.ModuleList([Downsample(c_out, cfg.downsample_padding)])

    def forward(self, x: Tensor, temb: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = []
        for resnet in self.resnets:
            x = resnet(x, temb)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    def __init__(self, cfg: UNetConfig, c: int, temb: int) -> None:
        super().__init__()
        g, eps, p, s = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout, cfg.mid_block_scale_factor
        head = cfg.attention_head_dim or c
        # Created resnet, attention, resnet, as UNetMidBlock2D does (the order the seed's draws follow).
        first = ResnetBlock(c, c, temb, g, eps, p, s)
        attention = [SelfAttention(c, head, g, eps, p, s)] if cfg.add_attention else []
        self.attentions = nn.ModuleList(attention)
        self.resnets = nn.ModuleList([first, ResnetBlock(c, c, temb, g, eps, p, s)])

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        x = self.resnets[0](x, temb)
        if len(self.attentions):
            x = self.attentions[0](x)
        return self.resnets[1](x, temb)


class UpBlock(nn.Module):
    def __init__(self, cfg: UNetConfig, c_prev: int, c_out: int, c_skip_last: int, temb: int, last: bool) -> None:
        super().__init__()
        g, eps, p, n = cfg.norm_num_groups, cfg.norm_eps, cfg.dropout, cfg.layers_per_block + 1
        self.resnets = nn.ModuleList(
            ResnetBlock(
                (c_prev if j == 0 else c_out) + (c_skip_last if j == n - 1 else c_out), c_out, temb, g, eps, p, 1.0
            )
            for j in range(n)
        )
        self.upsamplers = None if last else nn.ModuleList([Upsample(c_out)])

    def forward(self, x: Tensor, skips: list[Tensor], temb: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
        return x if self.upsamplers is None else self.upsamplers[0](x)


class UNetOutput:
    """`.sample`, as diffusers' models return it, so callers need not know which class ran."""

    __slots__ = ("sample",)

    def __init__(self, sample: Tensor) -> None:
        self.sample = sample


class EmbeddedUNet(nn.Module):
    """`UNet2DModel`'s architecture (see the module docstring); `forward(sample, timestep).sample`."""

    def __init__(self, config: UNetConfig | dict | None = None, **kwargs) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            config = UNetConfig.from_dict({**(config or {}), **kwargs})
        self.config = config
        bc, temb = config.block_out_channels, config.block_out_channels[0] * 4
        # Creation order as in UNet2DModel: the same seed draws the same initial weights.
        self.conv_in = nn.Conv2d(config.in_channels, bc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(bc[0], temb)
        self.down_blocks = nn.ModuleList(
            DownBlock(config, bc[max(i - 1, 0)], bc[i], temb, i == len(bc) - 1) for i in range(len(bc))
        )
        self.mid_block = MidBlock(config, bc[-1], temb) if config.mid_block_type else None
        rev = bc[::-1]
        self.up_blocks = nn.ModuleList(
            UpBlock(config, rev[max(i - 1, 0)], rev[i], rev[min(i + 1, len(bc) - 1)], temb, i == len(bc) - 1)
            for i in range(len(bc))
        )
        self.conv_norm_out = nn.GroupNorm(config.norm_num_groups, bc[0], eps=config.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(bc[0], config.out_channels, 3, padding=1)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def forward(self, sample: Tensor, timestep: Tensor | float) -> UNetOutput:
        cfg = self.config
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(sample.shape[0])
        features = timestep_features(t, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        emb = self.time_embedding(features.to(self.dtype))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, s = block(x, emb)
            skips += s
        if self.mid_block is not None:
            x = self.mid_block(x, emb)
        for block in self.up_blocks:
            x = block(x, skips, emb)
        return UNetOutput(self.conv_out(self.conv_act(self.conv_norm_out(x))))

    # -- files: a diffusers UNet2DModel folder
    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> EmbeddedUNet:
        """Built on the meta device and given the file's tensors (cast once to `dtype`): no random init, no copy."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = UNetConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
        with torch.device("meta"):
            model = cls(config)
        state = {k: v.to(dtype) for k, v in load_file(folder / WEIGHTS_FILE).items()}
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: (v if dtype is None else v.to(dtype)).contiguous() for k, v in self.state_dict().items()}
        save_file(state, folder / WEIGHTS_FILE, metadata={"format": "pt"})
        (folder / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")


__all__ = ["EmbeddedUNet", "UNetConfig", "timestep_features"]
