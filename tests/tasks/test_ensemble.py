"""Test-time ensembling: inputs repeated with one seed per row, means over the samples, the default size."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.tasks import ensemble as E


def test_repeat_stacks_the_inputs_and_spreads_the_seeds():
    x = {"image.in": torch.arange(2.0).view(2, 1, 1, 1), "mask.in": torch.ones(2, 1, 1, 1)}
    inputs, seeds = E.repeat(x, 10, 3)
    assert inputs["image.in"].flatten().tolist() == [0, 1, 0, 1, 0, 1] and inputs["mask.in"].shape == (6, 1, 1, 1)
    assert seeds == [10, 11, 10 + E.SEED_STRIDE, 11 + E.SEED_STRIDE, 10 + 2 * E.SEED_STRIDE, 11 + 2 * E.SEED_STRIDE]
    _, listed = E.repeat(x, [4, 9], 2)
    assert listed == [4, 9, 4 + E.SEED_STRIDE, 9 + E.SEED_STRIDE]
    same, one = E.repeat(x, 0, 1)
    assert torch.equal(same["image.in"], x["image.in"]) and one == [0, 1]  # an ensemble of 1 changes nothing
    assert all(same[k] is x[k] for k in x) and same is not x  # and copies nothing (a new dict of the same tensors)


@pytest.mark.parametrize("size", [0, -2])
def test_an_empty_ensemble_is_refused(size):
    with pytest.raises(ValueError, match=f"ensemble must be at least 1, got {size}"):
        E.repeat({"image.in": torch.zeros(1, 3, 2, 2)}, 0, size)


def test_mean_averages_each_image_over_its_samples_and_renormalises_normals():
    rows = torch.tensor([1.0, 10.0, 3.0, 30.0]).view(4, 1, 1, 1)  # two samples of two images
    normals = torch.zeros(4, 3, 1, 1)
    normals[0, 0] = normals[2, 1] = 1  # image 0: +X and +Y, whose mean has length 1/sqrt(2)
    normals[1, 2] = normals[3, 2] = 1
    out = E.mean({"roughness": rows, "normals": normals}, 2)
    assert out["roughness"].flatten().tolist() == [2.0, 20.0]
    torch.testing.assert_close(out["normals"][0, :, 0, 0], torch.tensor([1.0, 1.0, 0.0]) / 2**0.5)
    torch.testing.assert_close(out["normals"][1, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    values = {"roughness": rows}
    assert E.mean(values, 1) is values


@pytest.mark.parametrize(
    "device, autocast, one_step, size",
    [
        ("cpu", None, False, 1),
        ("cpu", torch.bfloat16, False, 2),
        ("cuda", None, False, 2),
        ("mps", None, False, 2),
        ("cuda", None, True, 1),
        ("cpu", torch.bfloat16, True, 1),
    ],
)
def test_default_size(device, autocast, one_step, size):
    assert E.default_size(device, autocast, one_step) == size
