"""Batch inference over the processes of `accelerate launch` (or torchrun): process p of P takes the items
p, p + P, p + 2P, ... of the input list, on its own device, so every output is written once, by one process.

A plain run (no WORLD_SIZE > 1 in the environment) is one process and never starts a process group.
Processes do not stop at their first failed file: each finishes its share, then they add up their failure
counts and all exit with the same code.  (`accelerate launch` stops every process as soon as one exits with
an error, which would kill the others' work in progress.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from teamwork_cli.core.errors import TeamworkError

if TYPE_CHECKING:  # torch is imported where a device is needed: the CLI's start-up loads none
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place among `count` processes."""

    index: int
    count: int
    device: torch.device | None  # the process's own device; None when not launched (the --device choice holds)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def take(self, items: Sequence[T]) -> list[T]:
        return list(items[self.index :: self.count])


def launched() -> bool:
    """True under a multi-process launcher (accelerate launch, torchrun, mpirun set WORLD_SIZE or the like)."""
    return _world_size() > 1


def _world_size() -> int:
    for var in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def cpu_only() -> bool:
    # accelerate's PartialState joins a CPU process group (gloo) only when told it runs on CPUs: `--cpu` sets
    # ACCELERATE_USE_CPU; on a machine without an accelerator it is the only choice anyway.
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    import torch

    xpu = getattr(torch, "xpu", None)
    return not (torch.cuda.is_available() or (xpu is not None and xpu.is_available()))


@cache
def current() -> Shard:
    """This process's shard (cached: the process group is joined once)."""
    if not launched():
        return Shard(0, 1, None)
    from accelerate import PartialState

    state = PartialState(cpu=cpu_only())
    if state.num_processes != _world_size():
        # Carrying on would make every process do every file.
        raise TeamworkError(
            f"launched as {_world_size()} processes, but accelerate joined {state.num_processes}",
            "run `accelerate config` (or pass --multi_gpu / --num_processes to accelerate launch)",
        )
    import torch

    device = state.device
    return Shard(state.process_index, state.num_processes, torch.device("cpu") if device.type == "cpu" else device)


def total(count: int) -> int:
    """The sum of `count` over all processes; every process must call it (it waits for the others)."""
    shard = current()
    if shard.count == 1:
        return count
    from accelerate.utils import gather_object

    return int(sum(gather_object([count])))
