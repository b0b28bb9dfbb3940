"""Scene buffers for neural shading: the neutral value of an unknown buffer, the deferred image, and the albedo
of an artist's metal-roughness maps (all in file encoding)."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.encoding import decode, encode
from teamwork_cli.graphics import buffers as B
from teamwork_cli.graphics.deferred import METAL, deferred_shading


def test_the_buffer_sets():
    assert B.REQUIRED == ("albedo", "normals") and B.DERIVED == "deferred"
    assert set(B.OPTIONAL) == {"roughness", "metallic", "depth", "basecolor"}
    assert not set(B.REQUIRED) & set(B.OPTIONAL)


@pytest.mark.parametrize(
    "channel, components, value",
    [
        ("roughness", 1, 0.5),
        ("depth", 1, 0.5),
        ("metallic", 1, 0.0),
        ("albedo", 3, None),
        ("normals", 3, None),
        ("basecolor", 3, None),
    ],
)
def test_neutral_buffers(channel, components, value):
    x = B.neutral(channel, 2, 5, 7)
    assert x.shape == (2, components, 5, 7) and x.min() >= 0 and x.max() <= 1
    assert (x == x[:, :, :1, :1]).all()  # constant
    if value is not None:
        assert torch.all(x == value)


def test_neutral_normals_face_the_camera_and_basecolor_is_the_unknown_metal():
    n = decode("normals", B.neutral("normals", 1, 2, 2))
    torch.testing.assert_close(n[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(decode("basecolor", B.neutral("basecolor", 1, 2, 2)), torch.full((1, 3, 2, 2), METAL))


def test_with_deferred_shades_the_decoded_buffers(flat):
    values = flat(albedo=0.3, size=6)
    encoded = {c: encode(c, v) for c, v in values.items()}
    encoded["basecolor"] = B.neutral("basecolor", 1, 6, 6)
    out = B.with_deferred(encoded)
    assert out.shape == (1, 3, 6, 6) and out.min() >= 0 and out.max() <= 1
    expected = deferred_shading({c: decode(c, v) for c, v in encoded.items()})
    torch.testing.assert_close(decode("deferred", out), expected.clamp(0, 1), atol=1e-3, rtol=0)
    with pytest.raises(KeyError):
        B.with_deferred({c: v for c, v in encoded.items() if c != "depth"})  # every buffer is needed


def test_albedo_from_basecolor_only_fills_a_missing_albedo():
    base = encode("basecolor", torch.full((1, 3, 2, 2), 0.8))
    metal = torch.zeros(1, 1, 2, 2)
    metal[..., 0, :] = 1
    out = B.albedo_from_basecolor({"basecolor": base, "metallic": metal})
    albedo = decode("albedo", out["albedo"])
    torch.testing.assert_close(albedo[..., 0, :], torch.zeros(1, 3, 2))  # a metal's diffuse reflectance is black
    torch.testing.assert_close(albedo[..., 1, :], torch.full((1, 3, 2), 0.8), atol=2e-3, rtol=0)
    assert out["basecolor"] is base and out["metallic"] is metal
    no_base = {"normals": base}
    assert B.albedo_from_basecolor(no_base) is no_base
