"""The Flux denoiser: 2x2 latent packing, the shifted schedule, guidance, and predictions on a tiny pipeline."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.models.hub import flux as F
from teamwork_cli.models.hub import load_hub_denoiser

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def den(hub_teams):
    _, folder, _ = hub_teams("flux")
    return load_hub_denoiser(str(folder), cache_embeds=False)


def test_pack_is_fluxpipelines_2x2_token_layout_and_unpack_inverts_it():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    tokens = F.pack(x)
    assert tokens.shape == (2, 2 * 3, 3 * 4)
    # token (row 0, column 1) holds channel 0's 2x2 patch at rows 0-1, columns 2-3, then channel 1's ...
    assert tokens[0, 1, :4].tolist() == [x[0, 0, 0, 2], x[0, 0, 0, 3], x[0, 0, 1, 2], x[0, 0, 1, 3]]
    assert torch.equal(F.unpack(tokens, 4, 6), x)


def test_flux_options_and_sizes(den, hub_teams):
    assert isinstance(den, F.FluxDenoiser) and den.prediction_type == "flow" and den.family == "flux"
    assert den.guidance == F.DEFAULT_GUIDANCE == 3.5 and den.pixel_multiple == 4
    _, folder, _ = hub_teams("flux")
    assert load_hub_denoiser(str(folder), cache_embeds=False, guidance=1.5).guidance == 1.5


def test_one_step_starts_at_pure_noise_and_more_steps_descend(den):
    latents = torch.zeros(1, 4, 16, 16)
    one = den.set_timesteps(1, latents)
    assert one.tolist() == [pytest.approx(1000.0)]
    four = den.set_timesteps(4, latents)
    assert len(four) == 4 and (four[1:] < four[:-1]).all()


def test_predict_keeps_the_latent_shape_and_reads_the_guidance(den):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 700.0)
    with torch.no_grad():
        out = den.predict(x, t)
        assert out.shape == x.shape and torch.isfinite(out).all()
        den.guidance = 9.0
        try:
            other = den.predict(x, t)
        finally:
            den.guidance = F.DEFAULT_GUIDANCE
    assert not torch.allclose(out, other)  # the guidance embedding is fed to the transformer
