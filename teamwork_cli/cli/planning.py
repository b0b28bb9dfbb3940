"""Planning a command's work from its inputs' headers, before the model loads (teamwork_cli.core.memory): an
input that is over the pixel budget as processed, or whose estimate exceeds the memory available, is that input's
`Error:` line and the batch goes on without it; sizes the user asks for (--size) are checked the same way."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from teamwork_cli.cli import common as C
from teamwork_cli.core import distributed
from teamwork_cli.core.errors import TeamworkError

if TYPE_CHECKING:
    from teamwork_cli.core.memory import Available, MemoryEstimate
    from teamwork_cli.pipelines.tiling import WindowOptions

MEMORY_HINT = (
    "process it smaller (--resolution N), in smaller windows (--window N, --batch-size 1), or on a machine "
    "with more memory"
)


def use_max_pixels(value: int | None) -> None:
    """--max-pixels: the pixel budget of every image read or made by this command (None: the default)."""
    from teamwork_cli.core import memory

    memory.set_max_pixels(value)


def processed_size(width: int, height: int, resolution: int | None) -> tuple[int, int]:
    """The size an image is worked at: as it is, or with its longer side at --resolution."""
    if resolution is None:
        return width, height
    scale = resolution / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def pass_pixels(width: int, height: int, windows: WindowOptions | None) -> int | None:
    """Pixels of one forward pass: the canvas (None) in one pass, else a batch of windows (the adapter's window is
    not known before it loads: a batch makes about 512 x 512 pixels unless --window asks for more)."""
    if windows is None:
        return None
    from teamwork_cli.pipelines.tiling import WINDOW_BATCH_PIXELS

    window = windows.window or 512
    if not windows.windowed(height, width, window):
        return None
    return max(WINDOW_BATCH_PIXELS, windows.windows_per_pass(window) * window * window)


def estimate(task: str, width: int, height: int, windows: WindowOptions | None = None) -> MemoryEstimate:
    """The planned peak of `task` on a width x height canvas, processed the way the command would."""
    from teamwork_cli.core import memory

    return memory.estimate(task, width, height, pass_pixels(width, height, windows))


def check_size(task: str, width: int, height: int, windows: WindowOptions | None, what: str) -> None:
    """A size to make (`what` names its option, e.g. "--size"): over the pixel budget is bad usage (exit 2), over
    the memory available a failure (exit 1); both before anything is allocated."""
    from teamwork_cli.core import memory

    budget = memory.max_pixels()
    if width * height > budget:
        raise typer.BadParameter(
            f"{width}x{height} is {width * height / 1e6:.0f} MP, over the pixel budget of {budget / 1e6:g} MP "
            "(--max-pixels or TEAMWORK_MAX_PIXELS raise it)",
            param_hint=what,
        )
    memory.check(estimate(task, width, height, windows), hint=MEMORY_HINT)


def check_input(
    task: str,
    item: object,
    size: tuple[int, int],
    *,
    resolution: int | None = None,
    windows: WindowOptions | None = None,
    room: Available | None = None,
) -> None:
    """Raise ImageError or MemoryPlanError if `item`, of (width, height) `size`, cannot be done: over the pixel
    budget as processed (at --resolution), or needing more memory than `room` (default: what is available)."""
    from teamwork_cli.core import memory
    from teamwork_cli.materials.files import ImageError

    width, height = processed_size(*size, resolution)
    budget = memory.max_pixels()
    if width * height > budget:
        raise ImageError(
            f"{item}: {width}x{height} as processed at --resolution {resolution} is "
            f"{width * height / 1e6:.0f} MP, over the pixel budget of {budget / 1e6:g} MP (--max-pixels)"
        )
    plan = estimate(task, width, height, windows)
    try:
        memory.check(plan, room, MEMORY_HINT)
    except memory.MemoryPlanError as e:
        raise memory.MemoryPlanError(f"{item}: {e}", e.hint) from None


def plan_inputs(
    files: C.Inputs,
    task: str,
    *,
    resolution: int | None = None,
    windows: WindowOptions | None = None,
    size_of: Callable[[Path], tuple[int, int]] | None = None,
) -> C.Inputs:
    """The inputs whose work fits (`check_input`): each one's size from its header (`size_of`, default the file's
    own; e.g. a material's first map), before anything is decoded. The others are reported now, as their Error
    lines, and counted as failed inputs."""
    from teamwork_cli.core import memory
    from teamwork_cli.materials.files import ImageError
    from teamwork_cli.materials.read import image_size

    size_of = size_of or image_size
    room = memory.available()
    kept = C.Inputs()
    kept.bad, kept.errors, kept.elsewhere = files.bad, list(files.errors), files.elsewhere
    shard = distributed.current()
    prefix = f"[process {shard.index}] " if shard.count > 1 else ""
    for i, f in enumerate(files):
        try:
            check_input(task, f, size_of(f), resolution=resolution, windows=windows, room=room)
        except (ImageError, TeamworkError) as e:
            # Reported and counted once, by the process whose share the input would have been (the exit code sums
            # the processes' counts), as a failure while running it would be.
            if i % shard.count == shard.index:
                msg = str(e) if str(f) in str(e) else f"{f}: {e}"
                print(f"{prefix}Error: {msg}", file=sys.stderr)
                if isinstance(e, TeamworkError) and e.hint:
                    print(f"{prefix}Hint: {e.hint}", file=sys.stderr)
                kept.bad += 1
                kept.errors.append((str(f), msg))
            else:
                kept.elsewhere += 1
            continue
        kept.append(f)
    return kept
