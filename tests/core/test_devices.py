"""Devices and dtypes: what `auto` resolves to, and which autocast dtype a CPU computes natively."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core import devices


def test_dtype_names():
    assert devices.DTYPES == {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:3", "mps"])
def test_explicit_devices_resolve_without_probing(name):
    assert devices.resolve_device(name) == torch.device(name)


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda0", "tpu", ""])
def test_unknown_device_names_list_the_allowed_ones(name):
    with pytest.raises(ValueError) as err:
        devices.resolve_device(name)
    assert str(err.value) == f"device must be one of auto, cpu, cuda, cuda:N, mps; got {name!r}"


def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch):
    from teamwork_cli.core import distributed

    monkeypatch.setattr(distributed, "launched", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.resolve_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("cuda")


def test_auto_under_a_launcher_is_the_process_own_device(monkeypatch):
    from teamwork_cli.core import distributed

    monkeypatch.setattr(distributed, "launched", lambda: True)
    monkeypatch.setattr(distributed, "current", lambda: distributed.Shard(1, 2, torch.device("cuda:1")))
    assert devices.resolve_device("auto") == torch.device("cuda:1")


def test_auto_dtype_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.auto_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.auto_dtype(torch.device("cpu")) == torch.bfloat16
    assert devices.auto_dtype(torch.device("cuda")) is None  # GPUs: fp32 unless --dtype says otherwise


def test_missing_cpu_probes_mean_no_fast_bf16(monkeypatch):
    assert devices.cpu_has_fast_bf16() in (True, False)  # this machine's answer, whatever it is, is a bool
    monkeypatch.setattr(torch, "cpu", object())  # a torch without the private probes
    assert devices.cpu_has_fast_bf16() is False
