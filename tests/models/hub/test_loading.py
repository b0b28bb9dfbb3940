"""Loading diffusers pipelines: clear unsupported-pipeline and path errors, cached prompt embeddings, options,
and every layer a published-format file names adapted under that name."""

from __future__ import annotations

import json
import re

import pytest
import torch

from teamwork_cli.adapters.checkpoint import read_adapter_info
from teamwork_cli.adapters.model import adapter_layers
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.pipelines.team_pipeline import TeamPipeline

pytestmark = pytest.mark.usefixtures("offline")

# Published layer names (docs/conventions.md section 5), as leaf paths inside each block.
MMDIT = {"norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.0.proj", "ff.net.2"}
FLUX_SINGLE = {"norm.linear", "attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out"}
UNET = {
    "attn1.to_q",
    "attn1.to_k",
    "attn1.to_v",
    "attn1.to_out.0",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
}
# FLUX.2 and Z-Image as the reference's FLUX2 and ZIMAGE profiles name them (modulation at the model level in FLUX.2)
FLUX2_DOUBLE = {"attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.linear_in", "ff.linear_out"}
FLUX2_SINGLE = {"attn.to_qkv_mlp_proj", "attn.to_out"}
FLUX2_MODULATION = {"double_stream_modulation_img": {"linear"}, "single_stream_modulation": {"linear"}}
ZIMAGE = {
    "adaLN_modulation.0",
    "attention.to_q",
    "attention.to_k",
    "attention.to_v",
    "attention.to_out.0",
    "feed_forward.w1",
    "feed_forward.w2",
    "feed_forward.w3",
}
BLOCK = re.compile(
    r"^(transformer_blocks\.\d+|single_transformer_blocks\.\d+|.*\.transformer_blocks\.\d+|"
    r".*\.resnets\.\d+|layers\.\d+|double_stream_modulation_img|single_stream_modulation)\.(.+)$"
)


def test_unknown_pipeline_lists_supported(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(TeamworkError) as e:
        load_hub_denoiser(str(tmp_path))
    assert "KandinskyPipeline" in str(e.value)
    for name in ("StableDiffusion3Pipeline", "StableDiffusionXLPipeline", "StableDiffusionPipeline", "FluxPipeline"):
        assert name in str(e.value)


def test_bad_base_paths(tmp_path):
    with pytest.raises(TeamworkError, match="no model_index.json"):
        load_hub_denoiser(str(tmp_path))
    with pytest.raises(TeamworkError, match="no such folder"):
        load_hub_denoiser(str(tmp_path / "missing" / "folder"))


def test_prompt_embeddings_cached_and_text_encoders_not_loaded_again(monkeypatch, sd2_folder):
    from teamwork_cli.models.hub import loading

    loads = []
    real = loading._from_pretrained
    monkeypatch.setattr(loading, "_from_pretrained", lambda *a, **kw: loads.append(kw) or real(*a, **kw))
    first = load_hub_denoiser(str(sd2_folder))
    assert first.prompt_embeds.shape == (1, 77, 16)
    assert not any(n.startswith("text_encoder") for n, _ in first.named_modules())
    assert [kw.get("text_encoder", "loaded") for kw in loads] == ["loaded", None]  # text pass, then the rest
    loads.clear()
    second = load_hub_denoiser(str(sd2_folder))
    assert [kw.get("text_encoder", "loaded") for kw in loads] == [None]  # from the disk cache
    torch.testing.assert_close(second.prompt_embeds, first.prompt_embeds)
    other = load_hub_denoiser(str(sd2_folder), prompt="a brick wall", cache_embeds=False)
    assert not torch.equal(other.prompt_embeds, first.prompt_embeds)


def test_options_are_checked(sd2_folder):
    with pytest.raises(ValueError, match="guidance.*allowed: timestep_spacing"):
        load_hub_denoiser(str(sd2_folder), guidance=2.0)
    den = load_hub_denoiser(str(sd2_folder), timestep_spacing=None)
    assert type(den.scheduler).__name__ == "DDIMScheduler"  # PNDM's step takes no generator
    assert den.scheduler.config.timestep_spacing == "leading"


def test_published_layer_names_all_adapted(hub_team):
    family, folder, adapter = hub_team
    info = read_adapter_info(adapter)
    pipe = TeamPipeline.load(adapter, base=str(folder), device="cpu")
    adapted = set(adapter_layers(pipe.denoiser.model))
    assert adapted == set(info.layers) and adapted
    leaves: dict[str, set[str]] = {}
    for name in adapted:
        block, leaf = BLOCK.match(name).groups()
        leaves.setdefault(block, set()).add(leaf)
    if family == "sd3":
        assert leaves == {"transformer_blocks.0": MMDIT, "transformer_blocks.1": MMDIT}
    elif family == "flux":
        assert leaves == {"transformer_blocks.0": MMDIT, "single_transformer_blocks.0": FLUX_SINGLE}
    elif family == "flux2":
        assert leaves == {
            "transformer_blocks.0": FLUX2_DOUBLE,
            "single_transformer_blocks.0": FLUX2_SINGLE,
            **FLUX2_MODULATION,
        }
    elif family == "zimage":
        assert leaves == {"layers.0": ZIMAGE}  # not the noise and context refiners
    else:
        assert all(leaf <= UNET for leaf in leaves.values())
        attn = [b for b in leaves if ".transformer_blocks." in b]
        assert attn and all(leaves[b] == UNET - {"conv1", "conv2", "conv_shortcut"} for b in attn)
        assert any("conv_shortcut" in leaf for leaf in leaves.values())
    assert pipe.denoiser.input_convention == "published"
