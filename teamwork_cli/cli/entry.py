"""The `teamwork` entry point: signals are handled from the first instant, before the slow imports (torch,
diffusers) that `cli.app` brings, so Ctrl-C or SIGTERM during start-up is one Error line, not a traceback."""

from __future__ import annotations

import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    """Import the CLI, then run it; returns the exit code (130 for Ctrl-C, 143 for SIGTERM during start-up)."""
    caught: list[int] = []

    def remember(signum: int, frame: object) -> None:
        # Recorded, not raised: an exception thrown into torch's C++ module initialisation aborts the process.
        caught.append(signum)

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        from teamwork_cli.cli.app import main as run
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:  # nothing has started: no file to clean up
        terminated = caught[0] == signal.SIGTERM
        print("Error: terminated" if terminated else "Error: interrupted", file=sys.stderr)
        return 143 if terminated else 130
    return run(argv)
