"""TeamworkConfig: an adapter file's metadata as a dataclass, round-tripped key for key, and its checks."""

from __future__ import annotations

import pytest

from teamwork_cli.adapters.config import (
    FORMAT_VERSION,
    IMPLEMENTATION,
    TeamworkConfig,
    default_image_ids,
    format_attn_allow,
    parse_attn_allow,
)

TEAM = ["image.in", "diffuse.out", "normals.out"]
META = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-3/teamwork",
    "modelspec.implementation": "https://github.com/samsartor/teamwork",
    "modelspec.title": "hand made",
    "modelspec.type": "teamwork",
    "modelspec.resolution": "512x512",
    "base_model": "stabilityai/stable-diffusion-3-medium-diffusers",
    "teamwork.version": "1.0",
    "teamwork.teammates": ",".join(TEAM),
    "teamwork.lora_rank": "4",
    "teamwork.profile": "SD3",
    "teamwork.lora_communication": "False",
    "teamwork.use_bias": "True",
    "teamwork.objective": "one-step",
    "note": "from another tool",
}


def test_metadata_round_trips_key_for_key():
    config = TeamworkConfig.from_metadata(META)
    assert config.teammates == TEAM and config.rank == 4 and config.communication is False and config.use_bias
    assert (config.profile, config.base_model, config.title, config.resolution) == (
        "SD3",
        "stabilityai/stable-diffusion-3-medium-diffusers",
        "hand made",
        "512x512",
    )
    assert config.inputs == ["image.in"] and config.outputs == ["diffuse.out", "normals.out"]
    assert config.extra == {"teamwork.objective": "one-step", "note": "from another tool"}  # unknown keys kept
    assert config.to_metadata() == META
    assert TeamworkConfig.from_metadata(config.to_metadata()) == config


def test_defaults_and_the_architecture_suffix():
    meta = TeamworkConfig(["image.in", "x.out"], 2, architecture="sd3").to_metadata()
    assert meta["modelspec.architecture"] == "sd3/teamwork" and meta["modelspec.type"] == "teamwork"
    assert meta["teamwork.version"] == FORMAT_VERSION and meta["modelspec.implementation"] == IMPLEMENTATION
    assert meta["teamwork.lora_communication"] == "True" and meta["teamwork.use_bias"] == "True"
    assert "modelspec.resolution" not in meta  # only where recorded
    back = TeamworkConfig.from_metadata(meta)
    assert back.architecture == "sd3/teamwork" and back.to_metadata() == meta  # the suffix is not doubled
    bare = TeamworkConfig.from_metadata(
        {"modelspec.type": "teamwork", "teamwork.teammates": "a.in,b.out", "teamwork.lora_rank": "3"},
        default_use_bias=False,
    )
    assert bare.communication is True and bare.use_bias is False and bare.extra == {}


@pytest.mark.parametrize("key", ["teamwork.lora_rank", "modelspec.type", "base_model", "modelspec.resolution"])
def test_reserved_extra_keys_are_refused(key):
    config = TeamworkConfig(TEAM, 4, extra={key: "9"})
    with pytest.raises(ValueError, match=f"extra metadata key '{key}' is reserved"):
        config.to_metadata()


def test_extra_values_must_be_strings():
    with pytest.raises(ValueError, match="extra metadata 'teamwork.train_steps' must be a string, got int"):
        TeamworkConfig(TEAM, 4, extra={"teamwork.train_steps": 3}).to_metadata()


