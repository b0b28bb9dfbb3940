"""Where an adapter comes from: a local file, a shipped name, a hub file, or a task's shipped default."""

from __future__ import annotations

import pytest

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.embedded import EMBEDDED_DIR
from teamwork_cli.models.hub import resolve, resolve_adapter


@pytest.mark.usefixtures("offline")
def test_resolve_adapter(tmp_path, tiny_svbrdf_adapter):
    assert resolve_adapter(str(tiny_svbrdf_adapter)) == tiny_svbrdf_adapter
    local = tmp_path / "samsartor" / "teamwork-release" / "x.safetensors"  # a local path wins over the hub
    local.parent.mkdir(parents=True)
    local.write_bytes(b"")
    assert resolve_adapter(str(local)) == local
    with pytest.raises(TeamworkError) as e:
        resolve_adapter("samsartor/teamwork-release/colocated_svbrdf_estimation_flux_512.safetensors")
    assert "HF_HUB_OFFLINE=1" in str(e.value)
    assert "hf download samsartor/teamwork-release colocated_svbrdf_estimation_flux_512.safetensors" in e.value.hint
    with pytest.raises(TeamworkError, match="not found"):
        resolve_adapter(str(tmp_path / "none.safetensors"))


def test_shipped_adapters_resolve_by_name(capsys):
    from teamwork_cli.models.hub.resolve import resolve_adapter, shipped_adapters

    names = shipped_adapters()
    if not names:
        pytest.skip("no shipped adapters in this checkout")
    assert resolve_adapter(names[0]).is_file()
    with pytest.raises(Exception, match="not found") as e:
        resolve_adapter("no-such-adapter")
    assert names[0] in e.value.hint


def test_task_adapter_without_an_adapter_is_the_shipped_one():
    for preset in ("svbrdf", "intrinsics", "inpaint", "shade", "synthesize"):
        path = resolve.task_adapter(preset)
        assert path == EMBEDDED_DIR / f"{preset}.safetensors" == resolve.default_adapter(preset)
        assert path.is_file()
    assert resolve.task_adapter("svbrdf", None) == resolve.default_adapter("svbrdf")


def test_task_adapter_with_an_adapter_resolves_it(tmp_path, tiny_svbrdf_adapter):
    assert resolve.task_adapter("svbrdf", tiny_svbrdf_adapter) == tiny_svbrdf_adapter
    assert resolve.task_adapter("intrinsics", str(tiny_svbrdf_adapter)) == tiny_svbrdf_adapter  # no team check here
    assert resolve.task_adapter("shade", "svbrdf") == EMBEDDED_DIR / "svbrdf.safetensors"  # a shipped name
    with pytest.raises(TeamworkError, match="not found"):
        resolve.task_adapter("svbrdf", tmp_path / "none.safetensors")


@pytest.mark.parametrize(
    "preset, data",
    [
        ("svbrdf", "svbrdf"),
        ("intrinsics", "scenes"),
        ("shade", "scenes"),
        ("inpaint-material", "inpaint"),
        ("mine", "mine"),
    ],
)
def test_a_missing_shipped_adapter_says_how_to_train_one(tmp_path, monkeypatch, preset, data):
    monkeypatch.setattr(resolve, "default_adapter", lambda p: tmp_path / f"{p}.safetensors")
    with pytest.raises(TeamworkError) as err:
        resolve.task_adapter(preset)
    assert str(err.value) == (
        f"no {preset} adapter is shipped with this version yet ({tmp_path / f'{preset}.safetensors'} is missing)"
    )
    assert "--adapter" in err.value.hint
    assert f"`teamwork finetune --preset {preset} --data procedural:{data} -o {preset}.safetensors`" in err.value.hint


def test_shipped_names_and_folders(tmp_path):
    names = resolve.shipped_adapters()
    assert names == sorted(names) and {"svbrdf", "intrinsics", "inpaint", "shade", "synthesize"} <= set(names)
    assert resolve.resolve_adapter("inpaint") == EMBEDDED_DIR / "inpaint.safetensors"
    with pytest.raises(TeamworkError, match="is a folder, not a file") as err:
        resolve.resolve_adapter(tmp_path)
    assert ".safetensors" in err.value.hint
    with pytest.raises(TeamworkError, match="not found") as err:
        resolve.resolve_adapter("./a/b/c.safetensors")  # relative and explicit: never a hub id
    assert resolve.PUBLISHED_REPO in err.value.hint and "svbrdf" in err.value.hint
