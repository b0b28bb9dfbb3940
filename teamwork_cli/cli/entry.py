"""The `teamwork` entry point: signals are handled from the first instant, before the slow imports (torch,
diffusers) that `cli.app` brings, so Ctrl-C or SIGTERM during start-up is one Error line, not a traceback; and the
imports run with Python's cyclic collector paused (`cli.startup`)."""

from __future__ import annotations

import os
import signal
import sys
import threading

from teamwork_cli.cli import startup


def main(argv: list[str] | None = None) -> int:
    """Import the CLI, then run it; returns the exit code (130 for Ctrl-C, 143 for SIGTERM during start-up)."""
    caught: list[int] = []

    def remember(signum: int, frame: object) -> None:
        # Recorded, not raised: an exception thrown into torch's C++ module initialisation aborts the process.
        caught.append(signum)

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        with startup.collector_paused():
            from teamwork_cli.cli.app import main as run
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:  # nothing has started: no file to clean up
        terminated = caught[0] == signal.SIGTERM
        print("Error: terminated" if terminated else "Error: interrupted", file=sys.stderr)
        return 143 if terminated else 130
    with startup.paused_heavy_imports():  # torch is imported by the command, once its options are parsed
        return run(argv)


def console() -> None:
    """The `teamwork` command (and `python -m teamwork_cli`): `main`, then the process ends at once.

    Tearing down an interpreter that imported torch runs module and tensor finalisers for about 0.45 s on a 2-core
    CPU, a tenth of a 512 px svbrdf run; by then nothing is left to clean up (the commands remove their staged
    files themselves), so the streams are flushed and the process exits without it. Under a multi-process
    launcher the normal exit stays, for its process group's own teardown."""
    code = main()
    from teamwork_cli.core import distributed

    if "torch" not in sys.modules or distributed.launched():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it anyway
            pass
    os._exit(code)
