"""Where the time of `teamwork svbrdf` goes, on this machine: end to end against the model's pass alone.

    python benchmarks/svbrdf_speed.py [--sizes 512 2048] [--runs 3] [--against REV] [--no-pass]
                                      [-- extra teamwork svbrdf options]

For each size, a procedural material (seed 10_000_000, never used in training) rendered under the flash:
- end to end: the median wall time of fresh `teamwork svbrdf` processes (start-up, model load, the pass, the
  photo fit, the glTF conversion, the writes), and the peak resident memory of the slowest of them;
- the model's pass alone: in this process, the pipeline call that `svbrdf` makes (the same inputs, the same
  windows), the first call and the median of the later ones;
- their ratio (end to end over the warm pass).
Then the machine's matmul rate in fp32 and bf16 (2048 x 2048 products) so figures from different CPUs compare.

--against REV: also time the end to end of git revision REV (its tracked files extracted to a temporary folder with
`git archive`, run through PYTHONPATH), the two interleaved run by run, new then old, so that a busy CPU slows both
alike; prints each one's median and fastest run and the ratios new/old. --no-pass: skip the pass alone (and
the profile).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def matmul_gflops(dtype) -> float:  # noqa: ANN001
    import torch

    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        a @ b
        runs += 1
    return 2 * 2048**3 * runs / (time.perf_counter() - t0) / 1e9


def one_run(photo: Path, out: Path, extra: list[str], tree: Path = ROOT) -> tuple[float, float, float]:
    """Wall time of one fresh `teamwork svbrdf` process running the code in `tree`, its CPU time (user + system,
    all threads) and its peak RSS (MB)."""
    exe = Path(sys.executable).with_name("teamwork")
    # PYTHONPATH picks the tree, ahead of whatever checkout the venv has installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "svbrdf", str(photo), "-o", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"teamwork svbrdf ({tree}) failed on {photo}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def end_to_end(photo: Path, out: Path, runs: int, extra: list[str]) -> tuple[list[float], float]:
    """Wall times of fresh processes, and the largest peak RSS among them (MB)."""
    results = [one_run(photo, out / f"run{i}", extra) for i in range(runs)]
    return [w for w, _, _ in results], max(p for _, _, p in results)


def checkout(rev: str, into: Path) -> Path:
    """The tracked files of git revision `rev` in a folder under `into` (no worktree registered anywhere)."""
    tree = into / "against"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def against(photo: Path, out: Path, runs: int, extra: list[str], tree: Path) -> dict[str, list[tuple[float, float]]]:
    """Interleaved (wall, CPU) times of this checkout ("new") and of `tree` ("old"): new, old, new, old, ... (one
    warm-up pair first, so neither side pays for the cold file cache)."""
    times: dict[str, list[tuple[float, float]]] = {"new": [], "old": []}
    for i in range(runs + 1):
        for side, code in (("new", ROOT), ("old", tree)):
            wall, cpu, _ = one_run(photo, out / f"{side}{i}", extra, code)
            if i:
                times[side].append((wall, cpu))
    return times


def model_pass(pipe, photo_path: Path, runs: int, window: int | None) -> tuple[float, float]:  # noqa: ANN001
    """First and median later wall time of the pipeline call svbrdf makes for this photo."""
    import torch

    from teamwork_cli.cli.common import read_channel
    from teamwork_cli.core.encoding import encode
    from teamwork_cli.graphics import render as R
    from teamwork_cli.pipelines.tiling import WindowOptions
    from teamwork_cli.tasks import svbrdf

    photo = read_channel(photo_path, "image")
    h, w = photo.shape[-2:]
    inputs = {"image.in": encode("image", photo)}
    if pipe.layout.has("halfway.in"):
        inputs["halfway.in"] = encode("halfway", R.halfway_map(h, w, 45.0).unsqueeze(0))
    # As the CLI: --window, or one pass up to 1024 x 1024 px and windows beyond.
    windows = WindowOptions(window) if window else WindowOptions.automatic()
    outputs = [m + ".out" for m in svbrdf.MAPS]
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            pipe(inputs, outputs=outputs, steps=1, seed=[0], windows=windows)
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:] or times)


# Profiler op names by what they are in the model's pass (anything else: "other").
CATEGORIES = {
    "convolutions": ("aten::mkldnn_convolution", "aten::convolution", "aten::_convolution"),
    "group norms": ("aten::native_group_norm",),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math"),
    "adapter offsets": ("aten::bmm", "aten::baddbmm_", "aten::sum"),
    "activations, residuals, skips": ("aten::silu_", "aten::silu", "aten::add_", "aten::add", "aten::cat"),
    "up/downsampling": ("aten::upsample_nearest2d",),
    "dtype casts, copies": ("aten::copy_", "aten::_to_copy"),
}


def profile_pass(pipe, photo_path: Path) -> None:  # noqa: ANN001
    """Self CPU time of the pass's ops, by category."""
    from torch.profiler import profile

    with profile() as prof:
        model_pass(pipe, photo_path, 0, None)  # one call (warm already: the timing above ran it)
    totals: dict[str, float] = {}
    for e in prof.key_averages():
        cat = next((c for c, names in CATEGORIES.items() if e.key in names), "other")
        totals[cat] = totals.get(cat, 0.0) + e.self_cpu_time_total / 1e6
    whole = sum(totals.values())
    print("the pass's op time by kind (torch.profiler, self CPU time):")
    for cat, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {cat:<32} {t:6.3f} s  {100 * t / whole:4.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=None, help="passed to teamwork svbrdf and to the pass alone")
    ap.add_argument("--dtype", default="auto", help="passed to teamwork svbrdf and to the pass alone")
    ap.add_argument("--profile", action="store_true", help="also break the first size's pass down by op kind")
    ap.add_argument("--against", metavar="REV", help="A/B: interleave fresh runs with git revision REV's code")
    ap.add_argument("--no-pass", action="store_true", help="skip the pass-alone measurement (and the profile)")
    ap.add_argument("extra", nargs="*", help="more teamwork svbrdf options, after --")
    args = ap.parse_args()
    import torch

    from teamwork_cli.core.conventions import srgb_to_linear
    from teamwork_cli.core.devices import cpu_has_fast_bf16
    from teamwork_cli.materials.write import write_map
    from teamwork_cli.models.hub.resolve import default_adapter
    from teamwork_cli.pipelines.team_pipeline import TeamPipeline
    from teamwork_cli.procedural import materials as procedural

    extra = [*(["--window", str(args.window)] if args.window else []), "--dtype", args.dtype, *args.extra]
    kind = "native bf16 (AVX-512 BF16 or AMX)" if cpu_has_fast_bf16() else "no native bf16 (fp32 by default)"
    print(f"CPU: {os.cpu_count()} cores, {kind}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"teamwork svbrdf {' '.join(extra) or '(defaults)'}; runs={args.runs}")
    tmp = Path(tempfile.mkdtemp())
    photos = {}
    for size in args.sizes:
        photo = procedural.generate([10_000_000], size, augment=False)["image"]
        photos[size] = tmp / f"photo{size}.png"
        write_map(photos[size], srgb_to_linear(photo[0]).permute(1, 2, 0).numpy(), "image")
    if args.against:
        tree = checkout(args.against, tmp)
        print(f"A/B against {args.against}: fresh processes interleaved, new then old, medians of {args.runs}")
        for size in args.sizes:
            times = against(photos[size], tmp / f"ab{size}", args.runs, extra, tree)
            # Medians, and minima: on a CPU shared with other jobs the fastest run is the one least disturbed.
            med = {k: [statistics.median(t[j] for t in v) for j in (0, 1)] for k, v in times.items()}
            low = {k: min(w for w, _ in v) for k, v in times.items()}
            for side in ("new", "old"):
                runs = ", ".join(f"{w:.2f}" for w, _ in times[side])
                print(
                    f"{size:>5} px  {side} {med[side][0]:7.2f} s, min {low[side]:.2f} s (runs {runs})  "
                    f"CPU time {med[side][1]:6.2f} s"
                )
            (nw, nc), (ow, oc) = med["new"], med["old"]
            print(
                f"{size:>5} px  new/old: wall {nw / ow:5.3f} (min {low['new'] / low['old']:5.3f}), "
                f"CPU time {nc / oc:5.3f}"
            )
        shutil.rmtree(tree)
    # The fresh processes first, while this one is small: a child's peak RSS counts its parent's at the fork.
    e2e = {size: end_to_end(photos[size], tmp / f"out{size}", args.runs, extra) for size in args.sizes}
    pipe = None if args.no_pass else TeamPipeline.load(default_adapter("svbrdf"), device="cpu", dtype=args.dtype)
    rows = []
    for size in args.sizes:
        walls, peak = e2e[size]
        wall = statistics.median(walls)
        rows.append((size, wall))
        line = f"{size:>5} px  end to end {wall:7.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)})  "
        if pipe is not None:
            first, warm = model_pass(pipe, photos[size], args.runs, args.window)
            line += f"pass alone {warm:7.2f} s (first {first:.2f})  ratio {wall / warm:5.2f}  "
        print(line + f"peak {peak:6.0f} MB")
    if args.profile and pipe is not None:
        profile_pass(pipe, tmp / f"photo{args.sizes[0]}.png")
    if len(rows) > 1:
        (s0, w0), (s1, w1) = rows[0], rows[-1]
        print(f"{s1} px over {s0} px: end to end {w1 / w0:.1f}x for {(s1 / s0) ** 2:.0f}x the pixels")
    print(
        f"matmul 2048^3: fp32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
        f"bf16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
