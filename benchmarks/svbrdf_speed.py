"""Wall time and peak memory of `teamwork svbrdf` on a 512x512 photo, on this machine.

    python benchmarks/svbrdf_speed.py [--steps 1] [--runs 3]

The photo is a procedural material (seed 10_000_000, never used in training) rendered under the flash at 512 px.
Each run is a fresh `teamwork svbrdf` process (so its wall time includes start-up and model load), and the model
load alone is timed in this process. Peak memory is the child's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--ensemble", type=int, default=None, help="passed to teamwork svbrdf (default: its own)")
    args = ap.parse_args()
    from teamwork_cli.core.conventions import srgb_to_linear
    from teamwork_cli.materials.write import write_map
    from teamwork_cli.models.hub.resolve import default_adapter
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.procedural import materials as procedural

    tmp = Path(tempfile.mkdtemp())
    photo = procedural.generate([10_000_000], args.size, augment=False)["image"]
    src = tmp / "photo.png"
    write_map(src, srgb_to_linear(photo[0]).permute(1, 2, 0).numpy(), "image")
    t0 = time.perf_counter()
    TeamPipeline.load(default_adapter("svbrdf"), device="cpu")
    load = time.perf_counter() - t0
    exe = Path(sys.executable).with_name("teamwork")
    walls = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        extra = ["--ensemble", str(args.ensemble)] if args.ensemble else []
        subprocess.run(
            [str(exe), "svbrdf", str(src), "-o", str(tmp / f"out{i}"), "--steps", str(args.steps), *extra],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"svbrdf {args.size}x{args.size}, steps={args.steps}, ensemble={args.ensemble or 'default'}, "
        f"runs={args.runs} (fresh process each)"
    )
    print(f"wall time: median {statistics.median(walls):.2f} s  (runs: {', '.join(f'{w:.2f}' for w in walls)})")
    print(f"model load (in process): {load:.2f} s")
    print(f"peak memory (max RSS of a run): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
