"""Memory planning: what a command will need for an image of a given size, against what the machine has, decided
before any pixel is decoded or any model loads (so a job that cannot fit is refused in a second, not after minutes
and a `can't allocate memory`).

The estimate is linear: peak = base + canvas bytes x pixels + pass bytes x pixels per pass. `base` is the process
with torch and the embedded model; canvas bytes are what the command keeps per output pixel (the photo, every map,
the fit's and the writers' buffers); pass bytes are the network's activations per pixel of one forward, which
windows bound (a pass covers at most a window batch, not the photo). The constants are fitted to measured peaks of
each command on the embedded model with defaults (`benchmarks/memory_plan.py` prints the fit beside the
measurements); a hub backbone needs more, which the estimate does not know (its weights are the user's choice).
Full frames (up to 1 MP) pay attention's quadratic cost, which the linear pass term covers from its fit at 1 MP.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from teamwork_cli.core.errors import TeamworkError

MB = 1024 * 1024

# (base, canvas bytes per pixel, pass bytes per pixel): the fit of benchmarks/memory_plan.py to measured peaks
# (512, 1024 and 2048 px), rounded up about 5%, so the plan is a close estimate, not a worst case: it refuses what
# cannot fit, and a job near the limit can still run out (which is reported as out of memory, as without a plan).
COSTS: dict[str, tuple[int, int, int]] = {
    "svbrdf": (440 * MB, 120, 2100),
    "intrinsics": (450 * MB, 280, 3200),
    "shade": (570 * MB, 275, 2600),
    "inpaint": (480 * MB, 150, 1000),
    "synthesize": (560 * MB, 150, 1800),
    "render": (310 * MB, 250, 0),
}


MAX_PIXELS = 200_000_000  # a 200-megapixel image: far above any photo, far below what a header can claim
_budget: list[int] = []  # set_max_pixels's value, when one is set


def set_max_pixels(value: int | None) -> None:
    """Make `value` the pixel budget of every image read or made from now on (the CLI's --max-pixels); None: the
    default (`max_pixels`)."""
    if value is not None and value < 1:
        raise ValueError(f"max_pixels must be a positive number of pixels; got {value}")
    _budget[:] = [] if value is None else [value]


def max_pixels() -> int:
    """The pixel budget of one image: set_max_pixels's value, else TEAMWORK_MAX_PIXELS if set (a positive
    integer), else MAX_PIXELS. Checked from headers before decoding (materials/read.py) and on sizes asked for."""
    if _budget:
        return _budget[0]
    text = os.environ.get("TEAMWORK_MAX_PIXELS")
    if text is None:
        return MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"TEAMWORK_MAX_PIXELS={text!r} must be a positive integer (pixels)")
    return int(text)


class MemoryPlanError(TeamworkError):
    """The work cannot fit in the memory available; raised before it starts."""


@dataclass(frozen=True)
class MemoryEstimate:
    """The planned peak of one command on one image: `total` bytes, from the parts named."""

    task: str
    width: int
    height: int
    base: int
    canvas: int
    network: int

    @property
    def total(self) -> int:
        return self.base + self.canvas + self.network

    def describe(self) -> str:
        return f"about {gib(self.total)} for {self.task} at {self.width}x{self.height}"


def gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def estimate(task: str, width: int, height: int, pass_pixels: int | None = None) -> MemoryEstimate:
    """The planned peak of `task` on a width x height canvas. pass_pixels: the pixels of one forward (a batch of
    windows); None: the whole canvas in one pass."""
    if task not in COSTS:
        raise ValueError(f"task must be one of {', '.join(COSTS)}; got {task!r}")
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive; got {width}x{height}")
    base, per_canvas, per_pass = COSTS[task]
    pixels = width * height
    passed = pixels if pass_pixels is None else min(pixels, pass_pixels)
    return MemoryEstimate(task, width, height, base, per_canvas * pixels, per_pass * passed)


@dataclass(frozen=True)
class Available:
    """Memory this process may still take: `bytes`, and which limit sets it (`limit`, words for a message)."""

    bytes: int
    limit: str


def _meminfo(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _own_status(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _cgroup_headroom() -> int | None:
    """cgroup v2: memory.max less memory.current of this process's group (containers, systemd, job schedulers)."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        root = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError, IndexError):
        return None


def available() -> Available | None:
    """What this process can still allocate: the least of the machine's available memory (MemAvailable), the
    address-space limit (RLIMIT_AS, `ulimit -v`) less what is mapped, and the cgroup's limit less its use, each
    with what is already resident added back (the estimate counts the whole process). None where none is known."""
    rss = _own_status("VmRSS")
    found: list[Available] = []
    free = _meminfo("MemAvailable")
    if free is not None:
        found.append(Available(free + rss, "the machine's available memory"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        room = soft - _own_status("VmSize")
        found.append(Available(int(room) + rss, f"the address-space limit (ulimit -v) of {gib(soft)}"))
    group = _cgroup_headroom()
    if group is not None:
        found.append(Available(group + rss, "the memory limit of this process's cgroup"))
    return min(found, key=lambda a: a.bytes) if found else None


def check(plan: MemoryEstimate, room: Available | None = None, hint: str | None = None) -> None:
    """Raise MemoryPlanError if `plan` needs more than is available (`available()` unless given)."""
    room = available() if room is None else room
    if room is None or plan.total <= room.bytes:
        return
    raise MemoryPlanError(
        f"{plan.describe()} would need more memory than is available: {gib(room.bytes)}, set by {room.limit}",
        hint or "process it smaller (--resolution), or on a machine with more memory",
    )
