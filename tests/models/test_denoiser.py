"""TeamDenoiser's training target and its inverse, for every prediction type."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("prediction", ["flow", "epsilon", "v_prediction"])
def test_x0_from_inverts_the_training_target(prediction):
    from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

    from teamwork_cli.models.denoiser import TeamDenoiser

    class Den(TeamDenoiser):
        def predict(self, sample, timesteps, **cond):
            return sample

    sched = FlowMatchEulerDiscreteScheduler() if prediction == "flow" else DDPMScheduler(prediction_type=prediction)
    den = Den(torch.nn.Identity(), sched)
    den.prediction_type = "flow" if prediction == "flow" else prediction
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([10.0, 500.0, 900.0])
    x_t = den.add_noise(x0, eps, t)
    torch.testing.assert_close(den.x0_from(den.target(x0, eps, t), x_t, t), x0, atol=1e-4, rtol=1e-4)
    assert den.one_step_timestep() == (1000 if prediction == "flow" else 999)
