"""The synchronisation steps of `pipelines/sync.py` on hand-made window stacks."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from teamwork_cli.pipelines.sync import SYNCS, average_windows, noise_to_signal, syncsde_fraction, syncsde_windows


def _two_windows():
    """Two 1x3 windows on a 1x4 canvas, overlapping on canvas cells 1 and 2: [windows, rows, C, h, w]."""
    x = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]).view(2, 1, 1, 1, 3)
    cells = torch.tensor([[0, 1, 2], [1, 2, 3]]).view(2, 1, 3)
    weights = torch.tensor([[1.0, 1.0, 1.0]])
    return x, cells, weights


def test_average_is_the_weighted_mean_of_the_windows_on_each_cell():
    x, cells, weights = _two_windows()
    out = average_windows(x, cells, weights, num_cells=4).view(2, 3)
    assert torch.equal(out[0], torch.tensor([1.0, (2 + 10) / 2, (3 + 20) / 2]))
    assert torch.equal(out[1], torch.tensor([(2 + 10) / 2, (3 + 20) / 2, 30.0]))  # one cell, one window: its own
    tapered = average_windows(x, cells, torch.tensor([[1.0, 1.0, 3.0]]), num_cells=4).view(2, 3)
    assert torch.isclose(tapered[0, 1], torch.tensor((2 * 1 + 10 * 1) / 2))
    assert torch.isclose(tapered[0, 2], torch.tensor((3 * 3 + 20 * 1) / 4))  # weights of the cells each covers


def test_syncsde_moves_a_fraction_of_the_way_to_the_consensus():
    x, cells, weights = _two_windows()
    fused = average_windows(x, cells, weights, 4)
    assert torch.equal(syncsde_windows(x, cells, weights, 4, 0.0), x)
    assert torch.equal(syncsde_windows(x, cells, weights, 4, 1.0), fused)
    assert torch.allclose(syncsde_windows(x, cells, weights, 4, 0.25), x + 0.25 * (fused - x))


def _flow(n=1000):
    return SimpleNamespace(prediction_type="flow", num_train_timesteps=n)


def test_noise_to_signal_of_a_flow_model():
    den = _flow()
    assert math.isinf(noise_to_signal(den, 1000)) and noise_to_signal(den, 0) == 0
    assert noise_to_signal(den, 500) == pytest.approx(1.0)  # sigma 0.5: as much noise as signal


def test_syncsde_fraction_follows_strength_time_and_noise_ratio():
    den = _flow()
    steps = torch.tensor([1000.0, 750.0, 500.0, 250.0])
    assert all(syncsde_fraction(den, steps, i, 0.0) == 0 for i in range(4))
    assert syncsde_fraction(den, steps, 0, 1.0) == 1.0  # from pure noise: s_t infinite, the full tie
    f1 = syncsde_fraction(den, steps, 1, 1.0)
    s_now, s_next = 0.75 / 0.25, 0.5 / 0.5
    assert f1 == pytest.approx(0.75 * (1 - s_next / s_now))
    assert syncsde_fraction(den, steps, 3, 1.0) == pytest.approx(0.25)  # the last step: s_next = 0
    assert all(syncsde_fraction(den, steps, i, 100.0) <= 1.0 for i in range(4))  # clamped, never overshoots
    assert SYNCS == ("none", "average", "syncsde")
