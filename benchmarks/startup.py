"""Start-up costs, each in a fresh process: `teamwork --help`, `teamwork info` (a command that imports torch and
reads an adapter), importing torch, the CLI, the library, loading the embedded model with the svbrdf adapter, and
its first pass on a 512 px photo.

    python benchmarks/startup.py [--runs 5]

Medians over the runs; every figure is a fresh interpreter, so nothing is cached between them but the OS's file
cache (the first run warms it and is left out).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

STAGES = {
    "python": "pass",
    "import torch": "import torch",
    # As the `teamwork` entry point imports it: Python's cyclic GC paused (teamwork_cli/cli/startup.py).
    "import torch, GC paused": "from teamwork_cli.cli.startup import paused_heavy_imports\n"
    "with paused_heavy_imports(): import torch",
    "import the CLI (no torch)": "import teamwork_cli.cli.app",
    "import the library": "import teamwork_cli.pipelines.team_pipeline, teamwork_cli.tasks.svbrdf",
}

LOAD = """
import time, torch
from teamwork_cli.models.hub.resolve import default_adapter
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.core.encoding import encode
from teamwork_cli.graphics import render as R
t0 = time.perf_counter()
pipe = TeamPipeline.load(default_adapter("svbrdf"), device="cpu")
t1 = time.perf_counter()
x = {"image.in": encode("image", torch.rand(1, 3, 512, 512)),
     "halfway.in": encode("halfway", R.halfway_map(512, 512, 45.0).unsqueeze(0))}
outs = ["diffuse.out", "specular.out", "roughness.out", "normals.out"]
pipe(x, outputs=outs)
t2 = time.perf_counter()
pipe(x, outputs=outs)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, "diffusers" in __import__("sys").modules)
"""


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    exe = str(Path(py).with_name("teamwork"))
    commands = {
        "teamwork --help": [exe, "--help"],
        "teamwork --version": [exe, "--version"],
        "teamwork info svbrdf": [exe, "info", "svbrdf"],
    }
    commands |= {name: [py, "-c", code] for name, code in STAGES.items()}
    for name, cmd in commands.items():
        times = [timed(cmd) for _ in range(args.runs + 1)][1:]
        print(f"{name:<28} {statistics.median(times):6.3f} s  (whole process)")
    loads = []
    for _ in range(max(1, args.runs // 2) + 1):
        out = subprocess.run([py, "-c", LOAD], check=True, capture_output=True, text=True).stdout.split()
        loads.append(out)
    loads = loads[1:]
    med = [statistics.median(float(r[i]) for r in loads) for i in range(3)]
    print(f"{'load model + svbrdf adapter':<28} {med[0]:6.3f} s  (in process, after the imports)")
    print(f"{'first pass, 512 px':<28} {med[1]:6.3f} s")
    print(f"{'second pass, 512 px':<28} {med[2]:6.3f} s")
    print(f"diffusers imported by loading and one-step sampling: {loads[-1][3]}")


if __name__ == "__main__":
    main()
