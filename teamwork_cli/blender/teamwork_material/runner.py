"""The `teamwork` command run from Blender: its command lines, a job that runs it in a subprocess, and what its
stderr says (progress, `Error:` / `Hint:` lines).

No bpy here, and nothing of the teamwork package: Blender's own Python has neither torch nor teamwork, so the
add-on runs the user's installed `teamwork` command and reads its files. This module runs in any Python 3.10+.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
FITS = ("levels", "diffuse", "none")
# rich (the CLI's progress bar) draws only on a terminal; TTY_COMPATIBLE=1 makes it draw on our pipe too, and its
# "done/total" columns are what `StderrParser` reads. NO_COLOR leaves out colour codes; COLUMNS fixes the width.
_ENV = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]")
_TAGGED = re.compile(r"^(?:\[process \d+\]\s*)?(Error|Hint|Warning|Note):\s*(.*)$")
# "3/16" (rich's MofNCompleteColumn) or "3 of 16"; not part of a longer number, a path or a time (0:00:03).
_FRACTION = re.compile(r"(?<![\w./:])(\d+)\s*(?:/|\bof\b)\s*(\d+)(?![\w./:])")
_STEM_CHANNEL = re.compile(r"^(?P<stem>.+)_(?P<channel>[a-z]+)$")


class RunnerError(Exception):
    """The command cannot start (not found, bad input); the message says what to do."""


def find_teamwork(configured: str = "") -> str:
    """The `teamwork` executable: the add-on preference's path if set, else the one on PATH."""
    if configured:
        path = Path(os.path.expanduser(configured))
        if path.is_dir():
            path = path / ("teamwork.exe" if sys.platform == "win32" else "teamwork")
        if not path.is_file() or not os.access(path, os.X_OK):
            raise RunnerError(f"{path}: not an executable file; set the teamwork command in the add-on's preferences")
        return str(path)
    found = shutil.which("teamwork")
    if found is None:
        raise RunnerError(
            "the teamwork command is not on PATH: install it (pip install teamwork-diffusion) or set its path "
            "in the add-on's preferences (Edit > Preferences > Add-ons > Teamwork materials)"
        )
    return found


def _common(tileable: bool, adapter: str, device: str, seed: int) -> list[str]:
    if device not in DEVICES:
        raise RunnerError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    args = ["--device", device, "--seed", str(int(seed))]
    if tileable:
        args.append("--tileable")
    if adapter.strip():
        args += ["--adapter", adapter.strip()]
    return args


def _resolution(resolution: int) -> list[str]:
    return ["--resolution", str(int(resolution))] if resolution > 0 else []  # 0: the photo's own size


def svbrdf_command(
    exe: str,
    photo: Path,
    out_dir: Path,
    *,
    tileable: bool = False,
    resolution: int = 0,
    adapter: str = "",
    device: str = "auto",
    seed: int = 0,
    fit: str = "levels",
) -> list[str]:
    """`teamwork svbrdf PHOTO -o DIR ...`: material maps from a flash photo."""
    if fit not in FITS:
        raise RunnerError(f"fit must be one of {', '.join(FITS)}; got {fit!r}")
    return [exe, "svbrdf", str(photo), "-o", str(out_dir), "--fit", fit, *_resolution(resolution)] + _common(
        tileable, adapter, device, seed
    )


def intrinsics_command(
    exe: str,
    photo: Path,
    out_dir: Path,
    *,
    tileable: bool = False,
    resolution: int = 0,
    adapter: str = "",
    device: str = "auto",
    seed: int = 0,
) -> list[str]:
    """`teamwork intrinsics PHOTO -o DIR ...`: albedo, shading, normals, depth, ... of a photo."""
    return [exe, "intrinsics", str(photo), "-o", str(out_dir), *_resolution(resolution)] + _common(
        tileable, adapter, device, seed
    )


def synthesize_command(
    exe: str,
    out_dir: Path,
    *,
    size: int = 256,
    steps: int = 16,
    tileable: bool = False,
    adapter: str = "",
    device: str = "auto",
    seed: int = 0,
) -> list[str]:
    """`teamwork synthesize -n 1 -o DIR ...`: one material from noise (material i of a batch is seed + i)."""
    args = [exe, "synthesize", "-n", "1", "-o", str(out_dir), "--size", str(int(size)), "--steps", str(int(steps))]
    return args + _common(tileable, adapter, device, seed)


