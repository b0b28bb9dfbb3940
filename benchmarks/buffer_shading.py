"""Fit the metric depth range that `teamwork_cli.graphics.deferred` assumes, on training scenes (never held-out seeds).

    python benchmarks/buffer_shading.py [--size 64] [--count 16]

Prints the PSNR of deferred shading against the true studio render for each (near, far) on a grid and the best
pair; `graphics.deferred.NEAR, FAR` hold it. tasks_quality.py scores the same shading on held-out scenes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teamwork_cli.graphics.deferred import deferred_shading  # noqa: E402
from teamwork_cli.graphics.render import to_photo  # noqa: E402
from teamwork_cli.procedural import scenes as S  # noqa: E402

GRID = [(a, b) for a in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5) for b in (5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0)]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return (10 * torch.log10(1 / mse)).mean().item()


def fit_depth_range(size: int, count: int = 16, verbose: bool = False) -> tuple[float, float]:
    """(near, far) maximising the mean PSNR on training scenes 0..count-1 (below procedural.scenes.EVAL_SEED0)."""
    buf = S.generate(list(range(count)), size, lighting="studio")
    del buf["basecolor"]  # fitted on the buffers every user has (metals grey); with it the fit is the same (2, 8)
    scores = {nf: psnr(to_photo(deferred_shading(buf, *nf)), buf["photo"]) for nf in GRID}
    if verbose:
        for (near, far), v in scores.items():
            print(f"near {near:<4g} far {far:<4g} {v:8.3f} dB")
    return max(scores, key=scores.__getitem__)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=16)
    args = ap.parse_args()
    near, far = fit_depth_range(args.size, args.count, verbose=True)
    print(f"best: near {near:g} far {far:g}")
