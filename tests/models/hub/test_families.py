"""The supported diffusers pipelines, keyed by model_index.json's `_class_name`."""

from __future__ import annotations

import json

import pytest

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub import families as F


def test_the_six_families():
    assert F.supported_pipelines() == [
        "StableDiffusion3Pipeline",
        "StableDiffusionXLPipeline",
        "StableDiffusionPipeline",
        "FluxPipeline",
        "Flux2KleinPipeline",
        "ZImagePipeline",
    ]
    assert {f.name: f.denoiser for f in F.FAMILIES.values()} == {
        "sd3": "transformer",
        "sdxl": "unet",
        "sd2": "unet",
        "flux": "transformer",
        "flux2": "transformer",
        "zimage": "transformer",
    }
    assert all(F.FAMILIES[p].pipeline == p for p in F.FAMILIES)


@pytest.mark.parametrize("pipeline", list(F.FAMILIES))
def test_each_family_names_its_prompt_encoder_and_builder(pipeline):
    family = F.family_for(pipeline, "base")
    encode, build = family.functions()
    assert callable(encode) and callable(build)
    assert encode.__name__ == family.encode and build.__name__ == family.build
    assert encode.__module__ == build.__module__ == f"teamwork_cli.models.hub.{family.module}"


def test_unknown_pipelines_list_the_supported_ones():
    with pytest.raises(TeamworkError) as err:
        F.family_for("KandinskyPipeline", "base model ./k")
    assert str(err.value).startswith("base model ./k is a KandinskyPipeline; Teamwork supports StableDiffusion3")
    assert "--base" in err.value.hint
    with pytest.raises(TeamworkError, match="is a pipeline without _class_name"):
        F.family_for("", "base model ./k")


def test_tiny_pipelines_are_the_families_they_claim(hub_team):
    family, folder, _ = hub_team
    index = json.loads((folder / "model_index.json").read_text())
    fam = F.family_for(index["_class_name"], str(folder))
    assert fam.name == family and fam.denoiser in index
