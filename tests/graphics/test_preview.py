"""Preview pictures of a material: the photo under a light, and the contact sheet of maps over renders."""

from __future__ import annotations

import numpy as np
import torch

from teamwork_cli.graphics import preview


def _maps(size: int = 16) -> dict[str, torch.Tensor]:
    flat = torch.zeros(1, 3, size, size)
    flat[:, 2] = 1
    return {
        "diffuse": torch.full((1, 3, size, size), 0.5),
        "specular": torch.full((1, 3, size, size), 0.04),
        "roughness": torch.full((1, 1, size, size), 0.5),
        "normals": flat,
    }


def test_photo_is_srgb_in_range_and_brightest_under_the_flash_at_the_centre():
    pic = preview.photo(_maps(), 45.0, None)
    assert pic.shape == (16, 16, 3) and pic.dtype == np.float32 and 0 <= pic.min() and pic.max() <= 1
    assert pic[8, 8].mean() > pic[0, 0].mean()  # the flash falls off towards the corners
    side = preview.photo(_maps(), 45.0, (-2.0, 0.0, 1.5))
    assert side[:, :4].mean() > side[:, -4:].mean()  # lit from the left


def test_contact_sheet_has_a_tile_per_map_and_per_light():
    maps = _maps()
    sheet = preview.contact_sheet(maps, 45.0, (1.0, 1.0, 2.0))
    renders = 1 + len(preview.SHEET_LIGHTS) + 1  # the flash, the four sides, the extra light
    assert sheet.ndim == 3 and sheet.shape[2] == 3 and sheet.shape[1] > renders * 16
    assert 0 <= sheet.min() and sheet.max() <= 1
