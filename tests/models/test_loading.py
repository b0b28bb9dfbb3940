"""load_denoiser: the embedded model by name or folder, a diffusers pipeline otherwise, and the options each takes."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models import loading
from teamwork_cli.models.embedded import BASE_DIR, EmbeddedDenoiser


@pytest.mark.parametrize("base", [None, "embedded", "teamwork-embedded", ""])
def test_the_shipped_embedded_base_by_name(base):
    den = loading.load_denoiser(base)
    assert isinstance(den, EmbeddedDenoiser) and den.prediction_type == "flow"
    assert next(den.model.parameters()).dtype == torch.float32
    assert den.model.config == EmbeddedDenoiser.from_pretrained(BASE_DIR).model.config


def test_an_embedded_folder_and_a_dtype(tiny_base):
    den = loading.load_denoiser(str(tiny_base), torch.bfloat16)
    assert isinstance(den, EmbeddedDenoiser) and den.model.config.block_out_channels == (8, 16)
    assert next(den.model.parameters()).dtype == torch.bfloat16


def test_options_the_embedded_model_lacks_are_refused(tiny_base):
    for base in (None, str(tiny_base)):
        with pytest.raises(ValueError, match="guidance: the embedded model has no such option"):
            loading.load_denoiser(base, guidance=2.0)
        with pytest.raises(ValueError, match="micro_conditioning, prompt: the embedded model has no such option"):
            loading.load_denoiser(base, prompt="a brick wall", micro_conditioning="diffusers")
    # None means "the default" and the empty prompt is what the embedded model is anyway: both are accepted
    assert isinstance(loading.load_denoiser(str(tiny_base), guidance=None, prompt=""), EmbeddedDenoiser)


def test_a_missing_embedded_base_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "BASE_DIR", tmp_path / "base")
    with pytest.raises(TeamworkError, match="the embedded base model is missing from") as err:
        loading.load_denoiser("embedded")
    assert "reinstall teamwork" in err.value.hint and "pretrain" in err.value.hint


@pytest.mark.usefixtures("offline")
def test_other_folders_are_diffusers_pipelines_with_their_options(sd2_folder, tmp_path):
    from teamwork_cli.models.hub.unet import UNetDenoiser

    den = loading.load_denoiser(str(sd2_folder), timestep_spacing=None, prompt=None)  # None: the default
    assert isinstance(den, UNetDenoiser) and den.scheduler.config.timestep_spacing == "trailing"
    den = loading.load_denoiser(str(sd2_folder), timestep_spacing="leading")
    assert den.scheduler.config.timestep_spacing == "leading"
    with pytest.raises(ValueError, match="guidance"):
        loading.load_denoiser(str(sd2_folder), guidance=2.0)
    with pytest.raises(TeamworkError, match="no model_index.json"):
        loading.load_denoiser(str(tmp_path))  # neither teamwork.json nor a pipeline
