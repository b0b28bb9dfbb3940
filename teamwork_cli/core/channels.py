"""Channel table: what each channel means and how its files store it (docs/conventions.md section 1).

A channel's *value* is what the renderer and the metrics use: linear reflectance for colour maps, raw unit
vectors in [-1, 1] for normals and halfway, roughness as stored.  Its *file encoding* says how PNG/JPEG/TIFF
hold that value; EXR always holds the value itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["srgb", "linear", "vector", "hdr"]
NAME_RE = re.compile(r"^[a-z]+$")
TEAMMATE_RE = re.compile(r"^([a-z]+)\.(in|out)$")
# How a normal map file may store +Y (section 1): OpenGL (+Y up, what is stored) or DirectX (+Y down).
NORMAL_CONVENTIONS = ("opengl", "directx")


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    components: int  # 1 (grey, single-channel files) or 3
    encoding: Encoding  # srgb: sRGB transfer in 8/16-bit files; vector: (v+1)/2; hdr: unbounded, EXR preferred
    description: str = ""

    @property
    def is_grey(self) -> bool:
        return self.components == 1


_TABLE = [
    ChannelSpec("image", 3, "srgb", "photograph or rendering (linear radiance)"),
    ChannelSpec("diffuse", 3, "srgb", "diffuse albedo"),
    ChannelSpec("specular", 3, "srgb", "specular albedo F0"),
    ChannelSpec("roughness", 1, "linear", "perceptual roughness (GGX alpha = r^2)"),
    ChannelSpec("normals", 3, "vector", "unit normal, OpenGL convention"),
    ChannelSpec("halfway", 3, "vector", "half vector of a colocated flash"),
    ChannelSpec("basecolor", 3, "srgb", "glTF base colour"),
    ChannelSpec("metallic", 1, "linear", "glTF metalness"),
    ChannelSpec("albedo", 3, "srgb", "total diffuse reflectance"),
    ChannelSpec("diffuseshading", 3, "hdr", "diffuse shading S (unbounded)"),
    ChannelSpec("inverseshading", 3, "linear", "(S / (1 + S)) ** (1 / 2.2)"),
    ChannelSpec("residual", 3, "srgb", "non-diffuse light"),
    ChannelSpec("depth", 1, "linear", "relative depth, larger is farther, in [0, 1]"),
    ChannelSpec("mask", 1, "linear", "1 = fill this pixel, 0 = keep"),
    ChannelSpec("height", 1, "linear", "relative height"),
    ChannelSpec("render", 3, "srgb", "re-rendering of estimated maps"),
    ChannelSpec("deferred", 3, "srgb", "local shading of the shading buffers (computed by teamwork shade)"),
]
CHANNELS: dict[str, ChannelSpec] = {c.name: c for c in _TABLE}


def channel_spec(name: str) -> ChannelSpec:
    """Spec of a channel; a user's own channel (any `[a-z]+` name) is 3-component linear data."""
    if not NAME_RE.match(name):
        raise ValueError(f"channel name {name!r} must match [a-z]+")
    return CHANNELS.get(name, ChannelSpec(name, 3, "linear", "user channel"))
