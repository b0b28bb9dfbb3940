"""TeamworkError: a message and an optional hint, which the CLI prints as `Error:` and `Hint:` lines."""

from __future__ import annotations

import pytest

from teamwork_cli.core.errors import TeamworkError


def test_message_and_hint():
    e = TeamworkError("the base model is missing", "reinstall teamwork")
    assert str(e) == "the base model is missing" and e.hint == "reinstall teamwork"
    assert e.args == ("the base model is missing",)
    assert TeamworkError("no hint").hint is None


def test_is_an_exception_callers_can_catch_generically():
    with pytest.raises(Exception, match="boom") as err:
        raise TeamworkError("boom", "do this")
    assert isinstance(err.value, TeamworkError) and not isinstance(err.value, ValueError)


def test_the_cli_prints_it_as_error_and_hint(monkeypatch, capsys):
    from teamwork_cli.cli import app, cmd_presets

    def failing() -> list[str]:
        raise TeamworkError("something is off", "try this instead")

    monkeypatch.setattr(cmd_presets, "available_presets", failing)
    assert app.main(["presets"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "Error: something is off\nHint: try this instead\n"
