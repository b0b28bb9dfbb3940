"""The CLI skeleton: help, version, and the error conventions (Error:/Hint:, exit codes 1, 2, 130)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["svbrdf", "intrinsics", "inpaint", "shade", "synthesize", "finetune", "render", "info", "presets"]


def test_help_lists_every_command(capsys, run):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for c in COMMANDS:
        assert f"  {c}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command, capsys, run):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "Usage:" in out


def test_start_up_help_and_bad_usage_load_no_torch(tmp_path):
    # Help, --version and usage errors come from the options alone: torch and diffusers load only for the work.
    script = (
        "import sys\n"
        "from teamwork_cli.cli.app import main\n"
        f"commands = {COMMANDS!r}\n"
        "codes = [main(['--help']), main(['--version']), main(['eval', 'svbrdf', '--help'])]\n"
        "codes += [main([c, '--help']) for c in commands]\n"
        "codes += [main(['svbrdf', 'x.png', '-o', 'out', '--seed', '-1']), main(['intrinsics', '--dtype', 'fp64'])]\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'numpy') if m in sys.modules]\n"
        "print(codes, heavy, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"{[0, 0, 0] + [0] * len(COMMANDS) + [2, 2]} []"


def test_shell_completion_is_installable_and_completes_choices(tmp_path):
    exe = Path(sys.executable).with_name("teamwork")
    # Typer's own switch for tests: the shell is named, not detected from the parent process (none in CI).
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    r = subprocess.run([exe, "--show-completion", "bash"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "_TEAMWORK_COMPLETE=complete_bash" in r.stdout

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_TEAMWORK_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
        return subprocess.run([exe], env=env, capture_output=True, text=True).stdout.split()

    assert complete("teamwork sv") == ["svbrdf"]
    assert complete("teamwork svbrdf --format e") == ["exr", "exr32"]
    assert complete("teamwork intrinsics --sync ") == ["none", "average", "syncsde"]


def test_usage_errors_exit_2(capsys, run):
    code, _, err = run(["info"], capsys)
    assert code == 2 and err.startswith("Error:") and "Hint:" in err
    code, _, err = run(["nonsense"], capsys)
    assert code == 2 and err.startswith("Error:")
    code, _, err = run(["presets", "--bogus"], capsys)
    assert code == 2 and "--bogus" in err


def test_version(capsys, run):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("teamwork ")


def test_console_script_and_debug_traceback(tmp_path):
    """The real entry point: one Error line by default, a traceback with TEAMWORK_DEBUG=1."""
    args = [sys.executable, "-m", "teamwork_cli", "info", str(tmp_path / "missing.safetensors")]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "" and "Traceback" not in p.stderr
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "TEAMWORK_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_ctrl_c_is_one_error_line_and_exit_130(monkeypatch, capsys, run):
    from teamwork_cli.cli import cmd_presets

    def interrupted() -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd_presets, "available_presets", interrupted)
    code, out, err = run(["presets"], capsys)
    assert code == 130 and out == "" and err.strip() == "Error: interrupted"
