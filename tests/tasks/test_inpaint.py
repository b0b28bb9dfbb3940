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


def test_tileable_inpainting_wraps_and_keeps_the_pixels_beyond_the_edge_band(tiny_base, adapters):
    import torch

    from teamwork_cli.core.encoding import decode, encode
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.pipelines.tiling import WindowOptions
    from teamwork_cli.tasks.inpaint import inpaint

    pipe = TeamPipeline.load(adapters["inpaint"], base=str(tiny_base), device="cpu", dtype="fp32")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    image = (0.2 + 0.6 * xx * yy).expand(1, 3, 48, 48).contiguous()
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 20:28, 20:28] = 1
    opts = WindowOptions(window=32, tileable=True)
    out = inpaint(pipe, {"image": image}, mask, steps=2, keep_context=False, windows=opts)["image"]
    assert seam_score(image) > 3 and seam_score(encode("image", out)) <= 1.1
    band = pipe.plan(48, 48, None, opts).band(48)
    keep = (mask[0, 0] == 0).clone()
    keep[:band], keep[-band:], keep[:, :band], keep[:, -band:] = False, False, False, False
    stored = decode("image", image)  # inpaint returns values; `image` is its sRGB encoding
    torch.testing.assert_close(out[..., keep], stored[..., keep])  # the kept pixels as they were


def test_wraps_tells_maps_that_tile_already():
    import torch

    from teamwork_cli.tasks.inpaint import wraps

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    ramp = (xx * yy).expand(1, 1, 16, 16)
    angle = torch.arange(16) * (2 * torch.pi / 16)
    periodic = (0.5 + 0.4 * torch.sin(angle)[:, None] * torch.cos(angle)[None, :]).expand(1, 1, 16, 16)
    maps = torch.cat([torch.full((1, 1, 16, 16), 0.3), periodic, ramp])
    assert wraps(maps).tolist() == [True, True, False]


def test_tileable_inpainting_keeps_a_map_that_wraps_already_outside_its_hole(tiny_base, adapters):
    import torch

    from teamwork_cli.core.encoding import encode
    from teamwork_cli.graphics.periodic import seam_score
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.pipelines.tiling import WindowOptions
    from teamwork_cli.tasks.inpaint import inpaint

    pipe = TeamPipeline.load(adapters["inpaint"], base=str(tiny_base), device="cpu", dtype="fp32")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 48), indexing="ij")
    ramp = (0.2 + 0.6 * xx * yy).expand(1, 3, 48, 48).contiguous()
    flat = torch.full((1, 3, 48, 48), 0.4)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 20:28, 20:28] = 1
    opts = WindowOptions(window=32, tileable=True)
    got = {
        name: inpaint(pipe, {"image": x}, mask, steps=2, keep_context=False, windows=opts)["image"]
        for name, x in (("flat", flat), ("ramp", ramp))
    }
    outside = mask[0, 0] == 0
    flat_out = encode("image", got["flat"])
    torch.testing.assert_close(flat_out[..., outside], flat[..., outside], atol=1e-6, rtol=0)  # band kept as given
    assert seam_score(encode("image", got["ramp"])) <= 1.1
    assert (encode("image", got["ramp"])[..., 0, :] - ramp[..., 0, :]).abs().max() > 1e-3  # its band refilled
