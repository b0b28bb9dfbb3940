"""Where `teamwork svbrdf` reaches its peak memory: resident memory sampled every few milliseconds, attributed to
the innermost stage running at the time.

    python benchmarks/memory_profile.py [--size 2048] [--tileable] [--interval 0.005]

The photo is examples/wood_flash.png resized (Lanczos) to size x size, saved as a JPEG (quality 92) as
`large_photo.py` makes it; the command runs in this process with defaults (plus --tileable if asked). Stages are
the library functions the command calls, wrapped to name themselves while they run (`tracemalloc` does not see
torch's allocations, so the process's resident set is read from /proc/self/status instead). Prints each stage's
peak resident memory and the whole run's.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = (
    ("teamwork_cli.cli.common", "read_channel"),
    ("teamwork_cli.pipelines.team_pipeline", "TeamPipeline.__call__"),
    ("teamwork_cli.pipelines.windows", "_Blender.result"),
    ("teamwork_cli.tasks.ensemble", "mean"),
    ("teamwork_cli.tasks.svbrdf", "decode"),
    ("teamwork_cli.tasks.svbrdf", "make_periodic"),
    ("teamwork_cli.graphics.flashfit", "fit_levels"),
    ("teamwork_cli.graphics.flashfit", "demodulate_diffuse"),
    ("teamwork_cli.tasks.svbrdf", "R.flash_terms"),
    ("teamwork_cli.tasks.svbrdf", "R.flash_radiance"),
    ("teamwork_cli.tasks.svbrdf", "seamless_maps"),
    ("teamwork_cli.tasks.svbrdf", "_basecolor"),
    ("teamwork_cli.materials.outputs", "write_outputs"),
    ("teamwork_cli.materials.outputs", "write_map"),
)


def _status(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler:
    def __init__(self, interval: float) -> None:
        self.interval, self.stack, self.peaks = interval, ["start-up"], {}
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.running:
            rss = _status()
            with self.lock:
                name = self.stack[-1]
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            time.sleep(self.interval)

    def wrap(self, name: str, fn):  # noqa: ANN001, ANN202
        @functools.wraps(fn)
        def inner(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            with self.lock:
                self.stack.append(name)
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.stack.pop()

        return inner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--tileable", action="store_true")
    ap.add_argument("--interval", type=float, default=0.005)
    args = ap.parse_args()
    import importlib
    import resource

    from PIL import Image

    tmp = Path(tempfile.mkdtemp())
    photo = tmp / f"photo_{args.size}.jpg"
    src = Image.open(ROOT / "examples" / "wood_flash.png").convert("RGB")
    src.resize((args.size, args.size), Image.LANCZOS).save(photo, quality=92)
    del src
    sampler = Sampler(args.interval)
    sampler.thread.start()
    import teamwork_cli.cli.app as app

    for module, attr in STAGES:
        owner = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, sampler.wrap(attr.split(".")[-1], getattr(owner, name)))
    t0 = time.perf_counter()
    argv = ["svbrdf", str(photo), "-o", str(tmp / "out")] + (["--tileable"] if args.tileable else [])
    code = app.main(argv)
    wall = time.perf_counter() - t0
    sampler.running = False
    sampler.thread.join()
    print(f"teamwork {' '.join([argv[0], *argv[4:]])} at {args.size} px: exit {code}, {wall:.1f} s")
    for name, peak in sampler.peaks.items():
        print(f"  {name:<22} peak {peak / 2**20:7.0f} MB")
    print(f"  ru_maxrss              {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MB")
    print(f"  address space (VmPeak) {_status('VmPeak') / 2**20:7.0f} MB")


if __name__ == "__main__":
    main()
