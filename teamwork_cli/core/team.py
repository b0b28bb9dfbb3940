"""The row layout of a team forward: which teammates each image has, as batch rows.

One denoiser forward processes a *team*: every image (group) has one batch row per active teammate. Rows are laid
out teammate-major (all rows of teammate 0, then teammate 1, ...) so each teammate's rows are one contiguous slice
and an adapter layer does one matmul per teammate on a view of its input (adapters/layer.py), never a gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(eq=False)
class TeamBatch:
    """Row layout of one batched forward (teammate-major; see the module docstring)."""

    num_teammates: int
    num_groups: int
    teammate_ids: Tensor  # [rows] long
    group_ids: Tensor  # [rows] long
    slices: list[tuple[int, int, int]]  # (teammate, start, stop), only teammates with >= 1 row
    row_index: Tensor  # [groups, teammates] long, -1 where the teammate is inactive
    # Teammates active in every image: their slice's group ids are exactly 0..N-1, so no gather is needed.
    full_teammates: frozenset[int] = frozenset()
    _ids_cache: dict[torch.device, Tensor] = field(default_factory=dict, repr=False, init=False)

    @classmethod
    def from_active(cls, active: Tensor | Sequence[Sequence[int]], num_teammates: int | None = None) -> TeamBatch:
        """`active`: bool [N, T] (image n has teammate t), or per image its active teammate indices."""
        if not isinstance(active, Tensor):
            active = _active_from_lists(active, num_teammates)
        if active.dim() != 2 or active.dtype != torch.bool:
            raise ValueError(
                f"active must be a bool tensor [images, teammates], got {active.dtype} {tuple(active.shape)}"
            )
        n, t = active.shape
        if num_teammates is not None and t != num_teammates:
            raise ValueError(f"active has {t} teammate columns, expected num_teammates={num_teammates}")
        if n == 0 or t == 0:
            raise ValueError(f"active must have at least one image and one teammate, got shape {(n, t)}")
        empty = (~active.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"images {empty} have no active teammate; every image needs at least one row")
        active = active.cpu()
        # nonzero() of the transpose lists (teammate, image) pairs in lexicographic order: teammate-major.
        pairs = active.t().nonzero()
        teammate_ids, group_ids = pairs[:, 0].contiguous(), pairs[:, 1].contiguous()
        row_index = torch.full((n, t), -1, dtype=torch.long)
        row_index[group_ids, teammate_ids] = torch.arange(len(pairs))
        counts = active.sum(dim=0).tolist()
        slices, start = [], 0
        for tm, count in enumerate(counts):
            if count:
                slices.append((tm, start, start + count))
            start += count
        full = frozenset(tm for tm, count in enumerate(counts) if count == n)
        return cls(t, n, teammate_ids, group_ids, slices, row_index, full)

    @property
    def num_rows(self) -> int:
        return int(self.group_ids.numel())

    def rows_of(self, group: int, teammate: int) -> int | None:
        """Batch row of `teammate` in image `group`, or None if it is not active there."""
        row = int(self.row_index[group, teammate])
        return None if row < 0 else row

    def to_rows(self, x: Tensor) -> Tensor:
        """[N, T, ...] per-image tensors -> [rows, ...] in batch row order."""
        if tuple(x.shape[:2]) != (self.num_groups, self.num_teammates):
            raise ValueError(
                f"to_rows expects [images={self.num_groups}, teammates={self.num_teammates}, ...], got {tuple(x.shape)}"
            )
        return x[self.group_ids.to(x.device), self.teammate_ids.to(x.device)]

    def from_rows(self, y: Tensor, fill: float = 0.0) -> Tensor:
        """[rows, ...] -> [N, T, ...]; inactive (image, teammate) entries are `fill`."""
        if y.shape[0] != self.num_rows:
            raise ValueError(f"from_rows expects {self.num_rows} rows, got {y.shape[0]}")
        out = y.new_full((self.num_groups, self.num_teammates, *y.shape[1:]), fill)
        out[self.group_ids.to(y.device), self.teammate_ids.to(y.device)] = y
        return out

    def to(self, device: torch.device | str) -> TeamBatch:
        return TeamBatch(
            self.num_teammates,
            self.num_groups,
            self.teammate_ids.to(device),
            self.group_ids.to(device),
            list(self.slices),
            self.row_index.to(device),
            self.full_teammates,
        )

    def group_ids_on(self, device: torch.device) -> Tensor:
        """group_ids on `device`, cached so that each layer does not copy them again."""
        ids = self._ids_cache.get(device)
        if ids is None:
            ids = self._ids_cache[device] = self.group_ids.to(device)
        return ids


def _active_from_lists(lists: Sequence[Sequence[int]], num_teammates: int | None) -> Tensor:
    highest = max((max(row) for row in lists if len(row)), default=-1)
    t = num_teammates if num_teammates is not None else highest + 1
    active = torch.zeros(len(lists), max(t, 0), dtype=torch.bool)
    for g, row in enumerate(lists):
        if len(set(row)) != len(row):
            raise ValueError(f"image {g} lists a teammate twice: {list(row)}")
        for tm in row:
            if not 0 <= tm < t:
                raise ValueError(f"image {g} has teammate index {tm}; allowed 0..{t - 1}")
            active[g, tm] = True
    return active


class TeamState:
    """Shared by reference by all adapter layers of one model: the batch layout of the current forward."""

    def __init__(self, num_teammates: int) -> None:
        self.num_teammates = num_teammates
        self.batch: TeamBatch | None = None

    def require(self) -> TeamBatch:
        if self.batch is None:
            raise RuntimeError(
                "a Teamwork-adapted layer was called without a team layout; wrap the forward "
                "in `with team_context(model, batch):`"
            )
        return self.batch
