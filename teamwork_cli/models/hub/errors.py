"""Turn Hugging Face hub failures into one actionable `TeamworkError` (message + hint, no traceback)."""

from __future__ import annotations

from teamwork_cli.core.errors import TeamworkError


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


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
    if isinstance(e, E.LocalEntryNotFoundError) or offline():
        reason = (
            "HF_HUB_OFFLINE=1 forbids downloading it"
            if offline()
            else "it could not be downloaded (no connection to the hub?)"
        )
        return TeamworkError(
            f"{what} is not in the Hugging Face cache and {reason}",
            f"download it once with `{download}` (where the hub is reachable; the cache is "
            "HF_HOME or ~/.cache/huggingface), or unset HF_HUB_OFFLINE to let teamwork "
            "download it, or pass a local folder",
        )
    return TeamworkError(f"{what} could not be loaded: {e}", f"check the connection, or run `{download}` first")