def new_run_folder(base: Path, stem: str) -> Path:
    """A new empty folder `base/<stem>` (or `<stem>_2`, ...) for one run's maps: the CLI never overwrites, and
    a failed or cancelled run can remove its own folder whole."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", stem).strip("._") or "material"
    for k in range(1, 10_000):
        folder = base / (safe if k == 1 else f"{safe}_{k}")
        try:
            folder.mkdir()  # atomic: two runs never share a folder
            return folder
        except FileExistsError:
            continue
    raise RunnerError(f"{base}: no free folder name for {safe!r}")


def maps_by_channel(paths: list[Path]) -> dict[str, dict[str, Path]]:
    """Written files `<stem>_<channel>.<ext>` grouped as stem -> channel -> path (other files are ignored)."""
    found: dict[str, dict[str, Path]] = {}
    for p in paths:
        m = _STEM_CHANNEL.match(Path(p).stem)
        if m:
            found.setdefault(m["stem"], {})[m["channel"]] = Path(p)
    return found


@dataclass
class StderrParser:
    """Reads the CLI's stderr as it comes: tagged lines (`Error:`, `Hint:`, `Warning:`, `Note:`), the latest
    "done/total" of its progress bar, and the last untagged lines (for a crash without an `Error:` line)."""

    messages: list[tuple[str, str]] = field(default_factory=list)  # (tag, text) in order
    progress: tuple[int, int] | None = None
    status: str = ""
    tail: deque = field(default_factory=lambda: deque(maxlen=8))
    _buffer: str = ""

    def feed(self, text: str) -> None:
        # A progress bar redraws its line after "\r" without a newline: both end a line here.
        *lines, self._buffer = re.split(r"\r\n|\r|\n", self._buffer + text)
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self._buffer:
            self._line(self._buffer)
        self._buffer = ""

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw).strip()
        if not line:
            return
        tagged = _TAGGED.match(line)
        if tagged:
            self.messages.append((tagged[1], tagged[2].strip()))
            return
        fractions = [(int(a), int(b)) for a, b in _FRACTION.findall(line) if 0 <= int(a) <= int(b) and int(b) > 0]
        if fractions:
            self.progress = fractions[-1]
            # the bar's description (the file name) without its bar characters
            self.status = re.sub(r"[^\w .,:/()+%-]+", " ", line).split("  ")[0].strip()[:80]
            return
        self.tail.append(line)

    def errors(self) -> list[str]:
        """One text per `Error:` line, its `Hint:` lines appended; hints with no error before them join the last."""
        out: list[str] = []
        for tag, text in self.messages:
            if tag == "Error":
                out.append(text)
            elif tag == "Hint":
                if out:
                    out[-1] += f" (hint: {text})"
                else:
                    out.append(f"hint: {text}")
        return out

    def fraction(self) -> float | None:
        return None if self.progress is None else self.progress[0] / self.progress[1]


class Job:
    """`argv` in a subprocess whose stdout (the written files) and stderr are read by threads, so polling from
    Blender's UI never blocks. `cancel()` ends it with SIGTERM, which the CLI takes like Ctrl-C (it removes its
    temporary files and exits 143), and kills it if it has not ended within `grace` seconds."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.parser = StderrParser()
        self.written: list[Path] = []
        self.cancelled = False
        self._out = ""
        self._queue: queue.Queue[tuple[str, str | None]] = queue.Queue()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**os.environ, **_ENV, **(env or {})},
            )
        except OSError as e:
            raise RunnerError(f"cannot run {self.argv[0]}: {e.strerror or e}") from e
        self._open = 2
        for name, pipe in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, pipe), daemon=True).start()

    def _read(self, name: str, pipe) -> None:  # noqa: ANN001 (a binary pipe)
        while chunk := os.read(pipe.fileno(), 65536):
            self._queue.put((name, chunk.decode("utf-8", "replace")))
        pipe.close()
        self._queue.put((name, None))

    def poll(self) -> int | None:
        """Take in what the command printed; its exit code once it has ended and both pipes are read, else None."""
        while True:
            try:
                name, text = self._queue.get_nowait()
            except queue.Empty:
                break
            if text is None:
                self._open -= 1
            elif name == "err":
                self.parser.feed(text)
            else:
                *lines, self._out = (self._out + text).split("\n")
                self.written += [Path(s.strip()) for s in lines if s.strip()]
        if self._open > 0 or self.proc.poll() is None:
            return None
        if self._out.strip():
            self.written.append(Path(self._out.strip()))
            self._out = ""
        self.parser.close()
        return self.proc.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until the command ends (or raise subprocess.TimeoutExpired); its exit code."""
        self.proc.wait(timeout)
        while (code := self.poll()) is None:
            time.sleep(0.01)  # the reader threads' last chunks
        return code

    def cancel(self, grace: float = 10.0) -> None:
        self.cancelled = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.wait()

    def failure(self, code: int) -> list[str]:
        """What to report for a failed run: its Error/Hint lines, or its exit code and last lines."""
        if self.cancelled:
            return ["cancelled"]
        found = self.parser.errors()
        if found:
            return found
        last = " | ".join(self.parser.tail) or "no message"
        return [f"teamwork exited with code {code}: {last}"]


def discard(folder: Path) -> None:
    """Remove a run's folder (made by `new_run_folder` for that run alone) after a failure or a cancel."""
    shutil.rmtree(folder, ignore_errors=True)
