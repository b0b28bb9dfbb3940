"""The channel table: components and file encodings of the known channels, user channels, name checks."""

from __future__ import annotations

import pytest

from teamwork_cli.core.channels import CHANNELS, TEAMMATE_RE, channel_spec


@pytest.mark.parametrize(
    "name, components, encoding",
    [
        ("image", 3, "srgb"),
        ("diffuse", 3, "srgb"),
        ("roughness", 1, "linear"),
        ("normals", 3, "vector"),
        ("halfway", 3, "vector"),
        ("metallic", 1, "linear"),
        ("diffuseshading", 3, "hdr"),
        ("depth", 1, "linear"),
        ("mask", 1, "linear"),
        ("deferred", 3, "srgb"),
    ],
)
def test_known_channels(name, components, encoding):
    spec = channel_spec(name)
    assert (spec.name, spec.components, spec.encoding) == (name, components, encoding)
    assert spec.is_grey == (components == 1) and spec.description
    assert spec is CHANNELS[name]


def test_every_table_entry_is_consistent():
    for name, spec in CHANNELS.items():
        assert spec.name == name and spec.components in (1, 3)
        assert spec.encoding in ("srgb", "linear", "vector", "hdr")
        assert spec.encoding != "vector" or spec.components == 3, name


def test_user_channels_are_three_component_linear():
    spec = channel_spec("sheen")
    assert (spec.components, spec.encoding, spec.is_grey) == (3, "linear", False)
    assert "sheen" not in CHANNELS  # looking one up does not add it to the table


@pytest.mark.parametrize("name", ["Diffuse", "diffuse_map", "normals2", "", "a.in"])
def test_bad_channel_names_are_refused(name):
    with pytest.raises(ValueError, match=r"must match \[a-z\]\+") as err:
        channel_spec(name)
    assert repr(name) in str(err.value)


def test_teammate_names():
    assert TEAMMATE_RE.match("image.in").groups() == ("image", "in")
    assert TEAMMATE_RE.match("normals.out").groups() == ("normals", "out")
    for bad in ("image", "image.In", "Image.in", "image.in.out", "image.both"):
        assert TEAMMATE_RE.match(bad) is None, bad
