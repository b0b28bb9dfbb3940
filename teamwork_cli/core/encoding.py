"""Between a channel's values, its [0, 1] file encoding, and the model's [-1, 1] input.

The model sees every channel as its file encoding mapped to [-1, 1] (docs/conventions.md section 6: "inputs in [0,1]
are mapped to [-1,1]"): sRGB-encoded colours, (v+1)/2 vectors (the cleaner encoding section 6 allows the embedded
model), linear grey maps. Grey channels fill the three model channels; their output is the mean of the three.
Arrays here are torch [N, C, H, W].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.core.channels import channel_spec
from teamwork_cli.core.conventions import (
    gamma_to_linear,
    inverse_shading,
    linear_to_gamma,
    linear_to_srgb,
    shading_from_inverse,
    srgb_to_linear,
)

# Decoding caps shading here, not at infinity: an encoded value one 8-bit code below 1 already means S = 115, and
# nearer 1 the encoding's steps are wider than any real shading, so a model's near-1 output is "very bright", and
# uncapped (S = y / (1 - y)) a few such pixels dominate every error measure.
MAX_SHADING = 100.0


def encode(channel: str, value: Tensor) -> Tensor:
    """Channel values -> [0, 1] file encoding."""
    enc = channel_spec(channel).encoding
    if enc == "srgb":
        return linear_to_srgb(value.clamp(0, 1))
    if enc == "vector":
        return (value.clamp(-1, 1) + 1) / 2
    if enc == "hdr":  # unbounded shading goes through its bounded picture (docs/conventions.md section 1)
        return inverse_shading(value.clamp_min(0))
    return value.clamp(0, 1)


def decode(channel: str, encoded: Tensor) -> Tensor:
    """[0, 1] file encoding -> channel values (vectors renormalised)."""
    enc = channel_spec(channel).encoding
    encoded = encoded.clamp(0, 1)
    if enc == "srgb":
        return srgb_to_linear(encoded)
    if enc == "vector":
        return F.normalize(encoded * 2 - 1, dim=1, eps=1e-6)
    if enc == "hdr":
        return shading_from_inverse(encoded, max_shading=MAX_SHADING)
    return encoded


INPUT_CONVENTIONS = ("teamwork", "published")
# docs/conventions.md section 6: the published checkpoints saw these colours with a plain 2.2 gamma, not sRGB ...
_GAMMA_CHANNELS = frozenset({"image", "diffuse", "specular", "albedo"})
# ... and the halfway vector raw in [-1, 1] before the x*2-1 of every input, so 2h-1.
_RAW_CHANNELS = frozenset({"halfway"})


def _check_convention(convention: str) -> None:
    if convention not in INPUT_CONVENTIONS:
        raise ValueError(f"input_convention must be one of {', '.join(INPUT_CONVENTIONS)}; got {convention!r}")


def to_convention(channel: str, encoded: Tensor, convention: str) -> Tensor:
    """[0, 1] file encoding -> the encoding the model was trained on, which to_model then maps by x*2-1."""
    _check_convention(convention)
    if convention == "published":
        if channel in _GAMMA_CHANNELS:
            return linear_to_gamma(srgb_to_linear(encoded.clamp(0, 1)))
        if channel in _RAW_CHANNELS:
            return encoded * 2 - 1
    return encoded


def from_convention(channel: str, encoded: Tensor, convention: str) -> Tensor:
    """Inverse of to_convention, for outputs (after from_model)."""
    _check_convention(convention)
    if convention == "published":
        if channel in _GAMMA_CHANNELS:
            return linear_to_srgb(gamma_to_linear(encoded.clamp(0, 1)))
        if channel in _RAW_CHANNELS:
            return (encoded + 1) / 2
    return encoded


def to_model(encoded: Tensor) -> Tensor:
    """[0, 1] encoding with 1 or 3 components -> 3-channel model input in [-1, 1]."""
    if encoded.shape[1] == 1:
        encoded = encoded.expand(-1, 3, -1, -1)
    return encoded * 2 - 1


def from_model(channel: str, x: Tensor) -> Tensor:
    """3-channel model output in [-1, 1] -> the channel's [0, 1] encoding with its own component count."""
    x = ((x.float() + 1) / 2).clamp(0, 1)
    if channel_spec(channel).components == 1:
        x = x.mean(dim=1, keepdim=True)
    return x


def flat_value(channel: str, n: int, h: int, w: int) -> Tensor:
    """A neutral value, for a channel a user did not supply (e.g. flat normals)."""
    spec = channel_spec(channel)
    if spec.encoding == "vector":
        v = torch.zeros(n, 3, h, w)
        v[:, 2] = 1
        return v
    return torch.full((n, spec.components, h, w), 0.5)
