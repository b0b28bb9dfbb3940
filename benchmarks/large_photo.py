"""`teamwork svbrdf` on a phone-sized photo under a memory limit: wall time and peak memory, 2048 px beside.

    python benchmarks/large_photo.py [--limit-gb 4] [--sizes 4000x3000 2048x2048]

Each photo is the bundled examples/wood_flash.png resized (Lanczos) to the size and saved as a JPEG (quality 92),
then a fresh `teamwork svbrdf` process (defaults: windows of the adapter's size beyond 1024 x 1024 px) runs on it
with its address space limited as `ulimit -v` does (RLIMIT_AS). Prints whether it succeeded, its wall time and
its peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-gb", type=float, default=4.0)
    ap.add_argument("--sizes", nargs="+", default=["4000x3000", "2048x2048"])
    args = ap.parse_args()
    from PIL import Image

    limit = int(args.limit_gb * 1024**3)
    exe = Path(sys.executable).with_name("teamwork")
    tmp = Path(tempfile.mkdtemp())
    src = Image.open(ROOT / "examples" / "wood_flash.png").convert("RGB")
    print(f"teamwork svbrdf (defaults), address space limited to {args.limit_gb:g} GB; {os.cpu_count()} cores")
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        photo = tmp / f"photo_{size}.jpg"
        src.resize((w, h), Image.LANCZOS).save(photo, quality=92)

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(exe), "svbrdf", str(photo), "-o", str(tmp / size)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=limited,
        )
        err = proc.stderr.read().decode() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        result = "ok" if status == 0 else "failed: " + (err.strip().splitlines() or ["?"])[0]
        print(f"{size:>10} ({w * h / 1e6:4.1f} MP)  {result:<10}  {wall:7.1f} s  peak {usage.ru_maxrss / 1024:6.0f} MB")


if __name__ == "__main__":
    main()
