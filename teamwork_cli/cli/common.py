"""What every task command shares besides its options (`options.py`): inputs, progress, and the batch loop
(`run_batch` one file at a time, `run_batches` several images per forward), which also splits the files over
the processes of `accelerate launch` (teamwork_cli.core.distributed). Writes go through materials/outputs.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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


INPUTS_HINT = "give image files, folders of images or quoted globs like 'photos/*.jpg'"


def inputs_or_fail(patterns: list[str]) -> Inputs:
    """Expand every pattern; a bad one is reported on stderr and the others still run (as a bad file would),
    unless none gives a file. Two inputs with one stem would write the same outputs: a usage error, before any
    work (--overwrite would otherwise let the second silently replace the first's files)."""
    files, errors, seen = Inputs(), [], set()
    for pattern in patterns:
        try:
            for f in expand_inputs([pattern]):
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    files.append(f)
        except ImageError as e:
            errors.append(str(e))
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
        files.bad = len(errors)
    return files


def read_channel(path: Path, channel: str) -> torch.Tensor:
    """A file as [1, C, H, W] channel values."""
    import torch

    from teamwork_cli.materials.read import read_map

    return torch.from_numpy(read_map(path, channel)).permute(2, 0, 1).unsqueeze(0).contiguous()


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Under accelerate launch only the first process draws: several live bars on one terminal garble it.
    enabled = enabled and distributed.current().is_main
    # Not on a pipe or a log file either: there a transient bar leaves only blank lines.
    enabled = enabled and stderr.is_terminal
    with Progress(*cols, console=stderr, transient=True, disable=not enabled) as bar:
        yield bar


def batch_label(items: Sequence[object]) -> str:
    """Progress-bar text of a batch: the first file's name, and how many more."""
    first = Path(str(items[0])).name
    return first if len(items) == 1 else f"{first} +{len(items) - 1}"


class _Tally:
    """Counts failed items, reports each on stderr, and turns the count (of all processes) into an exit code."""

    def __init__(self, files: Sequence[object]) -> None:
        bad = getattr(files, "bad", 0)  # input patterns that gave no file (Inputs), reported already
        self.total, self.failed = len(files) + bad, bad
        self.shard = distributed.current()

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
        if "out of memory" in msg.lower():
            hint = "lower --batch-size, or try --offload / --attention-slicing" if batched else "try --window 512"
            print(f"Hint: {hint} (or --resolution to process it smaller)", file=sys.stderr)

    def exit_code(self) -> int:
        failed = distributed.total(self.failed)  # every process gets here, once, after its own share
        if failed and self.shard.is_main:
            rest = "nothing was written" if failed == self.total else "the others were written"
            print(f"Hint: {failed} of {self.total} inputs failed; {rest} (see the Error lines above)", file=sys.stderr)
        return 1 if failed else 0


def run_batch(files: Sequence[T], work: Callable[[T], list[Path]]) -> int:
    """Run `work` on each file; a failing file is reported and the others still run. Exit code 1 if any failed.

    Under `accelerate launch`, this process runs only its share of `files` (see teamwork_cli.core.distributed).
    """
    tally = _Tally(files)
    for f in tally.shard.take(files):
        try:
            for p in work(f):
                typer.echo(str(p))
        except FILE_ERRORS as e:
            tally.fail([f], e)
    return tally.exit_code()


def run_batches(
    files: Sequence[T],
    read: Callable[[T], tuple[Hashable, D]],
    infer: Callable[[list[T], list[D]], list[R]],
    save: Callable[[T, D, R], list[Path]],
    *,
    batch_size: int = 1,
) -> int:
    """`run_batch` with up to `batch_size` files per forward pass.

    read(file) -> (key, data): load and check one file; files with equal keys (e.g. their image size) may share
    a batch. infer(files, datas) -> one result per file, from one forward. save(file, data, result) -> the
    paths written. A failure in read or save fails that file; in infer, the files of that batch.
    Files are processed as their batch fills, so stdout may list them out of input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tally = _Tally(files)
    pending: dict[Hashable, list[tuple[T, D]]] = {}

    def flush(key: Hashable) -> None:
        group = pending.pop(key)
        items, datas = [f for f, _ in group], [d for _, d in group]
        try:
            results = infer(items, datas)
        except FILE_ERRORS as e:
            tally.fail(items, e, batched=len(items) > 1)
            return
        for f, d, r in zip(items, datas, results, strict=True):
            try:
                for p in save(f, d, r):
                    typer.echo(str(p))
            except FILE_ERRORS as e:
                tally.fail([f], e)

    for f in tally.shard.take(files):
        try:
            key, data = read(f)
        except FILE_ERRORS as e:
            tally.fail([f], e)
            continue
        pending.setdefault(key, []).append((f, data))
        if len(pending[key]) >= batch_size:
            flush(key)
        elif sum(map(len, pending.values())) >= 2 * batch_size:
            # Many sizes, few of each: run the fullest group rather than hold every image in memory.
            flush(max(pending, key=lambda k: len(pending[k])))
    for key in list(pending):
        flush(key)
    return tally.exit_code()
