"""Hub failures as one actionable TeamworkError: gated, missing repository or file, offline, anything else."""

from __future__ import annotations

import pytest
from huggingface_hub import errors as E

from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.models.hub import errors

WHAT, REPO, DOWNLOAD = "base model owner/name", "owner/name", "hf download owner/name"


def _http(cls: type[Exception]) -> Exception:
    """An instance of a hub HTTP error class without a live response (only its class matters here)."""
    e = cls.__new__(cls)
    Exception.__init__(e, "401 Client Error")
    return e


@pytest.fixture()
def online(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.mark.usefixtures("online")
@pytest.mark.parametrize(
    "cls, message, hint",
    [
        (
            E.GatedRepoError,
            "base model owner/name is gated on the Hugging Face hub",
            "accept its licence at https://huggingface.co/owner/name",
        ),
        (
            E.RepositoryNotFoundError,
            "base model owner/name: no repository 'owner/name' on the Hugging Face hub",
            "check the spelling (owner/name)",
        ),
        (
            E.RemoteEntryNotFoundError,
            "base model owner/name: the file does not exist in owner/name",
            "check the file name",
        ),
    ],
)
def test_hub_http_errors(cls, message, hint):
    err = errors.hub_error(WHAT, REPO, _http(cls), DOWNLOAD)
    assert isinstance(err, TeamworkError) and str(err).startswith(message) and hint in err.hint


@pytest.mark.usefixtures("online")
def test_not_cached_and_not_downloadable():
    err = errors.hub_error(WHAT, REPO, E.LocalEntryNotFoundError("not cached"), DOWNLOAD)
    assert str(err) == (
        "base model owner/name is not in the Hugging Face cache and it could not be downloaded (no "
        "connection to the hub?)"
    )
    assert f"`{DOWNLOAD}`" in err.hint and "unset HF_HUB_OFFLINE" not in err.hint  # it is not set


def test_offline_says_so_whatever_the_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert errors.offline()
    for e in (E.LocalEntryNotFoundError("not cached"), RuntimeError("socket")):
        err = errors.hub_error(WHAT, REPO, e, DOWNLOAD)
        assert str(err).endswith("is not in the Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it")


@pytest.mark.usefixtures("online")
def test_anything_else_keeps_its_message():
    assert not errors.offline()
    err = errors.hub_error(WHAT, REPO, RuntimeError("connection reset"), DOWNLOAD)
    assert str(err) == "base model owner/name could not be loaded: connection reset"
    assert err.hint == f"check the connection, or run `{DOWNLOAD}` first"


@pytest.mark.usefixtures("online")
def test_an_unreachable_hub_fails_at_once_and_a_cached_file_needs_no_network(monkeypatch, tmp_path):
    import huggingface_hub
    import huggingface_hub.constants

    calls = []

    def download(repo_id, filename, local_files_only=False):
        calls.append(local_files_only)
        if filename == "cached.safetensors":
            return str(tmp_path / filename)
        if local_files_only:
            raise E.LocalEntryNotFoundError("not cached")
        raise AssertionError("no network download may be tried when the hub is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(errors, "reachable", lambda timeout=3.0: "huggingface.co: Name or service not known")
    assert errors.hub_download("owner/name", "cached.safetensors") == str(tmp_path / "cached.safetensors")
    assert calls == [True]
    with pytest.raises(errors.Unreachable) as info:
        errors.hub_download("owner/name", "missing.safetensors")
    err = errors.hub_error(WHAT, REPO, info.value, DOWNLOAD)
    assert str(err).endswith("the hub cannot be reached (huggingface.co: Name or service not known)")
    # The probe itself: a port nobody listens on is refused, with the reason.
    monkeypatch.undo()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    assert errors.reachable(timeout=1.0).startswith("127.0.0.1:")
