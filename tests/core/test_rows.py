"""Per-pixel work a band of rows at a time (core/rows.py): the bands cover the image, results equal the whole."""

from __future__ import annotations

import functools

import pytest
import torch

from teamwork_cli.core.encoding import decode
from teamwork_cli.core.rows import map_rows, row_bands


@pytest.mark.parametrize(("h", "w", "pixels"), [(10, 7, 1), (10, 7, 20), (10, 7, 10**6), (1, 5, 3), (9, 1, 4)])
def test_row_bands_cover_the_rows_once_in_order(h, w, pixels):
    bands = row_bands(h, w, pixels)
    assert [i for b in bands for i in range(b.start, b.stop)] == list(range(h))
    assert all(b.stop - b.start == max(1, pixels // w) for b in bands[:-1])


def test_row_bands_refuse_an_empty_band():
    with pytest.raises(ValueError, match="pixels must be at least 1; got 0"):
        row_bands(4, 4, 0)


@pytest.mark.parametrize("pixels", [1, 13, 10**6])
@pytest.mark.parametrize("channel", ["normals", "diffuse", "roughness"])
def test_map_rows_equals_the_whole_image(pixels, channel):
    x = torch.rand(2, 3, 11, 6, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1
    whole = decode(channel, x)
    banded = map_rows(functools.partial(decode, channel), x, pixels=pixels)
    if channel == "diffuse":  # sRGB's pow: torch's vector and scalar loops may differ in the last bit
        torch.testing.assert_close(banded, whole, atol=1e-6, rtol=0)
    else:  # arithmetic, clamps and square roots: bit for bit
        assert torch.equal(banded, whole)
    mean = map_rows(lambda a, b: (a * b).mean(1, keepdim=True), x, x.flip(-1), pixels=pixels)  # channels may change
    assert mean.shape == (2, 1, 11, 6) and torch.equal(mean, (x * x.flip(-1)).mean(1, keepdim=True))
