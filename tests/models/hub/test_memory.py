"""Memory and speed options on tiny hub backbones: CPU offload hooks, attention slicing, batching, options.

Offloading to a GPU cannot run here; `enable_offload` is exercised with the CPU as the "GPU", which runs every
hook and device move and must leave the results unchanged.
"""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.adapters.checkpoint import save_adapter
from teamwork_cli.adapters.model import inject_adapter
from teamwork_cli.adapters.profiles import layers_to_adapt
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.models.hub.memory import enable_offload
from teamwork_cli.models.hub.testing import save_tiny_pipeline
from teamwork_cli.pipelines.team_pipeline import TeamPipeline

pytestmark = pytest.mark.usefixtures("offline")

SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]


@pytest.fixture(scope="module", params=["sd2", "flux"])  # a UNet and a transformer
def team(request, tmp_path_factory, randomize_up):
    family = request.param
    root = tmp_path_factory.mktemp(family)
    folder = save_tiny_pipeline(family, root / "base")
    den = load_hub_denoiser(str(folder), cache_embeds=False)
    inject_adapter(den.model, layers_to_adapt(den.model), len(SVBRDF), 4)
    randomize_up(den.model, 0.02)
    adapter = save_adapter(
        den.model,
        root / "svbrdf.safetensors",
        SVBRDF,
        base_model=str(folder),
        title="tiny",
        profile=family.upper(),
        architecture=family,
    )
    return family, folder, adapter


def inputs(n: int) -> dict[str, torch.Tensor]:
    x = torch.rand((n, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    return {"image.in": x, "halfway.in": torch.full_like(x, 0.5)}


def load(team, **kw) -> TeamPipeline:
    _, folder, adapter = team
    return TeamPipeline.load(adapter, base=str(folder), device="cpu", dtype="fp32", **kw)


def test_offload_hooks_keep_results(team):
    ref = load(team)(inputs(2), steps=2, seed=3)
    pipe = load(team)
    enable_offload(pipe.denoiser, torch.device("cpu"))
    assert hasattr(pipe.denoiser.model, "_diffusers_hook")  # diffusers' group-offload hooks are installed
    assert pipe.denoiser.codec.offload_to == torch.device("cpu")
    out = pipe(inputs(2), steps=2, seed=3)
    for name, value in ref.items():
        torch.testing.assert_close(out[name], value, atol=1e-5, rtol=0)


def test_batch_matches_single_and_slicing_keeps_results(team):
    family = team[0]
    single = load(team)
    x = inputs(2)
    alone = single({k: v[1:] for k, v in x.items()}, steps=1, seed=5)
    pipe = load(team, attention_slicing=True)
    assert pipe.denoiser.codec.vae.use_slicing
    if family == "sd2":
        procs = {type(p).__name__ for p in pipe.denoiser.model.attn_processors.values()}
        assert procs == {"SlicedAttnProcessor"}
    batch = pipe(x, steps=1, seed=[5, 5])
    for name, value in alone.items():
        torch.testing.assert_close(batch[name][1:], value, atol=1e-4, rtol=0)


def test_backbone_options_reach_the_loader(team):
    family = team[0]
    if family == "flux":
        assert load(team, guidance=2.0).denoiser.guidance == 2.0
        assert load(team, guidance=None).denoiser.guidance == 3.5  # None: the backbone's default
    else:
        with pytest.raises(ValueError, match="guidance"):
            load(team, guidance=2.0)
