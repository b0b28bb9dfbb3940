"""Whether bf16 pays on this CPU: one `teamwork inpaint`-sized call (shipped inpaint adapter) in fp32 and in bf16.

    python benchmarks/dtype_speed.py [--size 128] [--steps 2] [--threads 1]

Prints the wall time of each and the bf16/fp32 ratio, and what `--dtype auto` picks here. bf16 is fast only where
oneDNN computes it natively (AVX-512 BF16 / AMX); elsewhere it is emulated and many times slower than fp32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from teamwork_cli.core.devices import auto_dtype
from teamwork_cli.models.hub.resolve import default_adapter
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.tasks import inpaint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, args.size, args.size)
    mask[..., args.size // 4 : args.size // 2, args.size // 4 : args.size // 2] = 1
    times = {}
    for dtype in ("fp32", "bf16"):
        pipe = TeamPipeline.load(default_adapter("inpaint"), device="cpu", dtype=dtype)
        inpaint.inpaint(pipe, {"image": image[..., :16, :16]}, mask[..., :16, :16], steps=1)  # warm-up
        t0 = time.perf_counter()
        inpaint.inpaint(pipe, {"image": image}, mask, steps=args.steps)
        times[dtype] = time.perf_counter() - t0
    auto = auto_dtype(torch.device("cpu"))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), inpaint {args.size} px, {args.steps} steps; "
        f"--dtype auto picks {'bf16' if auto else 'fp32'} here"
    )
    print(f"fp32 {times['fp32']:.2f} s   bf16 {times['bf16']:.2f} s   bf16/fp32 {times['bf16'] / times['fp32']:.1f}")


if __name__ == "__main__":
    main()
