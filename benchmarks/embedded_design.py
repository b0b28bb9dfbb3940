"""The numbers behind the embedded model's design (docs/embedded-model.md, "Architecture").

    python benchmarks/embedded_design.py [--threads 2]

Times one no-grad forward of a team batch (6 rows: 2 inputs + 4 outputs, as svbrdf) at 512 px, bf16 autocast,
for a plain pixel-space UNet2DModel and for the shipped configuration, a UNet on 2x2 pixel patches (12 channels
at half resolution), plus one training step (forward + backward) of each at 128 px, batch 8.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import UNet2DModel

from teamwork_cli.models.embedded import DEFAULT_CONFIG

PIXEL = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(32, 64, 128, 128),
    layers_per_block=1,
    down_block_types=("DownBlock2D",) * 4,
    up_block_types=("UpBlock2D",) * 4,
    norm_num_groups=8,
)


def timed(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(model: UNet2DModel, c: int, patch: int, runs: int) -> tuple[float, float]:
    x, t = torch.randn(6, c, 512 // patch, 512 // patch), torch.full((6,), 500.0)
    xt, tt = torch.randn(8, c, 128 // patch, 128 // patch), torch.full((8,), 500.0)

    def fwd() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(x, t)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(xt, tt).sample.float().square().mean().backward()

    return timed(fwd, runs), timed(step, runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, bf16 autocast, median of {args.runs}")
    print(f"{'model':<34}{'params':>8}{'fwd 6x512px':>14}{'train 8x128px':>15}")
    for name, cfg, patch in (
        ("pixel UNet (32,64,128,128)", PIXEL, 1),
        ("2x2-patch UNet (shipped)", dict(DEFAULT_CONFIG, sample_size=64), 2),
    ):
        model = UNet2DModel(**cfg)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        fwd, step = measure(model, cfg["in_channels"], patch, args.runs)
        print(f"{name:<34}{params:>7.1f}M{fwd:>13.2f}s{step:>14.2f}s")


if __name__ == "__main__":
    main()
