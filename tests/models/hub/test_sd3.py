"""The SD3 denoiser on a tiny pipeline: sizes, the schedule, the prediction's shape and the prompt embeddings."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.sd3 import SD3Denoiser

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def den(hub_teams):
    _, folder, _ = hub_teams("sd3")
    return load_hub_denoiser(str(folder), cache_embeds=False)


def test_sd3_is_a_flow_model_with_its_prompt_embeddings(den):
    assert isinstance(den, SD3Denoiser) and den.family == "sd3" and den.prediction_type == "flow"
    assert den.pixel_multiple == den.vae_scale_factor * 2 == 4  # the VAE's 2x times the 2x2 patches
    assert den.prompt_embeds.shape[0] == 1 and den.pooled_prompt_embeds.shape == (1, 16)


def test_timesteps_run_from_pure_noise_down(den):
    t = den.set_timesteps(3, torch.zeros(1, 4, 8, 8))
    assert len(t) == 3 and t[0] == pytest.approx(1000.0) and (t[1:] < t[:-1]).all()


def test_predict_keeps_the_latent_shape_for_any_number_of_rows(den):
    with torch.no_grad():
        for rows in (1, 3):
            x = torch.randn(rows, 4, 8, 8)
            out = den.predict(x, torch.full((rows,), 500.0))
            assert out.shape == x.shape and torch.isfinite(out).all()
