"""The training loop: precision chosen for the machine, a NaN loss stops before it touches the weights."""

from __future__ import annotations

import pytest
import torch


def test_auto_precision_avoids_emulated_bf16(monkeypatch):
    """On a CPU without native bf16 (emulated: 73x slower than fp32 on an AVX2 EPYC) auto means fp32."""
    import teamwork_cli.core.devices as devices
    import teamwork_cli.core.distributed as distributed
    from teamwork_cli.training.loop import resolve_mixed_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(distributed, "cpu_only", lambda: True)
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.auto_dtype(cpu) is None and resolve_mixed_precision() == "no"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.auto_dtype(cpu) == torch.bfloat16 and resolve_mixed_precision() == "bf16"
    monkeypatch.setattr(distributed, "cpu_only", lambda: False)  # training on a GPU
    assert resolve_mixed_precision() == "bf16"


def test_a_nan_loss_stops_training_before_it_touches_the_weights(tmp_path):
    from teamwork_cli.training.loop import TrainConfig, train

    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def loss_fn(m, g):
        calls.append(1)
        out = m(torch.ones(1, 2)).sum()
        return out * float("nan") if len(calls) == 2 else out

    cfg = TrainConfig(steps=3, batch_size=1, lr=0.1, warmup=0, checkpoint_every=100, mixed_precision="no")
    with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
        train(model, loss_fn, cfg, tmp_path / "s.pt")
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # step 0 updated
