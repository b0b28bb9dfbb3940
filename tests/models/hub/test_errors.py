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
    assert f"`{DOWNLOAD}`" in err.hint and "unset HF_HUB_OFFLINE" in err.hint


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
