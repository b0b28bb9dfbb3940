"""What every task command shares besides its options (`options.py`): inputs, progress, and the batch loop
(`run_batch` one file at a time, `run_batches` several images per forward), which also splits the files over
the processes of `accelerate launch` (teamwork_cli.core.distributed). Writes go through materials/outputs.py.

Progress: a batch shows one overall line (n of N inputs, elapsed, time left) and, below it, the current input's
own line (its steps, and the stage: the network, the photo fit, ...). stdout holds the written paths, one per
line, or with --json one JSON record per input: {"input": ..., "files": [...]} or {"input": ..., "error": ...}."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from teamwork_cli.core import distributed
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import ImageError, expand_inputs

if TYPE_CHECKING:  # torch and the image readers load when a command reads its first file, not at start-up
    import torch

stderr = Console(stderr=True)

T = TypeVar("T")
D = TypeVar("D")
R = TypeVar("R")
# Failures of one file that must not stop the batch (anything else is a bug and stops it).
FILE_ERRORS = (ImageError, TeamworkError, ValueError, OSError, RuntimeError, MemoryError)


class Inputs(list):
    """The files of the input patterns; `bad` patterns (missing, or matching no image) were reported already and
    count as failed inputs in the exit code."""

    bad: int = 0
    errors: list[tuple[str, str]] = []  # (pattern, message) of the bad ones, for --json records
    elsewhere: int = 0  # inputs refused and counted by the other processes (accelerate launch): in the total only


INPUTS_HINT = "give image files, folders of images or quoted globs like 'photos/*.jpg'"


def inputs_or_fail(patterns: list[str]) -> Inputs:
    """Expand every pattern; a bad one is reported on stderr and the others still run (as a bad file would),
    unless none gives a file. Two inputs with one stem would write the same outputs: a usage error, before any
    work (--overwrite would otherwise let the second silently replace the first's files)."""
    files, errors, seen = Inputs(), [], set()
    failed: list[tuple[str, str]] = []
    for pattern in patterns:
        try:
            for f in expand_inputs([pattern]):
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    files.append(f)
        except ImageError as e:
            errors.append(str(e))
            failed.append((pattern, str(e)))
    if not files:
        raise TeamworkError("; ".join(errors), INPUTS_HINT)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise typer.BadParameter(
                f"{stems[f.stem]} and {f} would write the same outputs (<stem>_<channel>): "
                "rename one, or run them with different -o folders",
                param_hint="INPUTS",
            )
        stems[f.stem] = f
    if distributed.current().is_main:  # counted once, not once per process
        for e in errors:
            print(f"Error: {e}", file=sys.stderr)
        files.bad, files.errors = len(errors), failed
    return files


def read_channel(path: Path, channel: str) -> torch.Tensor:
    """A file as [1, C, H, W] channel values."""
    import torch

    from teamwork_cli.materials.read import read_map

    return torch.from_numpy(read_map(path, channel)).permute(2, 0, 1).unsqueeze(0).contiguous()


_active: list[Progress] = []  # the batch's display, while a batch runs: per-input bars join it


def _progress(enabled: bool) -> Progress:
    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    # Under accelerate launch only the first process draws: several live bars on one terminal garble it.
    enabled = enabled and distributed.current().is_main
    # Not on a pipe or a log file either: there a transient bar leaves only blank lines.
    enabled = enabled and stderr.is_terminal
    return Progress(*cols, console=stderr, transient=True, disable=not enabled)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A progress display for one input's work: inside a batch, the batch's own (the input's line is removed
    when it is done); else a new one."""
    if _active:
        bar = _active[-1]
        before = set(bar.task_ids)
        try:
            yield bar
        finally:
            for task in set(bar.task_ids) - before:
                bar.remove_task(task)
        return
    with _progress(enabled) as bar:
        yield bar


def stage_reporter(bar: Progress, job: TaskID, name: str) -> Callable[[str], None]:
    """A task's `stage` callback: shows "name: stage" on the input's line (e.g. "photo.jpg: photo fit")."""
    return lambda stage: bar.update(job, description=f"{name}: {stage}")


@contextmanager
def _batch(total: int) -> Iterator[Callable[[], None]]:
    """The overall line of a batch of `total` inputs; yields `advance`, called as each input finishes."""
    if total <= 1:  # one input: its own line says everything
        yield lambda: None
        return
    with _progress(True) as bar:
        overall = bar.add_task("inputs", total=total)
        _active.append(bar)
        try:
            yield lambda: bar.advance(overall)
        finally:
            _active.remove(bar)


def peak_memory_mb() -> float:
    """This process's peak resident memory so far, in MB (ru_maxrss: KB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def report_usage(item: object, seconds: float) -> None:
    """--verbose: an input's wall time and the process's peak memory so far, on stderr."""
    print(f"{item}: {seconds:.1f} s, peak memory {peak_memory_mb():.0f} MB", file=sys.stderr)


def emit(item: object, paths: Sequence[Path], as_json: bool) -> None:
    """What an input wrote, on stdout: its paths, one per line, or one JSON record."""
    if as_json:
        typer.echo(json.dumps({"input": str(item), "files": [str(p) for p in paths]}))
    else:
        for p in paths:
            typer.echo(str(p))


def batch_label(items: Sequence[object]) -> str:
    """Progress-bar text of a batch: the first file's name, and how many more."""
    first = Path(str(items[0])).name
    return first if len(items) == 1 else f"{first} +{len(items) - 1}"


class _Tally:
    """Counts failed items, reports each on stderr, and turns the count (of all processes) into an exit code."""

    def __init__(self, files: Sequence[object], as_json: bool = False) -> None:
        bad = getattr(files, "bad", 0)  # input patterns that gave no file (Inputs), reported already
        self.total, self.failed = len(files) + bad + getattr(files, "elsewhere", 0), bad
        self.shard = distributed.current()
        self.as_json = as_json
        for pattern, error in getattr(files, "errors", []):
            self._record(pattern, error)

    def _record(self, item: object, error: str) -> None:
        if self.as_json:
            typer.echo(json.dumps({"input": str(item), "error": error}))

    def fail(self, items: Sequence[object], e: BaseException, batched: bool = False) -> None:
        if os.environ.get("TEAMWORK_DEBUG") == "1":
            raise e
        self.failed += len(items)
        msg = str(e) or type(e).__name__
        if isinstance(e, MemoryError) or "can't allocate memory" in msg:
            msg = f"out of memory ({msg})"
        names = [str(i) for i in items]
        if not any(n in msg or Path(n).name in msg for n in names):
            msg = f"{', '.join(names)}: {msg}"
        prefix = f"[process {self.shard.index}] " if self.shard.count > 1 else ""
        print(f"{prefix}Error: {msg}", file=sys.stderr)
        for i in items:
            self._record(i, msg)
        if "out of memory" in msg.lower():
            hint = (
                "lower --batch-size, or try --offload / --attention-slicing"
                if batched
                else "try --window with a smaller size or --batch-size 1 (windows per pass)"
            )
            print(f"Hint: {hint} (or --resolution to process it smaller)", file=sys.stderr)

    def exit_code(self) -> int:
        failed = distributed.total(self.failed)  # every process gets here, once, after its own share
        if failed and self.shard.is_main:
            rest = "nothing was written" if failed == self.total else "the others were written"
            print(f"Hint: {failed} of {self.total} inputs failed; {rest} (see the Error lines above)", file=sys.stderr)
        return 1 if failed else 0


def refused_all(files: Sequence[object], as_json: bool = False) -> int:
    """The exit code (1) when planning refused every input (reported already), so nothing loads or runs."""
    return _Tally(files, as_json).exit_code()


def run_batch(
    files: Sequence[T], work: Callable[[T], list[Path]], *, as_json: bool = False, verbose: bool = False
) -> int:
    """Run `work` on each file; a failing file is reported and the others still run. Exit code 1 if any failed.
    as_json: one JSON record per file on stdout (`emit`) instead of its paths. verbose: `report_usage` per file.

    Under `accelerate launch`, this process runs only its share of `files` (see teamwork_cli.core.distributed).
    """
    tally = _Tally(files, as_json)
    mine = tally.shard.take(files)
    with _batch(len(mine)) as advance:
        for f in mine:
            t0 = time.perf_counter()
            try:
                emit(f, work(f), as_json)
            except FILE_ERRORS as e:
                tally.fail([f], e)
            if verbose:
                report_usage(f, time.perf_counter() - t0)
            advance()
    return tally.exit_code()


def run_batches(
    files: Sequence[T],
    read: Callable[[T], tuple[Hashable, D]],
    infer: Callable[[list[T], list[D]], list[R]],
    save: Callable[[T, D, R], list[Path]],
    *,
    batch_size: int = 1,
    as_json: bool = False,
    verbose: bool = False,
) -> int:
    """`run_batch` with up to `batch_size` files per forward pass.

    read(file) -> (key, data): load and check one file; files with equal keys (e.g. their image size) may share
    a batch. infer(files, datas) -> one result per file, from one forward. save(file, data, result) -> the
    paths written. A failure in read or save fails that file; in infer, the files of that batch.
    Files are processed as their batch fills, so stdout may list them out of input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tally = _Tally(files, as_json)
    pending: dict[Hashable, list[tuple[T, D]]] = {}
    mine = tally.shard.take(files)

    def flush(key: Hashable, advance: Callable[[], None]) -> None:
        group = pending.pop(key)
        items, datas = [f for f, _ in group], [d for _, d in group]
        t0 = time.perf_counter()
        try:
            results = infer(items, datas)
        except FILE_ERRORS as e:
            tally.fail(items, e, batched=len(items) > 1)
            for _ in items:
                advance()
            return
        for f, d, r in zip(items, datas, results, strict=True):
            try:
                emit(f, save(f, d, r), as_json)
            except FILE_ERRORS as e:
                tally.fail([f], e)
            if verbose:  # a batch's files share its pass: each reports the time since the batch began
                report_usage(f, time.perf_counter() - t0)
            advance()

    with _batch(len(mine)) as advance:
        for f in mine:
            try:
                key, data = read(f)
            except FILE_ERRORS as e:
                tally.fail([f], e)
                advance()
                continue
            pending.setdefault(key, []).append((f, data))
            if len(pending[key]) >= batch_size:
                flush(key, advance)
            elif sum(map(len, pending.values())) >= 2 * batch_size:
                # Many sizes, few of each: run the fullest group rather than hold every image in memory.
                flush(max(pending, key=lambda k: len(pending[k])), advance)
        for key in list(pending):
            flush(key, advance)
    return tally.exit_code()
