"""Preview pictures of a material: its photo under a light (or the colocated flash), and a contact sheet of
its maps above renders under several lights (docs/conventions.md sections 1 and 3)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from teamwork_cli.core.conventions import linear_to_srgb
from teamwork_cli.graphics.render import camera_height, render, to_photo

# Besides the flash, the sheet lights the patch from four sides at about 50 degrees from the vertical, low
# enough for relief to show: a bump must look lit from the light's side, which checks the normals' orientation.
SHEET_LIGHTS = {
    "light left": (-2.0, 0.0, 1.5),
    "light right": (2.0, 0.0, 1.5),
    "light top": (0.0, 2.0, 1.5),
    "light bottom": (0.0, -2.0, 1.5),
}
SHEET_MAPS = ("diffuse", "specular", "roughness", "normals", "basecolor", "metallic")


def photo(maps: dict[str, torch.Tensor], fov: float, light: tuple[float, float, float] | None) -> np.ndarray:
    """The sRGB photo (H x W x 3 in [0, 1]) under `light`, or under the colocated flash."""
    cam = (0.0, 0.0, camera_height(fov))
    lit = render(
        *(maps[c] for c in ("diffuse", "specular", "roughness", "normals")), light=light or cam, camera=cam, fov_deg=fov
    )
    return to_photo(lit)[0].permute(1, 2, 0).numpy()


def _picture(channel: str, value: torch.Tensor) -> np.ndarray:
    """A map as it looks in its PNG file (docs/conventions.md section 1), H x W x 3."""
    v = value[0].permute(1, 2, 0).numpy()
    if channel == "normals":
        v = (v + 1) / 2
    elif channel in ("diffuse", "specular", "basecolor"):
        v = linear_to_srgb(np.clip(v, 0, 1))
    return np.clip(np.broadcast_to(v, (*v.shape[:2], 3)), 0, 1)


def contact_sheet(maps: dict[str, torch.Tensor], fov: float, light: tuple[float, float, float] | None) -> np.ndarray:
    """Maps on the first row, renders on the second, each tile with a label band above it; sRGB in [0, 1]."""
    top = [(c, _picture(c, maps[c])) for c in SHEET_MAPS if c in maps]
    lights = {"flash": None} | SHEET_LIGHTS
    if light is not None:
        lights[f"light {light[0]:g},{light[1]:g},{light[2]:g}"] = light
    bottom = [(name, photo(maps, fov, pos)) for name, pos in lights.items()]
    th, tw = top[0][1].shape[:2]
    font_px = int(np.clip(tw // 14, 8, 28))
    band, gap = font_px + font_px // 2, max(2, tw // 64)
    cols = max(len(top), len(bottom))
    sheet = np.full((2 * (band + th) + 3 * gap, cols * tw + (cols + 1) * gap, 3), 0.12, np.float32)
    font = ImageFont.load_default(size=font_px)
    for row, tiles in enumerate((top, bottom)):
        y = gap + row * (band + th + gap)
        for col, (label, pic) in enumerate(tiles):
            x = gap + col * (tw + gap)
            sheet[y + band : y + band + th, x : x + tw] = pic
            text = Image.new("L", (tw, band))
            ImageDraw.Draw(text).text((2, band // 2), label, fill=255, font=font, anchor="lm")
            sheet[y : y + band, x : x + tw] = np.maximum(
                sheet[y : y + band, x : x + tw], np.asarray(text, np.float32)[..., None] / 255
            )
    return sheet
