"""Tiny random-weight pipelines of each family, built offline, for tests and benchmarks."""

from __future__ import annotations

import json

import pytest

from teamwork_cli.models.hub import testing


def test_unknown_families_are_refused():
    with pytest.raises(ValueError, match="family must be one of sd3, sdxl, sd2, flux, flux2, zimage; got 'sd1'"):
        testing.tiny_pipeline("sd1")


def test_tokenizers_are_built_offline_from_letters():
    clip, t5 = testing._clip_tokenizer(), testing._t5_tokenizer()
    ids = clip("ab").input_ids
    assert ids[0] == clip.bos_token_id and ids[-1] == clip.eos_token_id and len(ids) > 2
    assert t5("ab").input_ids[-1] == t5.eos_token_id


def test_saved_pipelines_load_by_path_with_every_component(sd2_folder):
    index = json.loads((sd2_folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for component in ("unet", "vae", "scheduler", "text_encoder", "tokenizer"):
        assert (sd2_folder / component).is_dir(), component


def test_vaes_follow_their_family():
    flow, latent = testing._vae(4, flow=True), testing._vae(4, flow=False)
    assert flow.config.shift_factor == 0.1 and not flow.config.use_quant_conv
    assert latent.config.shift_factor is None and latent.config.use_quant_conv
    assert len(flow.config.block_out_channels) == 2  # a latent grid 2x smaller than the image


def test_tiny_models_are_reproducible_and_take_config_changes():
    import torch

    from teamwork_cli.models.hub.testing import TINY_MODELS, tiny_model

    for kind in TINY_MODELS:
        a, b = tiny_model(kind), tiny_model(kind)
        assert not a.training
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert tiny_model("sd3", num_layers=2).config.num_layers == 2
    with pytest.raises(ValueError, match="kind must be one of sd3, flux, flux2, zimage, unet, unet2d; got 'sdxl'"):
        tiny_model("sdxl")
