"""The Z-Image denoiser: the reference's time convention, negated prediction, prompt and schedule."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub import zimage as Z

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def den(hub_teams):
    _, folder, _ = hub_teams("zimage")
    return load_hub_denoiser(str(folder), cache_embeds=False)


def test_zimage_sizes_and_prompt(den):
    assert isinstance(den, Z.ZImageDenoiser) and den.family == "zimage" and den.prediction_type == "flow"
    assert den.pixel_multiple == 4 and den.input_convention == "published"
    # Qwen3's second-to-last layer over the empty prompt's chat tokens, padding dropped
    assert den.prompt_embeds.ndim == 3 and den.prompt_embeds.shape[0] == 1 and den.prompt_embeds.shape[2] == 16
    assert 0 < den.prompt_embeds.shape[1] < 512


def test_schedule_ends_at_sigma_zero_as_the_reference(den):
    latents = torch.zeros(1, 4, 16, 16)
    assert den.set_timesteps(1, latents).tolist() == [pytest.approx(1000.0)]
    two = den.set_timesteps(2, latents)
    assert two.tolist() == [pytest.approx(1000.0), pytest.approx(0.0)] and den.scheduler.sigma_min == 0.0


def test_predict_is_the_negated_output_at_reversed_time(den):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([700.0, 300.0])
    with torch.no_grad():
        out = den.predict(x, t)
        raw = den.model([r[:, None] for r in x], (1000 - t) / 1000, [den.prompt_embeds[0]] * 2, return_dict=False)[0]
    assert out.shape == x.shape
    torch.testing.assert_close(out, -torch.stack(raw).squeeze(2))
