"""Scene buffers for neural shading: which buffers a shading team takes, the neutral value of an unknown one, and
the classical deferred shading a `deferred.in` teammate is given (shared by `tasks.shade` and its training data).

Buffers are [N, C, H, W] in their file encoding (docs/conventions.md section 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from teamwork_cli.core.encoding import decode, encode, flat_value

REQUIRED = ("albedo", "normals")
OPTIONAL = ("roughness", "metallic", "depth", "basecolor")
DERIVED = "deferred"  # an input teammate computed from the buffers, never given by the user


def neutral(channel: str, n: int, h: int, w: int) -> Tensor:
    """[N, C, H, W] file encoding of an unknown buffer: flat_value's grey / +Z normal, but metallic 0 (most
    surfaces are dielectrics) and basecolor the grey `deferred.METAL` (an unknown metal's colour)."""
    if channel == "metallic":
        return torch.zeros(n, 1, h, w)
    if channel == "basecolor":
        from teamwork_cli.graphics.deferred import METAL

        return encode(channel, torch.full((n, 3, h, w), METAL))
    return encode(channel, flat_value(channel, n, h, w))


def with_deferred(buffers: dict[str, Tensor]) -> Tensor:
    """File encoding of the deferred shading of buffers in file encoding (all of REQUIRED and OPTIONAL)."""
    from teamwork_cli.graphics.deferred import deferred_shading

    return encode(DERIVED, deferred_shading({c: decode(c, buffers[c]) for c in REQUIRED + OPTIONAL}))


def albedo_from_basecolor(buffers: dict[str, Tensor]) -> dict[str, Tensor]:
    """Buffers (file encoding) with albedo = basecolor * (1 - metallic) (glTF; metallic 0 if absent) when albedo
    is missing but basecolor given: the maps an artist's metal-roughness material has."""
    if "albedo" in buffers or "basecolor" not in buffers:
        return buffers
    base = decode("basecolor", buffers["basecolor"])
    metal = decode("metallic", buffers["metallic"]) if "metallic" in buffers else torch.zeros_like(base[:, :1])
    return {**buffers, "albedo": encode("albedo", base * (1 - metal))}


__all__ = ["DERIVED", "OPTIONAL", "REQUIRED", "albedo_from_basecolor", "neutral", "with_deferred"]
