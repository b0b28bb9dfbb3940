"""Peak memory of each command against the input's size, and the plan's estimate beside it.

    python benchmarks/memory_plan.py [--sizes 512 1024 2048] [--tasks svbrdf intrinsics ...]

Each command runs in a fresh process on the embedded model, on inputs made from the bundled examples resized
(Lanczos) to N x N, with defaults. Prints its peak resident memory (ru_maxrss) and the estimate that
`teamwork_cli.cli.planning.estimate` makes before any work (with the windows the command would use), and their
ratio (above 1.0: the plan is short). Per command, the model peak = base + canvas bytes x pixels + pass bytes x
pixels of one pass is fitted to the measurements (least squares; exact for three sizes of which one is windowed):
it is where the plan's constants (core/memory.py, rounded up about 10%) come from.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = ("svbrdf", "intrinsics", "shade", "inpaint", "synthesize", "render")
AUTOMATIC_WINDOWS = ("svbrdf", "intrinsics", "shade")  # photos over 1 MP go in windows by default


def _resized(src: Path, dst: Path, n: int, grey: bool = False) -> Path:
    from PIL import Image

    im = Image.open(src)
    im = im.convert("L" if grey else "RGB").resize((n, n), Image.LANCZOS)
    im.save(dst)
    return dst


def command(task: str, n: int, tmp: Path) -> list[str]:
    ex = ROOT / "examples"
    out = tmp / f"{task}_{n}"
    if task in ("svbrdf", "intrinsics"):
        return [task, str(_resized(ex / "wood_flash.png", tmp / f"photo_{n}.png", n)), "-o", str(out)]
    if task == "shade":
        a = _resized(ex / "buffers" / "albedo.png", tmp / f"albedo_{n}.png", n)
        nrm = _resized(ex / "buffers" / "normals.png", tmp / f"normals_{n}.png", n)
        return ["shade", "--albedo", str(a), "--normals", str(nrm), "-o", str(out) + ".png"]
    if task == "inpaint":
        img = _resized(ex / "scene.png", tmp / f"scene_{n}.png", n)
        mask = _resized(ex / "scene_mask.png", tmp / f"scene_{n}_mask.png", n, grey=True)
        return ["inpaint", str(img), "--mask", str(mask), "-o", str(out)]
    if task == "synthesize":
        return ["synthesize", "-n", "1", "--size", str(n), "-o", str(out)]
    if task == "render":
        return ["render", str(ex / "material"), "--size", str(n), "-o", str(out) + ".png"]
    raise ValueError(task)


def run(args: list[str]) -> tuple[bool, float, float, str]:
    exe = Path(sys.executable).with_name("teamwork")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    return status == 0, time.perf_counter() - t0, usage.ru_maxrss * 1024, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=int, default=[512, 1024, 2048])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    args = ap.parse_args()
    import numpy as np

    from teamwork_cli.cli import planning
    from teamwork_cli.pipelines.tiling import WindowOptions

    tmp = Path(tempfile.mkdtemp())
    print(f"peak resident memory per command (embedded model, defaults); {os.cpu_count()} cores")
    print(f"{'command':<11} {'size':>6} {'wall s':>7} {'peak MB':>8} {'plan MB':>8} {'peak/plan':>9}")
    for task in args.tasks:
        points = []
        windows = WindowOptions.automatic() if task in AUTOMATIC_WINDOWS else None
        for n in args.sizes:
            ok, wall, peak, err = run(command(task, n, tmp))
            plan = planning.estimate(task, n, n, windows).total
            if not ok:
                line = (err.strip().splitlines() or ["?"])[0]
                print(f"{task:<11} {n:>6} failed: {line}")
                continue
            passed = planning.pass_pixels(n, n, windows) or n * n
            points.append((n * n, passed, peak))
            print(
                f"{task:<11} {n:>6} {wall:7.1f} {peak / 2**20:8.0f} {plan / 2**20:8.0f} {peak / plan:9.2f}", flush=True
            )
        if len(points) >= 2:
            a = np.array([(1.0, p, q) for p, q, _ in points])
            y = np.array([m for _, _, m in points], dtype=float)
            if np.linalg.matrix_rank(a) < 3:  # every size in one pass: canvas and pass bytes are one sum
                a = np.array([(1.0, p) for p, _, _ in points])
            fit = np.linalg.lstsq(a, y, rcond=None)[0]
            parts = f"base {fit[0] / 2**20:.0f} MB + {fit[1]:.0f} bytes per pixel"
            if len(fit) == 3:
                parts += f" + {fit[2]:.0f} bytes per pixel of a pass"
            print(f"{task:<11} fit: {parts}", flush=True)


if __name__ == "__main__":
    main()
