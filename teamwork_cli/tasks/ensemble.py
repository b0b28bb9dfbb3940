"""Test-time ensembling for the estimation tasks (Marigold, Ke et al. 2024, section 3.3): run several noise draws
of the same inputs in one batch and average the decoded results; the mean of samples is a lower-error estimate
than any one of them."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

SEED_STRIDE = 1_000_003  # sample k of image i gets seed seeds[i] + SEED_STRIDE * k


def default_size(device_type: str, autocast, one_step: bool = False) -> int:
    """2 samples on a GPU or under native bf16, 1 on an fp32 CPU: there a second sample costs as much as the first
    (13 s at 512 px for svbrdf on 2 cores) and would break the 30 s budget (docs/embedded-model.md, svbrdf speed).
    1 for a one-step adapter: it is deterministic, every sample would be the same."""
    return 2 if (device_type != "cpu" or autocast is not None) and not one_step else 1


def repeat(inputs: dict[str, Tensor], seed: int | Sequence[int], ensemble: int) -> tuple[dict[str, Tensor], list[int]]:
    """Inputs repeated `ensemble` times along the batch, and one seed per row."""
    if ensemble < 1:
        raise ValueError(f"ensemble must be at least 1, got {ensemble}")
    n = next(iter(inputs.values())).shape[0]
    seeds = [seed + i for i in range(n)] if isinstance(seed, int) else [int(s) for s in seed]
    rows = [s + SEED_STRIDE * k for k in range(ensemble) for s in seeds]
    if ensemble == 1:  # the inputs themselves: a copy would cost a photo-sized canvas per input
        return dict(inputs), rows
    return {k: v.repeat(ensemble, *[1] * (v.ndim - 1)) for k, v in inputs.items()}, rows


def mean(values: dict[str, Tensor], ensemble: int) -> dict[str, Tensor]:
    """Average decoded values over the ensemble; unit vectors (normals) are renormalised."""
    if ensemble == 1:
        return values
    out = {c: v.unflatten(0, (ensemble, -1)).mean(0) for c, v in values.items()}
    if "normals" in out:
        out["normals"] = F.normalize(out["normals"], dim=1, eps=1e-6)
    return out
