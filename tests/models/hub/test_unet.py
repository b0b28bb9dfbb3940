"""SD2 and SDXL UNet denoisers: SDXL's published size conditioning, the estimation scheduler."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler

from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.testing import save_tiny_pipeline
from teamwork_cli.models.hub.unet import estimation_scheduler


@pytest.mark.usefixtures("offline")
def test_sdxl_published_size_conditioning(tmp_path):
    den = load_hub_denoiser(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")))
    ids = den.added_cond(torch.zeros(2, 4, 16, 24))["time_ids"]  # 32 x 48 px with the tiny VAE (factor 2)
    assert ids.tolist() == [[64.0, 96.0, 0.0, 0.0, 64.0, 96.0]] * 2  # pixel size times the VAE factor
    assert den.scheduler.config.timestep_spacing == "trailing"


def test_estimation_scheduler_trails_and_replaces_schedulers_without_a_generator():
    pndm = PNDMScheduler(prediction_type="v_prediction", timestep_spacing="leading")
    ddim = estimation_scheduler(pndm)
    assert isinstance(ddim, DDIMScheduler) and ddim.config.timestep_spacing == "trailing"
    assert ddim.config.prediction_type == "v_prediction"  # same betas and prediction type
    assert isinstance(estimation_scheduler(pndm, None), DDIMScheduler)
    euler = EulerDiscreteScheduler(timestep_spacing="trailing")
    assert estimation_scheduler(euler, None) is euler  # nothing to change: the pipeline's own scheduler
    assert estimation_scheduler(euler).config.timestep_spacing == "trailing"
    leading = EulerDiscreteScheduler(timestep_spacing="leading")
    assert estimation_scheduler(leading, None) is leading
    trailing = estimation_scheduler(leading)
    assert type(trailing) is EulerDiscreteScheduler and trailing.config.timestep_spacing == "trailing"
    assert leading.config.timestep_spacing == "leading"  # a new scheduler, the given one untouched


def test_one_trailing_step_starts_at_the_last_timestep():
    ddim = estimation_scheduler(PNDMScheduler(num_train_timesteps=1000))
    ddim.set_timesteps(1)
    assert ddim.timesteps.tolist() == [999]


@pytest.mark.usefixtures("offline")
def test_bad_conditioning_options_are_refused(tmp_path, sd2_folder):
    with pytest.raises(ValueError, match="micro_conditioning must be one of published, diffusers; got 'pixels'"):
        load_hub_denoiser(str(save_tiny_pipeline("sdxl", tmp_path / "sdxl")), micro_conditioning="pixels")
    with pytest.raises(ValueError, match="allowed: timestep_spacing"):
        load_hub_denoiser(str(sd2_folder), micro_conditioning="published")  # an SDXL option, not SD2's
