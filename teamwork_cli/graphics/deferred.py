"""Deferred (local) shading of intrinsic buffers under the studio rig: the classical half of neural shading.

A deferred renderer shades each pixel from its G-buffer alone: here the buffers `teamwork shade` takes (albedo,
camera-space normals, roughness, metallic, relative depth) under the studio rig the neural shader learns
(`scene.STUDIO_*`), with the BRDF, ambient and Fresnel terms of `procedural.scenes.render_scene`, and no shadows.
The buffers lack what the render also used, so it is assumed: the field of view and camera pitch are the means of
the scene sampler's ranges, a metal's colour is its basecolor buffer if given (glTF: F0 = basecolor for metals),
else grey (the albedo buffer of a metal is black), and metric depth is `NEAR + depth * (FAR - NEAR)`, the range
that fits training scenes best (`benchmarks/buffer_shading.py` refits it on seeds below procedural.scenes.EVAL_SEED0).

A shading adapter with a `deferred.in` teammate (preset shade) gets this image and learns what it misses: cast
shadows, the true light falloff, metal colours.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.graphics import scene_trace as T
from teamwork_cli.graphics.scene import STUDIO_BOUNCE, STUDIO_KEY, STUDIO_KEY_POWER, STUDIO_SKY, Light, Scene, rot_x

FOV_DEG = 50.0  # procedural.scenes.sample_scene draws 40-60 degrees
PITCH_DEG = 12.5  # and 5-20 degrees down
METAL = 0.7  # an unknown metal's specular colour (its albedo is 0)
NEAR, FAR = 2.0, 8.0  # metric depth of relative depth 0 and 1 (benchmarks/buffer_shading.py)


def deferred_shading(buffers: dict[str, Tensor], near: float = NEAR, far: float = FAR) -> Tensor:
    """Linear radiance [N, 3, H, W] of buffers given as values (albedo and the optional basecolor linear, normals
    unit vectors, roughness, metallic and relative depth in [0, 1]), shaded by the studio rig without shadows."""
    albedo = buffers["albedo"]
    n, _, h, w = albedo.shape
    t = math.tan(math.radians(FOV_DEG) / 2)
    x = (-1.0 + (2.0 * torch.arange(w) + 1.0) / w) * t
    y = (1.0 - (2.0 * torch.arange(h) + 1.0) / h) * t * h / w
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    ray = torch.stack([xx, yy, -torch.ones_like(xx)], -1).reshape(-1, 3)  # camera space, z = -1 ahead
    view = -F.normalize(ray, dim=-1)
    up = rot_x(-math.radians(PITCH_DEG)).T @ torch.tensor([0.0, 1.0, 0.0])  # world up, seen from the camera
    key = Light(torch.tensor(STUDIO_KEY), torch.full((3,), STUDIO_KEY_POWER))
    sky, bounce = torch.full((3,), STUDIO_SKY), torch.full((3,), STUDIO_SKY * STUDIO_BOUNCE)
    rig = Scene(torch.zeros(3), torch.eye(3), FOV_DEG, [], [key], sky, bounce, gain=1.0)
    out = []
    for i in range(n):
        px = {c: v[i].flatten(1).T.float() for c, v in buffers.items()}  # [C, H, W] -> [P, C]
        pos = ray * (near + px["depth"] * (far - near))  # the ray's camera z is -1, so depth scales it
        normal = F.normalize(px["normals"], dim=-1)
        metal = px["basecolor"] if "basecolor" in px else METAL  # specular F0 as glTF (docs/conventions.md 1)
        specular = (0.04 * (1 - px["metallic"]) + metal * px["metallic"]).expand(-1, 3)
        s_light, glossy = T.direct_light(rig, pos, normal, normal, view, specular, px["roughness"], shadows=False)
        ny = (normal @ up).unsqueeze(-1)
        ambient = sky * (1 + ny) / 2 + bounce * (1 - ny) / 2
        n_v = (normal * view).sum(-1, keepdim=True).clamp(0, 1)
        fresnel = specular + (1 - specular) * (1 - n_v) ** 5  # Schlick, as procedural.scenes.render_scene
        image = px["albedo"] * (s_light + ambient / math.pi) + glossy + fresnel * (sky + bounce) / (2 * math.pi)
        out.append(image.T.reshape(3, h, w))
    return torch.stack(out)
