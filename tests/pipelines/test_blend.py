"""Blending decoded windows (pipelines/blend.py): per output map, the taper-weighted mean of the windows over
each canvas pixel, as a straightforward reference blend computes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from teamwork_cli.pipelines.blend import _Blender
from teamwork_cli.pipelines.windows import _cells, plan_windows, window_weights


@pytest.mark.parametrize("wrap", [False, True])
def test_the_blend_is_the_weighted_mean_of_the_windows_per_output(wrap):
    height, width, win, overlap, n_img, n_out, c = 20, 28, 8, 3, 2, 3, 3
    corners = plan_windows(height, width, win, overlap, wrap=wrap)
    dec = torch.rand(len(corners), n_img * n_out, c, win, win, generator=torch.Generator().manual_seed(0))
    weights = window_weights(win, win, overlap)
    blender = _Blender(n_img * n_out, (height, width), weights, n_out)
    cells = _cells(corners, win, win, height, width)
    for s in range(0, len(corners), 3):  # in batches, as sample_windows adds them
        blender.add(dec[s : s + 3], cells[s : s + 3])
    out = blender.result(["diffuse.out", "specular.out", "normals.out"], n_img)
    # the reference: every window cell added to its canvas cell, one by one, in float64
    num = np.zeros((n_img * n_out, c, height, width))
    den = np.zeros((height, width))
    for k, (y, x) in enumerate(corners):
        for i in range(win):
            for j in range(win):
                wt = float(weights[i, j])
                num[:, :, (y + i) % height, (x + j) % width] += wt * dec[k, :, :, i, j].double().numpy()
                den[(y + i) % height, (x + j) % width] += wt
    ref = torch.from_numpy(num / den).view(n_img, n_out, c, height, width)
    assert list(out) == ["diffuse.out", "specular.out", "normals.out"]
    for k, x in enumerate(out.values()):
        assert x.shape == (n_img, c, height, width) and x.dtype == torch.float32
        torch.testing.assert_close(x.double(), ref[:, k], atol=1e-6, rtol=0)
