"""Scene description for the ray caster: surfaces, point lights, the camera, and the studio light rig.

These are plain data (and two rotations to pose them), shared by whoever builds a scene (`procedural.scenes`
samples random ones), traces it (`scene_trace`) or shades buffers under the studio rig (`deferred`). They live
in graphics so that rendering depends on no scene generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Surface:
    """A primitive with its material: kind 'plane' | 'sphere' | 'box' and its parameters (world units)."""

    kind: str
    params: dict[str, Tensor]
    material: dict[str, Tensor]  # basecolor [3,S,S], metallic/roughness [1,S,S], normals [3,S,S] (tangent space)
    tile: float = 1.0  # world units per texture tile


@dataclass
class Light:
    position: Tensor  # [3]
    intensity: Tensor  # [3] radiant intensity (RGB)


@dataclass
class Scene:
    camera: Tensor  # [3] position
    rotation: Tensor  # [3, 3] camera-to-world (columns: right, up, back)
    fov_deg: float  # across the image width
    surfaces: list[Surface]
    lights: list[Light]
    sky: Tensor  # [3] ambient irradiance from above
    bounce: Tensor  # [3] ambient irradiance from below
    exposure: float = 0.85  # the 97th luminance percentile lands here (before clipping)
    gain: float | None = None  # a fixed exposure gain instead (the studio rig: no per-image normalisation)


def rot_y(angle: float) -> Tensor:
    """Rotation about the y axis (up) by `angle` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(angle: float) -> Tensor:
    """Rotation about the x axis by `angle` radians (a camera's pitch)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


# The studio rig of neural shading (tasks.shade): shading buffers carry no lighting, so a shader can only learn a
# fixed one. One white key light above and to the right of the camera (in camera space, so its shadows fall
# to the left of the objects, where the camera sees them), a weak grey sky and floor bounce, and no automatic
# exposure (it would tie every pixel to the image's brightest ones). Powers are set so that the median scene's
# 97th luminance percentile lands near 0.85, as under random lighting.
STUDIO_KEY = (2.0, 2.5, -0.5)  # camera-space offset: right, up, ahead (inside the room's side walls)
STUDIO_KEY_POWER = 170.0
STUDIO_SKY = 1.1
STUDIO_BOUNCE = 0.4  # times the sky
