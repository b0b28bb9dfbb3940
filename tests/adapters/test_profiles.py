"""Backbone profiles select the published layer sets (docs/conventions.md section 5) of real diffusers models."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from diffusers import (
    FluxTransformer2DModel,
    UNet2DConditionModel,
    UNet2DModel,
)
from torch import nn

from teamwork_cli.adapters import profiles as backbones
from teamwork_cli.adapters.model import inject_adapter, team_context
from teamwork_cli.adapters.profiles import (
    BackboneProfile,
    layers_to_adapt,
    profile_for,
    register_backbone,
    supported_backbones,
)
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.hub.testing import tiny_model

MMDIT = ["norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.0.proj", "ff.net.2"]
FLUX_SINGLE = ["norm.linear", "proj_mlp", "proj_out", "attn.to_q", "attn.to_k", "attn.to_v"]
UNET_ATTN = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0.proj", "ff.net.2"]


sd3 = partial(tiny_model, "sd3", num_layers=2)


flux = partial(tiny_model, "flux")


unet_cond = partial(tiny_model, "unet")


unet = partial(tiny_model, "unet2d")


def names(prefixes: list[str], leaves: list[str]) -> set[str]:
    return {f"{p}.{leaf}" for p in prefixes for leaf in leaves}


def test_sd3_layers() -> None:
    assert set(layers_to_adapt(sd3())) == names([f"transformer_blocks.{i}" for i in (0, 1)], MMDIT)


def test_flux_layers() -> None:
    got = set(layers_to_adapt(flux()))
    assert got == names(["transformer_blocks.0"], MMDIT) | names(["single_transformer_blocks.0"], FLUX_SINGLE)
    assert profile_for(flux()).name == "FLUX"


def test_flux2_layers_are_the_references_flux2_profile() -> None:
    model = tiny_model("flux2", in_channels=8, num_layers=2, num_single_layers=2)
    double = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.linear_in", "ff.linear_out"]
    single = ["attn.to_qkv_mlp_proj", "attn.to_out"]
    expected = names([f"transformer_blocks.{i}" for i in (0, 1)], double)
    expected |= names([f"single_transformer_blocks.{i}" for i in (0, 1)], single)
    expected |= {"double_stream_modulation_img.linear", "single_stream_modulation.linear"}  # not the text stream's
    assert set(layers_to_adapt(model)) == expected
    profile = profile_for(model)
    assert profile.name == "FLUX2" and profile.records_image_ids


def test_zimage_layers_are_the_references_zimage_profile() -> None:
    model = tiny_model("zimage", n_layers=2)
    leaves = ["adaLN_modulation.0", "attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0"]
    leaves += ["feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
    # The main layers only: the noise and context refiners stay at base, as the reference's `layers.*` globs say.
    assert set(layers_to_adapt(model)) == names(["layers.0", "layers.1"], leaves)
    profile = profile_for(model)
    assert profile.name == "ZIMAGE" and profile.records_image_ids


def test_unet2d_condition_layers_are_the_published_profile() -> None:
    # As the reference's SD2/SDXL profiles: down and up blocks' self-attention, feed-forward and resnets; no
    # cross-attention, and nothing of the mid block (its globs need two path components before `attentions`).
    got = layers_to_adapt(unet_cond())
    attn = names(
        [
            f"{b}.transformer_blocks.0"
            for b in ("down_blocks.0.attentions.0", "up_blocks.1.attentions.0", "up_blocks.1.attentions.1")
        ],
        UNET_ATTN,
    )
    shortcut = [
        "down_blocks.1.resnets.0",
        "up_blocks.0.resnets.0",
        "up_blocks.0.resnets.1",
        "up_blocks.1.resnets.0",
        "up_blocks.1.resnets.1",
    ]
    plain = ["down_blocks.0.resnets.0"]
    resnets = names(shortcut, ["conv1", "conv2", "conv_shortcut"]) | names(plain, ["conv1", "conv2"])
    assert set(got) == attn | resnets
    assert not any("attn2" in n or "proj_in" in n or "samplers" in n or "time_emb" in n for n in got)
    assert not any(n.startswith("mid_block") for n in got)


def test_unet_profiles_are_named_as_the_reference_names_them() -> None:
    sd2 = unet_cond()
    assert profile_for(sd2).name == "SD2"
    sdxl = UNet2DConditionModel(
        **{
            **dict(sd2.config),
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 4,
            "projection_class_embeddings_input_dim": 40,
        }
    )
    assert profile_for(sdxl).name == "SDXL" and layers_to_adapt(sdxl) == layers_to_adapt(sd2)


def test_unet2d_layers() -> None:
    got = set(layers_to_adapt(unet()))
    attn = names(
        [
            "down_blocks.1.attentions.0",
            "up_blocks.0.attentions.0",
            "up_blocks.0.attentions.1",
            "mid_block.attentions.0",
        ],
        ["to_q", "to_k", "to_v", "to_out.0"],
    )
    shortcut = [
        "down_blocks.1.resnets.0",
        "up_blocks.0.resnets.0",
        "up_blocks.0.resnets.1",
        "up_blocks.1.resnets.0",
        "up_blocks.1.resnets.1",
    ]
    plain = ["down_blocks.0.resnets.0", "mid_block.resnets.0", "mid_block.resnets.1"]
    assert got == attn | names(shortcut, ["conv1", "conv2", "conv_shortcut"]) | names(plain, ["conv1", "conv2"])


def _inputs(model: nn.Module, rows: int) -> dict[str, torch.Tensor]:
    t = torch.full((rows,), 0.5)
    if isinstance(model, FluxTransformer2DModel):
        return {
            "hidden_states": torch.randn(rows, 16, 4),
            "encoder_hidden_states": torch.randn(rows, 5, 16),
            "pooled_projections": torch.randn(rows, 8),
            "timestep": t,
            "img_ids": torch.zeros(16, 3),
            "txt_ids": torch.zeros(5, 3),
        }
    if isinstance(model, UNet2DConditionModel):
        return {
            "sample": torch.randn(rows, 4, 8, 8),
            "timestep": t * 1000,
            "encoder_hidden_states": torch.randn(rows, 3, 8),
        }
    if isinstance(model, UNet2DModel):
        return {"sample": torch.randn(rows, 3, 8, 8), "timestep": t * 1000}
    return {
        "hidden_states": torch.randn(rows, 4, 8, 8),
        "encoder_hidden_states": torch.randn(rows, 5, 16),
        "pooled_projections": torch.randn(rows, 8),
        "timestep": t * 1000,
    }


@pytest.mark.parametrize("make", [sd3, flux, unet_cond, unet])
def test_adapted_forward_runs_and_starts_as_the_base(make: object) -> None:
    torch.manual_seed(0)
    model = make()  # type: ignore[operator]
    batch = TeamBatch.from_active([[0, 1], [1]], 2)
    inputs = _inputs(model, batch.num_rows)
    with torch.no_grad():
        expected = model(**inputs).sample
        inject_adapter(model, None, 2, 4)
        with team_context(model, batch):
            assert torch.equal(model(**inputs).sample, expected)


def test_unsupported_model_lists_supported_classes() -> None:
    with pytest.raises(ValueError) as err:
        profile_for(nn.Linear(2, 2))
    for name in ("SD3Transformer2DModel", "FluxTransformer2DModel", "UNet2DConditionModel", "UNet2DModel"):
        assert name in str(err.value)
    assert "Linear" in str(err.value)


def test_register_backbone_and_subclasses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backbones, "_REGISTRY", dict(backbones._REGISTRY))  # keep the global registry clean

    class TinyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Conv2d(4, 4, 1))

    class TinierNet(TinyNet):
        pass

    register_backbone("TinyNet", BackboneProfile("TINY", [r"body\.\d+"], "test"))
    assert "TinyNet" in supported_backbones()
    assert layers_to_adapt(TinierNet()) == ["body.0", "body.2"]  # LayerNorm matched by name, not adaptable
    register_backbone("TinyNet", BackboneProfile("TINY", [r"head"], "test"))
    with pytest.raises(ValueError, match="selects no"):
        layers_to_adapt(TinyNet())
    with pytest.raises(ValueError, match="not a valid regex"):
        register_backbone("Broken", BackboneProfile("BROKEN", ["("], ""))
