"""Inpainting's library side: masks read the way paint programs save them."""

from __future__ import annotations

import numpy as np


def test_masks_as_paint_programs_save_them(tmp_path):
    from PIL import Image

    from teamwork_cli.tasks.inpaint import read_mask

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # transparent white, a black opaque stroke: the stroke is the mask
    rgba[2:4, :, 3] = 255
    rgba[2:4, :, :3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    assert read_mask(tmp_path / "stroke.png")[0, 0].sum() == 16 and read_mask(tmp_path / "stroke.png")[0, 0, 2:4].all()
    opaque_black = np.zeros((8, 8, 4), np.uint8)
    opaque_black[..., 3] = 255  # opaque everywhere: the colour is the mask (empty here)
    Image.fromarray(opaque_black, "RGBA").save(tmp_path / "empty.png")
    assert read_mask(tmp_path / "empty.png").sum() == 0
    red = np.zeros((8, 8, 3), np.uint8)
    red[:, :3, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    assert read_mask(tmp_path / "red.png").sum() == 24
