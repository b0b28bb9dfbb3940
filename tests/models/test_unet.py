"""The embedded UNet: diffusers' UNet2DModel architecture without diffusers, interchangeable with it both ways."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from diffusers import UNet2DModel

from teamwork_cli.models.embedded import BASE_DIR, DEFAULT_CONFIG
from teamwork_cli.models.unet import EmbeddedUNet, UNetConfig

CONFIGS = {
    "shipped": DEFAULT_CONFIG,
    "two layers, no attention": dict(
        sample_size=16,
        in_channels=12,
        out_channels=12,
        block_out_channels=(8, 16, 16),
        layers_per_block=2,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
        norm_num_groups=4,
        add_attention=False,
    ),
    "wide heads, scaled mid block": dict(
        sample_size=8,
        in_channels=4,
        out_channels=8,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
        norm_num_groups=8,
        attention_head_dim=16,
        mid_block_scale_factor=2.0,
    ),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_same_seed_same_weights_same_outputs_as_diffusers(name):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    theirs = UNet2DModel(**cfg).eval()
    torch.manual_seed(0)
    ours = EmbeddedUNet(cfg).eval()
    a, b = theirs.state_dict(), ours.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)  # the training recipe reproduces
    x = torch.randn(3, cfg["in_channels"], 32, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([1000.0, 437.5, 3.0])
    with torch.no_grad():
        ref = theirs(x, t).sample
        assert torch.allclose(ours(x, t).sample, ref, atol=1e-5, rtol=0)
        # Channels-last activations (how the embedded model runs) give the same numbers.
        cl = ours.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last), t).sample
        assert torch.allclose(cl, ref, atol=1e-5, rtol=0)
        one = torch.tensor(437.5)  # a 0-d timestep is every row's
        assert torch.allclose(ours(x, one).sample, theirs(x, one).sample, atol=1e-5, rtol=0)


def test_gradients_agree_with_diffusers():
    cfg = CONFIGS["two layers, no attention"]
    torch.manual_seed(0)
    theirs = UNet2DModel(**cfg)
    torch.manual_seed(0)
    ours = EmbeddedUNet(cfg)
    x = torch.randn(2, 12, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([900.0, 10.0])
    theirs(x, t).sample.square().mean().backward()
    ours(x, t).sample.square().mean().backward()
    grads = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        assert torch.allclose(p.grad, grads[k].grad, atol=1e-6, rtol=1e-4), k


def test_folders_load_both_ways(tmp_path):
    torch.manual_seed(0)
    ours = EmbeddedUNet(CONFIGS["two layers, no attention"]).eval()
    ours.save_pretrained(tmp_path / "ours")
    theirs = UNet2DModel.from_pretrained(tmp_path / "ours").eval()  # diffusers reads our folder
    x, t = torch.randn(1, 12, 16, 16), torch.tensor([500.0])
    with torch.no_grad():
        assert torch.allclose(theirs(x, t).sample, ours(x, t).sample, atol=1e-5, rtol=0)
    theirs.save_pretrained(tmp_path / "theirs")
    back = EmbeddedUNet.from_pretrained(tmp_path / "theirs")  # and we read diffusers'
    assert back.config == ours.config
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in ours.state_dict().items())
    half = EmbeddedUNet.from_pretrained(tmp_path / "theirs", torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16} and not any(p.is_meta for p in half.parameters())


def test_the_shipped_folder_is_the_same_model_in_both_classes():
    ours = EmbeddedUNet.from_pretrained(BASE_DIR / "unet")
    theirs = UNet2DModel.from_pretrained(BASE_DIR / "unet").eval()
    x = torch.randn(2, 12, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(
            ours(x, torch.tensor([1000.0, 250.0])).sample, theirs(x, torch.tensor([1000.0, 250.0])).sample
        )


def test_config_round_trip_and_refusals():
    cfg = UNetConfig.from_dict(json.loads((BASE_DIR / "unet" / "config.json").read_text()))
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["_class_name"] == "UNet2DModel"
    with pytest.raises(ValueError, match=r"DownBlock2D/UpBlock2D levels .*got \['AttnDownBlock2D'\]"):
        UNetConfig.from_dict({**cfg.to_dict(), "down_block_types": ["AttnDownBlock2D"] * 4})
    with pytest.raises(ValueError, match="time_embedding_type='fourier' is not supported .*only 'positional'"):
        UNetConfig.from_dict({**cfg.to_dict(), "time_embedding_type": "fourier"})
    with pytest.raises(ValueError, match="key 'cross_attention_dim' is not supported"):
        UNetConfig.from_dict({**cfg.to_dict(), "cross_attention_dim": 8})
    with pytest.raises(ValueError, match="one entry per block_out_channels"):
        UNetConfig.from_dict({**cfg.to_dict(), "up_block_types": ["UpBlock2D"]})


def test_loading_the_embedded_model_imports_no_diffusers():
    # diffusers' import costs more than the model's pass; the embedded model needs it only to sample in steps.
    script = (
        "import sys\n"
        "from teamwork_cli.models.loading import load_denoiser\n"
        "den = load_denoiser(None)\n"
        "assert den.num_train_timesteps == 1000 and den.one_step_timestep() == 1000\n"
        "print('diffusers' in sys.modules)\n"
        "den.scheduler.set_timesteps(4)\n"
        "print('diffusers' in sys.modules, len(den.scheduler.timesteps))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", "4"]
