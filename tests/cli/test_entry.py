"""The entry point takes Ctrl-C and SIGTERM from its first instant: a signal during start-up's imports is one
Error line and exit 130 / 143, never a traceback."""

from __future__ import annotations

import importlib.abc
import os
import signal
import sys

import pytest

from teamwork_cli.cli import entry


class _SignalOnImport(importlib.abc.MetaPathFinder):
    """Sends `sig` to this process when the CLI's app module is imported (as a Ctrl-C in the middle of start-up),
    then lets the import go on."""

    def __init__(self, sig: int) -> None:
        self.sig = sig

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 (the finder protocol)
        if name == "teamwork_cli.cli.app":
            os.kill(os.getpid(), self.sig)
        return None


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_signal_during_start_up_is_one_error_line(sig, code, word, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "teamwork_cli.cli.app", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_SignalOnImport(sig), *sys.meta_path])
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert entry.main(["presets"]) == code
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"Error: {word}"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored


def test_without_a_signal_the_command_runs(capsys):
    assert entry.main(["presets"]) == 0
    assert "svbrdf" in capsys.readouterr().out


def test_the_command_exits_at_once_with_its_code_and_every_line(tmp_path):
    # `console` skips the interpreter's teardown once torch is loaded: stdout and stderr must still be complete.
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "teamwork_cli", *map(str, a)], capture_output=True, text=True, cwd=tmp_path
    )
    ok = run("render", root / "examples" / "material", "-o", tmp_path / "p.png")
    assert ok.returncode == 0 and ok.stdout.splitlines() == [str(tmp_path / "p.png")] and (tmp_path / "p.png").is_file()
    bad = run("eval", "svbrdf", "--pred", tmp_path / "nothing", "--gt", tmp_path / "nothing")
    assert bad.returncode == 1 and bad.stderr.startswith("Error:") and "Hint:" in bad.stderr and bad.stdout == ""
    usage = run("svbrdf")  # no torch loaded: the ordinary exit
    assert usage.returncode == 2 and usage.stderr.startswith("Error:")
