"""Team layouts and presets: names, inputs/outputs, validation, every shipped preset loads."""

from __future__ import annotations

import pytest

from teamwork_cli.core.layout import TeamLayout, available_presets, load_preset


def test_every_preset_loads_with_valid_names():
    names = available_presets()
    assert {"svbrdf", "intrinsics", "inpaint", "inpaint-material", "shade", "synthesize"} <= set(names)
    for name in names:
        layout = load_preset(name)
        assert layout.outputs and layout.name == name


def test_svbrdf_matches_the_published_checkpoints():
    layout = load_preset("svbrdf")
    assert [t.name for t in layout.inputs] == ["image.in", "halfway.in"]
    assert [t.channel for t in layout.outputs] == ["diffuse", "specular", "roughness", "normals"]
    assert layout.index("normals.out") == 5 and layout.teammates[5].spec.encoding == "vector"


@pytest.mark.parametrize(
    "names, message",
    [
        ("image.in,Foo.out", "<channel>.<in|out>"),
        ("image.in,foo.bar", "<channel>.<in|out>"),
        ("image.in,image.in,a.out", "listed twice"),
        ("image.in", "no output teammate"),
        ("", "at least one teammate"),
    ],
)
def test_bad_layouts(names, message):
    with pytest.raises(ValueError, match=message):
        TeamLayout.from_names(names)


def test_unknown_preset_lists_available():
    with pytest.raises(ValueError, match="available: .*svbrdf"):
        load_preset("nope")


def test_user_channels_are_linear_rgb():
    layout = TeamLayout.from_names("image.in,foo.out")
    assert layout.outputs[0].spec.components == 3 and layout.outputs[0].spec.encoding == "linear"
    with pytest.raises(ValueError, match="no teammate"):
        layout.index("bar.out")
