"""Pretraining the embedded base: the loss over one random map per row, and the command end to end on a tiny
model (what it writes, what it records, resuming)."""

from __future__ import annotations

import json

import pytest
import torch

from teamwork_cli.models.embedded import EmbeddedDenoiser
from teamwork_cli.training import pretrain
from teamwork_cli.training.data import build_pool


@pytest.fixture(scope="module")
def pool():
    return build_pool(2, size=32)


def test_base_loss_is_a_reproducible_scalar_that_trains_every_weight(pool, tiny_unet_config):
    torch.manual_seed(0)
    model = EmbeddedDenoiser.from_config(tiny_unet_config(sample_size=8))
    loss_fn = pretrain.base_loss(pool, 16, 3)
    loss = loss_fn(model, torch.Generator().manual_seed(1))
    assert loss.shape == () and torch.isfinite(loss) and loss > 0
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    with torch.no_grad():
        again = loss_fn(model, torch.Generator().manual_seed(1))
        other = loss_fn(model, torch.Generator().manual_seed(2))
    assert again.item() == pytest.approx(loss.item(), rel=1e-6) and other.item() != pytest.approx(loss.item())


def test_the_channels_a_base_learns():
    assert pretrain.CHANNELS == ("image", "diffuse", "specular", "roughness", "normals")


@pytest.fixture()
def tiny_run(tmp_path, monkeypatch, tiny_unet_config):
    """pretrain.main on a tiny UNet and a 2-material pool; returns a function taking extra arguments."""
    monkeypatch.setattr(pretrain, "DEFAULT_CONFIG", tiny_unet_config(sample_size=8))

    def run(*extra: str) -> int:
        return pretrain.main(
            [
                "--batch-size",
                "2",
                "--size",
                "16",
                "--pool",
                "2",
                "--lr",
                "1e-3",
                "--work",
                str(tmp_path / "work"),
                "--out",
                str(tmp_path / "base"),
                *extra,
            ]
        )

    return run


def test_main_writes_a_base_that_loads_and_records_how_it_was_made(tmp_path, tiny_run):
    assert tiny_run("--steps", "2") == 0
    meta = json.loads((tmp_path / "base" / "teamwork.json").read_text())
    assert meta["type"] == "teamwork-embedded" and meta["prediction_type"] == "flow" and meta["patch"] == 2
    assert (meta["steps"], meta["pool"], meta["pool_seed"], meta["size"]) == (2, 2, 0, 16)
    assert "--steps 2" in meta["command"] and "--resume" not in meta["command"]
    assert (tmp_path / "work" / "state.pt").is_file() and (tmp_path / "pool_2_256_0.pt").is_file()
    base = EmbeddedDenoiser.from_pretrained(tmp_path / "base")
    assert base.pixel_multiple == 4
    first = {k: v.clone() for k, v in base.model.state_dict().items()}
    assert tiny_run("--steps", "3", "--resume") == 0  # one more step from the saved state
    meta = json.loads((tmp_path / "base" / "teamwork.json").read_text())
    assert meta["steps"] == 3
    after = EmbeddedDenoiser.from_pretrained(tmp_path / "base").model.state_dict()
    assert any(not torch.equal(first[k], after[k]) for k in first)


def test_the_recorded_command_can_be_run_again(tmp_path, tiny_run):
    import importlib.util

    assert tiny_run("--steps", "1") == 0
    command = json.loads((tmp_path / "base" / "teamwork.json").read_text())["command"]
    module = command.split()[2]
    assert command.startswith("python -m ") and importlib.util.find_spec(module) is not None, command
    assert pretrain.__doc__.split("python -m ")[1].split()[0] == module
