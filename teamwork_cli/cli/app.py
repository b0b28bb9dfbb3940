"""The `teamwork` command: a thin typer layer over the library; one module per command."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings

import typer

from teamwork_cli.cli import (
    cmd_blender_addon,
    cmd_eval,
    cmd_finetune,
    cmd_info,
    cmd_inpaint,
    cmd_intrinsics,
    cmd_presets,
    cmd_render,
    cmd_shade,
    cmd_svbrdf,
    cmd_synthesize,
)
from teamwork_cli.core import memory
from teamwork_cli.core.errors import TeamworkError

app = typer.Typer(
    name="teamwork",
    help="Teamwork: many image channels from one diffusion model (Sartor & Peers, SIGGRAPH Asia 2025).\n\n"
    "Material maps from a flash photo, intrinsic decomposition, inpainting, neural shading and material "
    "synthesis, on the embedded CPU model or on SD3 / SDXL / Flux with the published adapters.",
    epilog="Examples:\n\n\b\n"
    "  teamwork svbrdf photo.jpg -o maps/\n"
    "  teamwork intrinsics room.jpg -o layers/ --request albedo,normals\n"
    "  teamwork inpaint scene.png --mask mask.png -o filled/\n"
    "  teamwork shade --albedo a.png --normals n.png -o shaded.png\n"
    "  teamwork synthesize -n 8 -o materials/ --seed 1\n"
    "  teamwork finetune --channels image.in,foo.out --data DIR -o foo.safetensors\n\n"
    "Run 'teamwork COMMAND --help' for a command's options and examples.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"teamwork {version('teamwork-diffusion')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("teamwork (not installed: no version)")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


app.command("svbrdf")(cmd_svbrdf.svbrdf)
app.command("intrinsics")(cmd_intrinsics.intrinsics)
app.command("inpaint")(cmd_inpaint.inpaint)
app.command("shade")(cmd_shade.shade)
app.command("synthesize")(cmd_synthesize.synthesize)
app.command("finetune")(cmd_finetune.finetune)
app.command("info")(cmd_info.info)
app.command("presets")(cmd_presets.presets)
app.command("render")(cmd_render.render_cmd)
app.add_typer(cmd_eval.app, name="eval")
app.command("blender-addon")(cmd_blender_addon.blender_addon)

_HINTS = {
    FileNotFoundError: "check the path; folders and globs are accepted where the help says so",
    FileExistsError: "pass --overwrite to replace existing files",
}


def _fail(message: str, hint: str | None, code: int) -> int:
    print(f"Error: {message}", file=sys.stderr)
    if hint:
        print(f"Hint: {hint}", file=sys.stderr)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Our own warnings as one `Warning:` line (no file:line), as errors are; other libraries' only with
    --verbose or TEAMWORK_DEBUG=1 (they are meant for developers: deprecations, internal dtype notes)."""
    if f"{os.sep}teamwork_cli{os.sep}" in str(filename):
        print(f"Warning: {message}", file=sys.stderr)
    elif _library_noise:
        _default_show_warning(message, category, filename, lineno, file, line)


_default_show_warning = warnings.showwarning
_library_noise = False


def _quiet_libraries(argv: list[str]) -> None:
    """Silence other libraries' warnings and log lines unless --verbose/-v or TEAMWORK_DEBUG=1 asks for them.
    Set before torch, diffusers or transformers load (they read these variables when imported)."""
    global _library_noise
    _library_noise = os.environ.get("TEAMWORK_DEBUG") == "1" or any(a in ("-v", "--verbose") for a in argv)
    if not _library_noise:
        for name in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
            os.environ.setdefault(name, "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (timeout, kill, job schedulers) taken the way Ctrl-C is, so staged temp files are removed too."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _interrupted() -> int:
    return _fail("terminated", None, 143) if _terminated else _fail("interrupted", None, 130)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad usage, 130 Ctrl-C, 143 SIGTERM)."""
    global _terminated
    _terminated = False
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outside the command (e.g. while typer parses): nothing staged yet
        return _interrupted()
    finally:
        memory.set_max_pixels(None)  # --max-pixels is this command's, not the process's (main may run again)
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    debug = os.environ.get("TEAMWORK_DEBUG") == "1"
    _quiet_libraries(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    try:
        result = app(args=argv, prog_name="teamwork", standalone_mode=False)
        if result == 130:  # Typer catches Ctrl-C itself and returns 130 (temp files are gone already)
            return _interrupted()
        return int(result) if isinstance(result, int) else 0
    except TeamworkError as e:
        if debug:
            raise
        return _fail(str(e), e.hint, 1)
    except Exception as e:
        # Typer may vendor click, so click's exceptions are recognised by class name.
        kind = {c.__name__ for c in type(e).__mro__}
        if "Exit" in kind:
            code = int(getattr(e, "exit_code", 0))
            # Typer turns Ctrl-C into Exit(130); say so, as for any other failure (temp files are gone already).
            return _interrupted() if code == 130 else code
        if "NoArgsIsHelpError" in kind:
            e.show()
            return 0
        if "UsageError" in kind:
            if debug:
                raise
            ctx = getattr(e, "ctx", None)
            cmd = ctx.command_path if ctx else "teamwork"
            return _fail(e.format_message(), f"see '{cmd} --help'", 2)
        if "Abort" in kind or isinstance(e, KeyboardInterrupt):
            return _interrupted()
        if debug:
            raise
        if not isinstance(e, (ValueError, OSError, RuntimeError)):
            return _fail(
                f"{type(e).__name__}: {e}",
                "this looks like a bug: rerun with TEAMWORK_DEBUG=1 and report the traceback",
                1,
            )
        args = sys.argv[1:] if argv is None else argv
        cmd = " ".join(["teamwork", *[a for a in args if not a.startswith("-")][:1]])  # the subcommand
        hint = next(
            (h for t, h in _HINTS.items() if isinstance(e, t)),
            f"'{cmd} --help' says what each option takes; TEAMWORK_DEBUG=1 shows where it failed",
        )
        return _fail(str(e), hint, 1)
