"""Between channel values, their [0, 1] file encoding, the model's [-1, 1] input and the published
checkpoints' input convention."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core import encoding


@pytest.mark.usefixtures("offline")
def test_published_convention_values():
    srgb = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    gamma = encoding.to_convention("image", srgb, "published")
    torch.testing.assert_close(gamma**2.2, encoding.srgb_to_linear(srgb))
    torch.testing.assert_close(encoding.from_convention("diffuse", gamma, "published"), srgb)
    h = torch.tensor([[[[-0.25]], [[0.1]], [[0.96]]]])  # a raw half vector, stored as (h + 1) / 2
    model_in = encoding.to_model(encoding.to_convention("halfway", (h + 1) / 2, "published"))
    torch.testing.assert_close(model_in, 2 * h - 1)  # what the published checkpoints saw
    torch.testing.assert_close(encoding.to_convention("normals", srgb, "published"), srgb)
    assert encoding.to_convention("image", srgb, "teamwork") is srgb
    with pytest.raises(ValueError, match="teamwork, published"):
        encoding.to_convention("image", srgb, "srgb")
