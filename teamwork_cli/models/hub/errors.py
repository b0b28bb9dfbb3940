"""Turn Hugging Face hub failures into one actionable `TeamworkError` (message + hint, no traceback)."""

from __future__ import annotations

from teamwork_cli.core.errors import TeamworkError


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


class Unreachable(ConnectionError):
    """The hub's host did not answer a quick connection probe."""


def reachable(timeout: float = 3.0) -> str | None:
    """None if the hub's host accepts a TCP connection within `timeout` s, else why not. Without this probe a
    machine with no network spends about 25 s in huggingface_hub's retries (printing a line for each) before
    the same failure."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
    except OSError as e:
        return f"{url.hostname}: {e.strerror or e}"
    return None


def hub_download(repo_id: str, filename: str) -> str:
    """hf_hub_download, the cache first: a cached file needs no network; a missing one is fetched only if the hub
    answers at all (else `Unreachable` at once)."""
    from huggingface_hub import errors as E
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, filename, local_files_only=True)
    except E.LocalEntryNotFoundError:
        if offline():
            raise
    why = reachable()
    if why is not None:
        raise Unreachable(why)
    return hf_hub_download(repo_id, filename)


def hub_error(what: str, repo_id: str, e: BaseException, download: str) -> TeamworkError:
    """`what`: e.g. "base model stabilityai/..."; `download`: the command that fetches it."""
    from huggingface_hub import errors as E

    if isinstance(e, E.GatedRepoError):
        return TeamworkError(
            f"{what} is gated on the Hugging Face hub and this machine has no access to it",
            f"accept its licence at https://huggingface.co/{repo_id}, then log in with "
            f"`hf auth login` (or set HF_TOKEN)",
        )
    if isinstance(e, E.RepositoryNotFoundError):
        return TeamworkError(
            f"{what}: no repository {repo_id!r} on the Hugging Face hub",
            "check the spelling (owner/name), or pass a local folder",
        )
    if isinstance(e, E.EntryNotFoundError) and not isinstance(e, E.LocalEntryNotFoundError):
        return TeamworkError(f"{what}: the file does not exist in {repo_id}", "check the file name")
    if isinstance(e, E.LocalEntryNotFoundError | Unreachable) or offline():
        if offline():
            reason, unset = (
                "HF_HUB_OFFLINE=1 forbids downloading it",
                ", or unset HF_HUB_OFFLINE to let teamwork download it",
            )
        elif isinstance(e, Unreachable):
            reason, unset = f"the hub cannot be reached ({e})", ""
        else:
            reason, unset = "it could not be downloaded (no connection to the hub?)", ""
        return TeamworkError(
            f"{what} is not in the Hugging Face cache and {reason}",
            f"download it once with `{download}` (where the hub is reachable; the cache is "
            f"HF_HOME or ~/.cache/huggingface){unset}, or pass a local file or folder",
        )
    return TeamworkError(f"{what} could not be loaded: {e}", f"check the connection, or run `{download}` first")