@pytest.mark.parametrize(
    "change, match",
    [
        ({"modelspec.type": "lora"}, r"modelspec\.type is 'lora', expected 'teamwork'"),
        ({"modelspec.type": None}, r"modelspec\.type is None"),
        ({"teamwork.teammates": None}, r"teamwork\.teammates is missing or empty"),
        ({"teamwork.teammates": " , "}, r"teamwork\.teammates is missing or empty"),
        ({"teamwork.teammates": "image,diffuse.out"}, r"teamwork\.teammates .* unique '<channel>\.in\|out' names"),
        ({"teamwork.teammates": "image.in,image.in,diffuse.out"}, r"teamwork\.teammates .* unique"),
        ({"teamwork.lora_rank": "four"}, r"teamwork\.lora_rank='four' must be a positive integer"),
        ({"teamwork.lora_rank": "0"}, r"teamwork\.lora_rank='0' must be a positive integer"),
        ({"teamwork.lora_rank": None}, r"teamwork\.lora_rank=None must be a positive integer"),
        ({"teamwork.lora_communication": "maybe"}, r"teamwork\.lora_communication='maybe' is not a boolean"),
        ({"teamwork.use_bias": "2"}, r"teamwork\.use_bias='2' is not a boolean"),
    ],
)
def test_bad_metadata_is_refused_naming_the_file_and_key(change, match):
    meta = {k: v for k, v in {**META, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=match) as err:
        TeamworkConfig.from_metadata(meta, where="x.safetensors")
    assert str(err.value).startswith("x.safetensors: ")


@pytest.mark.parametrize("text, value", [("True", True), ("false", False), ("1", True), ("no", False)])
def test_booleans_are_read_in_any_common_spelling(text, value):
    assert TeamworkConfig.from_metadata({**META, "teamwork.use_bias": text}).use_bias is value


def test_loose_channel_spellings_are_read():
    """Reading accepts what other tools wrote (e.g. upper case); writing checks stricter names elsewhere."""
    config = TeamworkConfig.from_metadata({**META, "teamwork.teammates": " Image.in , diffuse_map.out "})
    assert config.teammates == ["Image.in", "diffuse_map.out"]


def test_attn_allow_and_image_ids_round_trip():
    meta = {**META, "teamwork.attn_allow": "100;011;011", "teamwork.teammate_image_ids": "0,10,20"}
    config = TeamworkConfig.from_metadata(meta)
    assert config.attn_allow == "100;011;011" and config.teammate_image_ids == [0, 10, 20]
    assert config.allow_matrix() == [[True, False, False], [False, True, True], [False, True, True]]
    assert config.extra == {"teamwork.objective": "one-step", "note": "from another tool"}  # not extra keys
    assert config.to_metadata() == meta
    plain = TeamworkConfig.from_metadata(META)
    assert (
        plain.attn_allow is None and plain.allow_matrix() is None and "teamwork.attn_allow" not in plain.to_metadata()
    )
    assert "teamwork.teammate_image_ids" not in plain.to_metadata()


def test_attn_allow_is_read_as_the_reference_reads_it():
    # spaces inside and between rows and empty rows are tolerated
    assert parse_attn_allow(" 10 ; 0 1 ;", 2) == [[True, False], [False, True]]
    assert format_attn_allow(parse_attn_allow("110;011;001", 3)) == "110;011;001"


@pytest.mark.parametrize(
    "text, match",
    [
        ("10;01", "has 2 rows; the team has 3 teammates"),
        ("100;01;001", "row 1 '01' must be 3 characters '0' or '1'"),
        ("100;0x1;001", "row 1 '0x1' must be 3 characters"),
        ("100;001;001", "row 1 '001' must have '1' at position 1"),
    ],
)
def test_bad_attn_allow_is_refused(text, match):
    with pytest.raises(ValueError, match=match) as err:
        TeamworkConfig.from_metadata({**META, "teamwork.attn_allow": text}, where="x.safetensors")
    assert str(err.value).startswith("x.safetensors: metadata teamwork.attn_allow ")
    with pytest.raises(ValueError, match=match):
        TeamworkConfig(TEAM, 4, attn_allow=text)


@pytest.mark.parametrize("text, match", [("0,1", "has 2 entries"), ("0,a,2", "comma-separated integers")])
def test_bad_image_ids_are_refused(text, match):
    with pytest.raises(ValueError, match=f"x: metadata teamwork.teammate_image_ids '{text}' .*{match}"):
        TeamworkConfig.from_metadata({**META, "teamwork.teammate_image_ids": text}, where="x")


def test_default_image_ids_follow_the_profile():
    assert TeamworkConfig(TEAM, 4, profile="SD3").image_ids() == [0, 0, 0]  # unused without joint attention
    assert TeamworkConfig(TEAM, 4, profile="SD3_PLUSATTN").image_ids() == [0, 1, 2]
    assert TeamworkConfig(TEAM, 4, profile="FLUX2_PLUSATTN").image_ids() == [0, 10, 20]
    assert TeamworkConfig(TEAM, 4, profile="FLUX2_PLUSATTN", teammate_image_ids=[5, 0, 0]).image_ids() == [5, 0, 0]
    assert default_image_ids("FLUX_PLUSATTN", 2) == [0, 1]
    assert TeamworkConfig(TEAM, 4, profile="SDXL_PLUSATTN").joint_attention
    assert not TeamworkConfig(TEAM, 4, profile="SDXL").joint_attention
