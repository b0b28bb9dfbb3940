"""Errors the CLI turns into one `Error:` line and a `Hint:` line (exit code 1)."""

from __future__ import annotations


class TeamworkError(Exception):
    """A failure the user can act on; `hint` says how."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
