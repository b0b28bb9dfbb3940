"""TeamPipeline: several images per forward (same results as one at a time, no mixing), memory options, held
known regions, and the input convention each denoiser was trained with."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core import encoding
from teamwork_cli.models.hub import load_hub_denoiser
from teamwork_cli.pipelines.team_pipeline import TeamPipeline


def test_batch_equals_single_runs_and_never_mixes(pipe32, photos, team_inputs):
    x = photos(3)
    kw = dict(steps=2, outputs=["diffuse.out", "normals.out"])
    batch = pipe32(team_inputs(x), seed=[5, 5, 5], **kw)
    for i in range(3):
        alone = pipe32(team_inputs(x[i : i + 1]), seed=5, **kw)
        for name, value in alone.items():
            torch.testing.assert_close(batch[name][i : i + 1], value, atol=1e-5, rtol=0)
    # An int seed gives image i the seed + i, whatever the batch.
    spread = pipe32(team_inputs(x), seed=7, **kw)
    torch.testing.assert_close(
        spread["diffuse.out"][2:], pipe32(team_inputs(x[2:]), seed=9, **kw)["diffuse.out"], atol=1e-5, rtol=0
    )
    # Changing one image of the batch leaves the others' results alone.
    y = x.clone()
    y[1] = 1 - y[1]
    other = pipe32(team_inputs(y), seed=[5, 5, 5], **kw)
    for name in batch:
        torch.testing.assert_close(other[name][[0, 2]], batch[name][[0, 2]], atol=1e-5, rtol=0)
        assert (other[name][1] - batch[name][1]).abs().max() > 1e-3


def test_seed_list_length_checked(pipe32, photos, team_inputs):
    with pytest.raises(ValueError, match="seed"):
        pipe32(team_inputs(photos(2)), seed=[1, 2, 3], steps=1)
    with pytest.raises(ValueError, match="same number of images"):
        pipe32({"image.in": photos(2), "halfway.in": photos(1)}, steps=1)


def test_bf16_autocast_batch_close_to_single(tiny_base, tiny_svbrdf_adapter, photos, team_inputs):
    pipe = TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", dtype="bf16")
    x = photos(2, seed=1)
    batch = pipe(team_inputs(x), seed=[3, 3], steps=1, outputs=["diffuse.out"])["diffuse.out"]
    alone = pipe(team_inputs(x[1:]), seed=3, steps=1, outputs=["diffuse.out"])["diffuse.out"]
    assert (batch[1:] - alone).abs().max() < 0.01  # bf16 rounding only (exact on the CPUs tried)


def test_memory_and_speed_options_on_the_embedded_model(tiny_base, tiny_svbrdf_adapter, pipe32, photos, team_inputs):
    x = team_inputs(photos(1, size=(16, 16)))
    ref = pipe32(x, steps=1, seed=1)["normals.out"]
    # Offload is a no-op on a CPU and for the embedded model; slicing has nothing to slice in it; the compiled
    # model ("eager" backend: traced by dynamo, quick to build) computes the same.
    pipe = TeamPipeline.load(
        tiny_svbrdf_adapter,
        base=str(tiny_base),
        device="cpu",
        dtype="fp32",
        offload=True,
        attention_slicing=True,
        compile="eager",
    )
    torch.testing.assert_close(pipe(x, steps=1, seed=1)["normals.out"], ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="guidance"):
        TeamPipeline.load(tiny_svbrdf_adapter, base=str(tiny_base), device="cpu", guidance=2.0)


@pytest.mark.usefixtures("offline")
def test_pipeline_feeds_the_denoisers_convention(monkeypatch, sd2_folder, tmp_path):
    """TeamPipeline hands a hub denoiser gamma images and 2h-1 halfway maps, and maps outputs back."""
    from teamwork_cli.adapters.checkpoint import save_adapter
    from teamwork_cli.adapters.model import inject_adapter
    from teamwork_cli.pipelines import team_pipeline as P

    den = load_hub_denoiser(str(sd2_folder))
    inject_adapter(den.model, None, 3, 2)
    path = save_adapter(
        den.model,
        tmp_path / "a.safetensors",
        ["image.in", "halfway.in", "diffuse.out"],
        base_model=str(sd2_folder),
        title="t",
        profile="UNET",
        architecture="sd2",
    )
    seen = {}

    def fake_sample(denoiser, layout, inputs, **kw):
        seen.update(inputs)
        return {"diffuse.out": inputs["image.in"]}  # echo: the output path must invert the input path

    monkeypatch.setattr(P, "sample_team", fake_sample)
    pipe = P.TeamPipeline.load(path, base=str(sd2_folder), device="cpu")
    photo = torch.rand(1, 3, 16, 16)
    hv = torch.rand(1, 3, 16, 16)
    out = pipe({"image.in": photo, "halfway.in": hv}, steps=1)
    torch.testing.assert_close(seen["image.in"], encoding.to_convention("image", photo, "published") * 2 - 1)
    torch.testing.assert_close(seen["halfway.in"], (hv * 2 - 1) * 2 - 1)
    torch.testing.assert_close(out["diffuse.out"], photo, atol=1e-5, rtol=0)


def test_known_region_is_held_while_sampling(tiny_base, adapters):
    """Held context: with every pixel known, 20 steps end near the known image; with none, nothing changes."""
    import torch

    from teamwork_cli.pipelines.team_pipeline import TeamPipeline

    pipe = TeamPipeline.load(adapters["inpaint"], base=str(tiny_base), device="cpu", dtype="fp32")
    g = torch.Generator().manual_seed(0)
    image, mask = torch.rand(1, 3, 16, 16, generator=g), torch.zeros(1, 1, 16, 16)
    inputs = {"image.in": image, "mask.in": mask.expand(1, 3, -1, -1)}
    free = pipe(inputs, steps=20)["image.out"]
    held = pipe(inputs, steps=20, known={"image.out": image}, known_mask=torch.ones_like(mask))["image.out"]
    none = pipe(inputs, steps=20, known={"image.out": image}, known_mask=mask)["image.out"]
    assert (held - image).abs().mean() < 0.5 * (free - image).abs().mean()
    torch.testing.assert_close(none, free)
    with pytest.raises(ValueError, match="known_mask"):
        pipe(inputs, steps=2, known={"image.out": image})
    with pytest.raises(ValueError, match=r"known_mask: must be \[1 or 1, 1, 16, 16\]"):
        pipe(inputs, steps=2, known={"image.out": image}, known_mask=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="not running outputs"):
        pipe(inputs, steps=2, known={"image.in": image}, known_mask=mask)
