"""The entry point takes Ctrl-C and SIGTERM from its first instant: one Error line, never a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
@pytest.mark.parametrize("delay", [0.05, 1.5])
def test_a_signal_at_any_moment_of_start_up_is_one_error_line(tmp_path, sig, code, word, delay):
    args = [
        sys.executable,
        "-m",
        "teamwork_cli",
        "svbrdf",
        str(ROOT / "examples" / "wood_flash.png"),
        "-o",
        str(tmp_path / "maps"),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"Error: {word}"
    leftovers = [p.name for p in (tmp_path / "maps").iterdir()] if (tmp_path / "maps").exists() else []
    assert not [n for n in leftovers if n.startswith(".")]  # no temporary file left behind
