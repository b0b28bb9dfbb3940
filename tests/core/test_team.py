"""TeamBatch: the teammate-major row layout of a team's images, and its errors."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.core.team import TeamBatch


def test_team_batch_layout() -> None:
    active = torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)
    batch = TeamBatch.from_active(active)
    assert batch.teammate_ids.tolist() == [0, 0, 1, 2]
    assert batch.group_ids.tolist() == [0, 1, 0, 1]
    assert batch.slices == [(0, 0, 2), (1, 2, 3), (2, 3, 4)]
    assert batch.rows_of(1, 1) is None and batch.rows_of(1, 2) == 3 and batch.rows_of(0, 1) == 2
    same = TeamBatch.from_active([[0, 1], [0, 2]], 3)
    assert same.slices == batch.slices and torch.equal(same.group_ids, batch.group_ids)
    x = torch.randn(2, 3, 5)
    rows = batch.to_rows(x)
    assert torch.equal(rows[3], x[1, 2])
    back = batch.from_rows(rows, fill=-1.0)
    assert torch.equal(back[active], x[active]) and (back[~active] == -1).all()
    assert batch.to("cpu").slices == batch.slices
    sparse = TeamBatch.from_active([[1], [2]], 3)  # teammate 0 nowhere: no slice
    assert sparse.slices == [(1, 0, 1), (2, 1, 2)]


@pytest.mark.parametrize(
    "active, match",
    [
        ([[0], []], "no active teammate"),
        ([[0, 3]], "teammate index 3"),
        ([[1, 1]], "twice"),
        (torch.ones(2, 2), "bool"),
    ],
)
def test_team_batch_errors(active: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TeamBatch.from_active(active, 3 if isinstance(active, list) else None)  # type: ignore[arg-type]
