"""Seams, windows and memory of tileable and windowed processing (`--tileable`, `--window`; pipelines/tiling.py).

    python benchmarks/tiling.py [--sections seams,windowed,metrics,memory] [--shared ../shared/data]
                                [--dtype auto] [--threads N] [--sizes 2048,4096] [--guard-gb 8]

Sections (all by default; `--sections` picks some, comma-separated):

seams     The seam score of a map: mean |difference| across the wrap seam (last row against first, last column
          against first) over the mean |difference| between neighbouring interior rows (columns); 1.0: the seam
          cannot be told from the interior. Printed: the max over the two axes (rows, columns), on the maps'
          [0, 1] file encoding (what is written), the mean over the inputs of a set. Table 1a: against all
          interior pairs (the definition); 1b: against the 4 pairs next to each edge only (flash photos are
          brighter and busier in the centre, which --tileable blends into the edges, so 1a reads a seam there
          even where the map is continuous). Columns: `full` one pass over the image (the CLI default); `tile
          <sync>` with --tileable (windows of the adapter's training size, a quarter overlap); `win <sync>` the
          same windows without --tileable (the canvas is larger than the window); `max tile` the worst --tileable
          score over inputs and syncs. Table 1c, those `win` runs' window boundaries: `bnd` the same ratio for
          the neighbour pairs inside the bands where two windows overlap (band edges included) against all
          other pairs, max over the axes; `ctl` that ratio over the full-frame map's at the same pairs (content
          controlled: 1.0 = the bands are no rougher than in the full-frame map). Tasks: svbrdf (fit levels, the
          default, and fit none) on the bundled wood_flash.png and the shared flash photos (duplicates of a
          bundled photo dropped; a longer side above --max-side is box-filtered down to it); intrinsics (albedo,
          diffuseshading, normals, depth) on the bundled scene.png and the photos; synthesize (--seam-seeds
          held-out seeds at --synth-size); inpaint on scene.png + scene_mask.png and on the photos with
          material_mask.png; inpaint-material on examples/material + material_mask.png.
windowed  The embedded svbrdf model at 512 px (the three dielectric CC0 sets of svbrdf_quality.py, each whole
          1024 px set box-filtered to 512 px: the texel density of svbrdf_quality's crops) in 128 px windows
          (its training resolution, overlap 32) against one full-frame pass: RMSE per map between the windowed
          and the full-frame maps (svbrdf_quality's map domains), and the render RMSE against ground truth of
          both (nine lights, svbrdf_quality's `scores`), with the ratio windowed / full, for fit none and levels.
metrics   Task metrics with and without --tileable: svbrdf per-map and render RMSE on svbrdf_quality's six 256 px
          CC0 crops (made as its `load_crops` makes them), full frame against --tileable per sync and windows
          without --tileable (and `render ctr`: the render RMSE of the centre, one overlap band cropped off each
          edge, where the photo was not blended with its own centre); synthesize coherence RMSE
          (`tasks.synthesize.coherence_rmse`) on --coherence-seeds held-out seeds at 128 and --synth-size px.
memory    Wall time and peak memory (max RSS of the child, from os.wait4's rusage) of `teamwork svbrdf` (the CLI,
          a fresh subprocess per run, default --fit levels) on photos made here by resizing the bundled
          wood_flash.png (bilinear up-sampling) to each of --sizes, with `--window 512` and with the defaults
          (one full-frame pass). Each child runs under a memory guard (RLIMIT_AS = --guard-gb) and a --timeout;
          a child refused by either is reported as such, not retried.

The header prints the CPU kind (AVX-512 BF16 / AMX as torch reports them), threads and dtype.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from svbrdf_quality import MAPS, SETS, scores  # noqa: E402

from teamwork_cli.core.conventions import decode_normals, srgb_to_linear  # noqa: E402
from teamwork_cli.core.encoding import encode  # noqa: E402
from teamwork_cli.graphics import render as R  # noqa: E402
from teamwork_cli.materials.read import read_image, read_map  # noqa: E402
from teamwork_cli.materials.write import write_map  # noqa: E402
from teamwork_cli.pipelines.team_pipeline import TeamPipeline  # noqa: E402
from teamwork_cli.pipelines.tiling import WindowOptions, latent_factor  # noqa: E402
from teamwork_cli.pipelines.windows import plan_windows  # noqa: E402
from teamwork_cli.procedural.scenes import EVAL_SEED0  # noqa: E402
from teamwork_cli.tasks import inpaint as inpaint_task  # noqa: E402
from teamwork_cli.tasks import intrinsics as intrinsics_task  # noqa: E402
from teamwork_cli.tasks import svbrdf as svbrdf_task  # noqa: E402
from teamwork_cli.tasks import synthesize as synth_task  # noqa: E402

SYNCS = ("none", "average", "syncsde")
SHORT = {"none": "none", "average": "avg", "syncsde": "sde"}
SECTIONS = ("seams", "windowed", "metrics", "memory")
EXAMPLES = ROOT / "examples"
INTRINSICS = ("albedo", "diffuseshading", "normals", "depth")
SYNTH_MAPS = ("diffuse", "specular", "roughness", "normals", "image")
FLAT = 1e-4  # mean |neighbour difference| below this (in [0, 1] encoding): a flat map, no ratio


# --------------------------------------------------------------------------------------------------- scores


def _max(vals) -> float:
    good = [v for v in vals if not math.isnan(v)]
    return max(good) if good else math.nan


def seam(x: torch.Tensor, local: int = 0) -> float:
    """Mean |last - first| line over mean |neighbour difference| (all interior pairs; with `local` = k, only the
    k pairs next to each edge, so a map whose edges are smoother or rougher than its centre is not mistaken for
    a seam), per axis (rows, columns); the max over the two. nan on a flat map."""
    x = x.double()
    out = []
    for dim in (-2, -1):
        d = x.diff(dim=dim).abs()
        if local:
            n = d.shape[dim]
            d = torch.cat([d.narrow(dim, 0, local), d.narrow(dim, n - local, local)], dim)
        inside = d.mean().item()
        across = (x.select(dim, -1) - x.select(dim, 0)).abs().mean().item()
        out.append(across / inside if inside > FLAT else math.nan)
    return _max(out)


def band_pairs(size: int, starts: list[int], window: int) -> torch.Tensor:
    """Bool [size - 1]: neighbour pairs (i, i + 1) inside the band where consecutive windows overlap, its edges
    (the last pair before the later window starts, the first pair after the earlier one ends) included."""
    mask = torch.zeros(max(size - 1, 0), dtype=torch.bool)
    for a, b in zip(starts, starts[1:], strict=False):
        lo, hi = max(b - 1, 0), min(a + window - 1, size - 2)
        if hi >= lo:
            mask[lo : hi + 1] = True
    return mask


def boundary_axes(x: torch.Tensor, pipe: TeamPipeline, opts: WindowOptions) -> list[float]:
    """Per axis (rows, columns): mean |neighbour difference| over the pairs in the window-overlap bands over that
    over all other pairs, for windows as `TeamPipeline.plan` and `windows.plan_windows` lay them out (no wrap);
    nan where an axis has one window or the map is flat."""
    h, w = x.shape[-2:]
    plan = pipe.plan(h, w, None, opts)
    if plan.window is None or plan.tile:
        return [math.nan, math.nan]
    f = latent_factor(pipe.denoiser)
    corners = plan_windows(plan.th // f, plan.tw // f, plan.window // f, plan.overlap // f, wrap=False)
    ys = sorted({y * f for y, _ in corners})
    xs = sorted({c * f for _, c in corners})
    x = x.double()
    out = []
    for dim, starts, size in ((-2, ys, h), (-1, xs, w)):
        d = x.diff(dim=dim).abs().movedim(dim, 0).flatten(1).mean(1)  # [size - 1]: per neighbour pair
        m = band_pairs(size, starts, plan.window)
        ok = len(starts) > 1 and m.any() and (~m).any() and d[~m].mean() > FLAT and d[m].mean() > FLAT
        out.append((d[m].mean() / d[~m].mean()).item() if ok else math.nan)
    return out


def fmt(v: float, width: int = 6) -> str:
    if v is None:
        return f"{'-':>{width}}"
    if isinstance(v, float) and math.isnan(v):
        return f"{'flat':>{width}}"
    return f"{v:>{width}.2f}"


def nanmean(vals: list[float]) -> float:
    good = [v for v in vals if not math.isnan(v)]
    return sum(good) / len(good) if good else math.nan


# --------------------------------------------------------------------------------------------------- inputs


def load_photo(path: Path, max_side: int) -> tuple[torch.Tensor, str]:
    """[1, 3, H, W] stored sRGB in [0, 1]; box-filtered to max_side if its longer side is larger."""
    value = read_map(path, "image")
    h, w = value.shape[:2]
    note = f"{w}x{h}"
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        size = (max(16, round(h * s)), max(16, round(w * s)))
        value = read_map(path, "image", size=size)
        note += f" -> {size[1]}x{size[0]}"
    return encode("image", torch.from_numpy(value).permute(2, 0, 1)[None]), note


def photo_set(data: Path, max_side: int) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """The bundled wood_flash.png and the shared flash photos, duplicates dropped; notes on what was done."""
    photos, notes = [], []
    wood, n = load_photo(EXAMPLES / "wood_flash.png", max_side)
    photos.append(("wood_flash", wood))
    notes.append(f"wood_flash.png {n}")
    folder = data / "flash-photos"
    if not folder.is_dir():
        notes.append(f"{folder} missing: shared photos skipped")
        return photos, notes
    for p in sorted(folder.glob("*.png")):
        x, n = load_photo(p, max_side)
        dup = next((name for name, y in photos if y.shape == x.shape and torch.equal(y, x)), None)
        if dup:
            notes.append(f"{p.name} = {dup} (dropped)")
            continue
        photos.append((p.stem, x))
        notes.append(f"{p.name} {n}")
    return photos, notes


def cc0(data: Path, crops: list[tuple[str, int, int, int]], factor: int) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """The dielectric CC0 sets' maps in value domain, as svbrdf_quality.load_crops makes them (same code): each
    (tag, y, x, side) crop of each set, box-filtered by `factor`. load_crops itself wants the folder above data/."""
    out = []
    for name in SETS:
        d = data / "materials-cc0" / name
        img = {
            k: torch.from_numpy(read_image(d / f"{f}.jpg").pixels).permute(2, 0, 1)[None]
            for k, f in (("basecolor", "basecolor"), ("normals", "normal_opengl"), ("roughness", "roughness"))
        }
        for tag, y, x, side in crops:
            c = {k: F.avg_pool2d(v[..., y : y + side, x : x + side], factor) for k, v in img.items()}
            maps = {
                "diffuse": srgb_to_linear(c["basecolor"][:, :3]),
                "specular": torch.full_like(c["basecolor"][:, :3], 0.04),
                "roughness": c["roughness"][:, :3].mean(1, keepdim=True),
                "normals": decode_normals(c["normals"][:, :3], axis=1),
            }
            out.append((f"{name}/{tag}" if tag else name, maps))
    return out


QUALITY_CROPS = [("a", 0, 0, 512), ("b", 512, 512, 512)]  # svbrdf_quality.load_crops: 512 px, box-filtered by 2


def flash_photo(gt: dict[str, torch.Tensor]) -> torch.Tensor:
    return R.to_photo(R.render_flash(*(gt[m] for m in MAPS)))


# ------------------------------------------------------------------------------------------------- section 1


# Section 1's tables: (title, columns (key, header)); keys index the results of `seam_runs`.
SEAM_TABLES = (
    (
        "1a. wrap seam, against all interior neighbour pairs (the definition); max tile: worst input and sync",
        [("full", "full")]
        + [(f"tile {s}", f"tile {SHORT[s]}") for s in SYNCS]
        + [(f"win {s}", f"win {SHORT[s]}") for s in SYNCS]
        + [("max tile", "max tile")],
    ),
    (
        "1b. wrap seam, against the 4 neighbour pairs next to each edge (local: content near the edges only)",
        [("full local", "full")]
        + [(f"tile local {s}", f"tile {SHORT[s]}") for s in SYNCS]
        + [(f"win local {s}", f"win {SHORT[s]}") for s in SYNCS]
        + [("max tile local", "max tile")],
    ),
    (
        "1c. window boundaries without --tileable: overlap-band pairs against the other pairs (bnd), and that "
        "ratio over the full-frame map's at the same pairs (ctl: 1.0 = no rougher than full frame there)",
        [(f"bnd {s}", f"bnd {SHORT[s]}") for s in SYNCS] + [(f"ctl {s}", f"ctl {SHORT[s]}") for s in SYNCS],
    ),
)


class Seams:
    """Collects, per (group, map), the scores of every input of the group; prints their means."""

    def __init__(self) -> None:
        self.groups: dict[str, dict] = {}

    def add(self, group: str, maps: list[str], results: dict, note: str = "") -> None:
        g = self.groups.setdefault(group, {"maps": maps, "runs": [], "note": note})
        g["runs"].append(results)

    def print(self) -> None:
        for title, cols in SEAM_TABLES:
            print(f"\n# {title}")
            print(f"{'map':<16}" + "".join(f"{c:>10}" for _, c in cols))
            for group, g in self.groups.items():
                runs = g["runs"]
                if title.startswith("1c") and all(r.get("bnd syncsde") is None for r in runs):
                    continue  # never windowed without --tileable: no boundaries
                print(f"# {group} ({len(runs)} input{'s' if len(runs) != 1 else ''}){g['note']}")
                for m in g["maps"]:
                    vals = []
                    for key, _ in cols:
                        if key.startswith("max tile"):
                            pre = "tile local" if key.endswith("local") else "tile"
                            vals.append(_max([r[f"{pre} {s}"][m] for r in runs for s in SYNCS]))
                            continue
                        got = [r[key][m] for r in runs if r.get(key) is not None]  # None: not windowed
                        vals.append(nanmean(got) if got else None)
                    print(f"{m:<16}" + "".join(fmt(v, 10) for v in vals))


def seam_runs(run, pipe: TeamPipeline, shape: tuple[int, int], maps: list[str]) -> dict:
    """run(windows) -> {map: [N, C, H, W] encoded}; every score of section 1 for one input."""
    res: dict = {}
    full = run(None)
    res["full"] = {m: seam(full[m]) for m in maps}
    res["full local"] = {m: seam(full[m], 4) for m in maps}
    for s in SYNCS:
        tile = run(WindowOptions(tileable=True, sync=s))
        res[f"tile {s}"] = {m: seam(tile[m]) for m in maps}
        res[f"tile local {s}"] = {m: seam(tile[m], 4) for m in maps}
        opts = WindowOptions(window=pipe.default_window(), sync=s)
        if pipe.plan(*shape, None, opts).window is None:  # no larger than one window: the full-frame pass
            for k in ("win", "win local", "bnd", "ctl"):
                res[f"{k} {s}"] = None
            continue
        win = run(opts)
        res[f"win {s}"] = {m: seam(win[m]) for m in maps}
        res[f"win local {s}"] = {m: seam(win[m], 4) for m in maps}
        res[f"bnd {s}"], res[f"ctl {s}"] = {}, {}
        for m in maps:
            bw, bf = boundary_axes(win[m], pipe, opts), boundary_axes(full[m], pipe, opts)
            res[f"bnd {s}"][m] = _max(bw)
            res[f"ctl {s}"][m] = _max([a / b for a, b in zip(bw, bf, strict=True)])
    return res


def encoded(maps: dict[str, torch.Tensor], names) -> dict[str, torch.Tensor]:
    return {m: encode(m, maps[m]) for m in names}


def section_seams(args, pipes, data: Path, photos, photo_notes) -> None:
    print("\n## 1. seam scores (max over rows/columns; 1.0 = like the interior)")
    print("# inputs: " + "; ".join(photo_notes))
    table = Seams()
    t0 = time.perf_counter()
    sv = pipes("svbrdf")
    print(
        f"# windows: the adapter's training size, overlap a quarter window: svbrdf {sv.default_window()} px, "
        f"intrinsics {pipes('intrinsics').default_window()}, synthesize {pipes('synthesize').default_window()}, "
        f"inpaint {pipes('inpaint').default_window()}, inpaint-material {pipes('inpaint-material').default_window()}"
    )
    inseam = nanmean([seam(p) for _, p in photos])
    for fit in ("levels", "none"):
        for _, photo in photos:

            def run(w, photo=photo, fit=fit):
                return encoded(svbrdf_task.estimate(sv, photo, fit=fit, windows=w), MAPS)

            table.add(
                f"svbrdf --fit {fit}, photos",
                list(MAPS),
                seam_runs(run, sv, photo.shape[-2:], list(MAPS)),
                f"; the photos' own seam {inseam:.2f}",
            )
    pipe = pipes("intrinsics")
    scene, _ = load_photo(EXAMPLES / "scene.png", args.max_side)
    for label, group in (("scene.png", [("scene", scene)]), ("photos", photos)):
        for _, photo in group:

            def run(w, photo=photo):
                return encoded(intrinsics_task.estimate(pipe, photo, list(INTRINSICS), windows=w), INTRINSICS)

            table.add(
                f"intrinsics, {label}",
                list(INTRINSICS),
                seam_runs(run, pipe, photo.shape[-2:], list(INTRINSICS)),
                f"; input seam {nanmean([seam(p) for _, p in group]):.2f}",
            )
    pipe = pipes("synthesize")
    size = (args.synth_size, args.synth_size)
    for i in range(args.seam_seeds):

        def run(w, i=i):
            return encoded(synthesize(pipe, size, EVAL_SEED0 + 3000 + i, args.synth_steps, w), SYNTH_MAPS)

        table.add(
            f"synthesize {args.synth_size} px, {args.synth_steps} steps",
            list(SYNTH_MAPS),
            seam_runs(run, pipe, size, list(SYNTH_MAPS)),
        )
    pipe = pipes("inpaint")
    jobs = [("scene.png + scene_mask.png", [scene], inpaint_task.read_mask(EXAMPLES / "scene_mask.png"))]
    if len(photos) > 1:
        jobs.append(
            (
                "photos + material_mask.png",
                [p for _, p in photos],
                inpaint_task.read_mask(EXAMPLES / "material_mask.png"),
            )
        )
    for label, images, mask in jobs:
        for img in images:
            mk = mask if mask.shape[-2:] == img.shape[-2:] else F.interpolate(mask, size=img.shape[-2:]).round()

            def run(w, img=img, mk=mk):
                return encoded(inpaint_task.inpaint(pipe, {"image": img}, mk, windows=w), ["image"])

            table.add(
                f"inpaint, {label}",
                ["image"],
                seam_runs(run, pipe, img.shape[-2:], ["image"]),
                f"; input seam {nanmean([seam(p) for p in images]):.2f}",
            )
    pipe = pipes("inpaint-material")
    mats = {m: inpaint_task.read_encoded(EXAMPLES / "material" / f"{m}.png", m) for m in MAPS}
    mask = inpaint_task.read_mask(EXAMPLES / "material_mask.png")

    def run(w):
        return encoded(inpaint_task.inpaint(pipe, mats, mask, windows=w), MAPS)

    table.add(
        "inpaint-material, examples/material + material_mask.png",
        list(MAPS),
        seam_runs(run, pipe, mask.shape[-2:], list(MAPS)),
        "; input seam " + " ".join(f"{m} {seam(x):.2f}" for m, x in mats.items()),
    )
    table.print()
    print(f"# {time.perf_counter() - t0:.0f} s")


_SYNTH: dict = {}


def synthesize(pipe, size, seed, steps, windows) -> dict[str, torch.Tensor]:
    """One material (values), memoised: sections 1 and 3 share the runs they have in common."""
    key = (size, seed, steps, windows)
    if key not in _SYNTH:
        _SYNTH[key] = synth_task.synthesize(pipe, 1, size, steps=steps, seed=seed, windows=windows)[0]
    return _SYNTH[key]


# ------------------------------------------------------------------------------------------------- section 2


def section_windowed(args, pipes, data: Path) -> None:
    print("\n## 2. svbrdf in 128 px windows against one full-frame pass, at 512 px")
    if not (data / "materials-cc0").is_dir():
        print(f"# {data / 'materials-cc0'} missing: skipped")
        return
    pipe = pipes("svbrdf")
    sets = cc0(data, [("", 0, 0, 1024)], 2)
    t0 = time.perf_counter()
    print(
        f"# {len(sets)} CC0 sets ({', '.join(SETS)}), whole 1024 px sets box-filtered to 512 px; window 128, "
        "overlap 32; map columns: RMSE windowed vs full-frame maps; render: RMSE against ground truth"
    )
    print(
        f"{'fit':<8}{'sync':<10}"
        + "".join(f"{m:>10}" for m in MAPS)
        + f"{'render win':>12}{'render full':>12}{'win/full':>10}{'s win':>8}{'s full':>8}"
    )
    for fit in ("none", "levels"):
        full, t_full = [], 0.0
        for _, gt in sets:
            t = time.perf_counter()
            full.append(svbrdf_task.estimate(pipe, flash_photo(gt), fit=fit))
            t_full += time.perf_counter() - t
        full_render = sum(scores(f, gt)["render"] for f, (_, gt) in zip(full, sets, strict=True)) / len(sets)
        for s in SYNCS:
            diff = {m: 0.0 for m in MAPS}
            render, t_win = 0.0, 0.0
            for f, (_, gt) in zip(full, sets, strict=True):
                t = time.perf_counter()
                win = svbrdf_task.estimate(pipe, flash_photo(gt), fit=fit, windows=WindowOptions(window=128, sync=s))
                t_win += time.perf_counter() - t
                for m in MAPS:
                    diff[m] += R.map_rmse(win, f, m) / len(sets)
                render += scores(win, gt)["render"] / len(sets)
            print(
                f"{fit:<8}{s:<10}"
                + "".join(f"{diff[m]:>10.4f}" for m in MAPS)
                + f"{render:>12.4f}{full_render:>12.4f}{render / full_render:>10.3f}"
                + f"{t_win / len(sets):>8.1f}{t_full / len(sets):>8.1f}"
            )
    print(f"# {time.perf_counter() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------- section 3


def svbrdf_metrics(pipe: TeamPipeline, crops) -> None:
    band = pipe.plan(256, 256, None, WindowOptions(tileable=True)).band(256)
    win = pipe.default_window()
    print(
        f"# svbrdf on svbrdf_quality's {len(crops)} CC0 crops at 256 px (RMSE against ground truth; "
        f"render ctr: the render RMSE with {band} px cropped off each edge)"
    )
    print(f"{'run':<50}" + "".join(f"{m:>11}" for m in (*MAPS, "render", "render ctr")))
    runs = [("full frame", None)]
    runs += [(f"--tileable --sync {s}", WindowOptions(tileable=True, sync=s)) for s in SYNCS]
    runs += [(f"--window {win} --sync syncsde (no tile)", WindowOptions(window=win))]
    for fit in ("levels", "none"):
        for label, w in runs:
            acc: dict[str, float] = {}
            for _, gt in crops:
                pred = svbrdf_task.estimate(pipe, flash_photo(gt), fit=fit, windows=w)
                sc = scores(pred, gt)
                inner = {m: v[..., band:-band, band:-band] for m, v in pred.items()}
                sc["render ctr"] = R.render_rmse(inner, {m: v[..., band:-band, band:-band] for m, v in gt.items()})
                for k, v in sc.items():
                    acc[k] = acc.get(k, 0.0) + v / len(crops)
            print(
                f"{'fit ' + fit + ', ' + label:<50}"
                + "".join(f"{acc[k]:>11.4f}" for k in (*MAPS, "render", "render ctr"))
            )


def section_metrics(args, pipes, data: Path) -> None:
    print("\n## 3. task metrics with and without --tileable")
    t0 = time.perf_counter()
    if (data / "materials-cc0").is_dir():
        svbrdf_metrics(pipes("svbrdf"), cc0(data, QUALITY_CROPS, 2))
    else:
        print(f"# {data / 'materials-cc0'} missing: svbrdf rows skipped")
    pipe = pipes("synthesize")
    seeds = [EVAL_SEED0 + 3000 + i for i in range(args.coherence_seeds)]
    print(
        f"\n# synthesize coherence RMSE (image teammate vs flash render of the maps), held-out seeds "
        f"{seeds[0]}..{seeds[-1]}, {args.synth_steps} steps"
    )
    sizes = sorted({128, args.synth_size})
    print(f"{'run':<34}" + "".join(f"{f'{s} px':>10}" for s in sizes))
    runs = [("full frame", lambda n: None)]
    runs += [(f"--tileable --sync {s}", lambda n, s=s: WindowOptions(tileable=True, sync=s)) for s in SYNCS]
    runs += [
        (
            f"--window {pipe.default_window()} --sync {s}",
            lambda n, s=s: WindowOptions(window=pipe.default_window(), sync=s),
        )
        for s in SYNCS
    ]
    for label, w in runs:
        vals = []
        for size in sizes:
            opts = w(size)
            if opts is not None and pipe.plan(size, size, None, opts).window is None:
                vals.append(None)
                continue
            c = [synth_task.coherence_rmse(synthesize(pipe, (size, size), s, args.synth_steps, opts)) for s in seeds]
            vals.append(sum(c) / len(c))
        print(f"{label:<34}" + "".join(f"{'-':>10}" if v is None else f"{v:>10.4f}" for v in vals))
    print(f"# {time.perf_counter() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------- section 4


def run_guarded(cmd: list[str], env: dict, guard: int, timeout: float, log: Path) -> tuple[str, float, float]:
    """(status, wall s, peak RSS MB) of a child under RLIMIT_AS = guard bytes and a wall-clock timeout."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (guard, guard))

    t0 = time.perf_counter()
    with open(log, "w") as err:
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        status = None
        while True:
            pid, code, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                p.send_signal(signal.SIGKILL)
                pid, code, usage = os.wait4(p.pid, 0)
                status = f"timed out ({timeout:.0f} s)"
                break
            time.sleep(0.2)
        p.returncode = os.waitstatus_to_exitcode(code)
    wall = time.perf_counter() - t0
    if status is None:
        if p.returncode == 0:
            status = "ok"
        else:
            text = log.read_text(errors="replace")
            oom = any(k in text for k in ("MemoryError", "DefaultCPUAllocator", "not enough memory", "std::bad_alloc"))
            last = [ln.strip() for ln in text.splitlines() if ln.strip()]
            why = "memory guard" if oom else (last[-1][:60] if last else f"rc {p.returncode}")
            status = f"failed: {why}"
    return status, wall, usage.ru_maxrss / 1024


def section_memory(args, pipes) -> None:
    print("\n## 4. wall time and peak memory of `teamwork svbrdf` (CLI, fresh process per run)")
    exe = Path(sys.executable).with_name("teamwork")
    if not exe.is_file():
        print(f"# {exe} not found: skipped")
        return
    tmp = Path(tempfile.mkdtemp(prefix="tiling-bench-"))
    guard = int(args.guard_gb * 2**30)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    print(
        f"# photos: examples/wood_flash.png (256 px) resized bilinearly; --fit levels (default), --dtype "
        f"{args.dtype}; guard RLIMIT_AS {args.guard_gb:g} GB, timeout {args.timeout:.0f} s; one run each"
    )
    print(f"{'photo':<12}{'options':<30}{'status':<32}{'wall s':>9}{'peak MB':>10}")
    try:
        for size in args.sizes:
            src = tmp / f"photo{size}.png"
            write_map(src, read_map(EXAMPLES / "wood_flash.png", "image", size=(size, size)), "image", bits=8)
            for extra in (["--window", "512"], []):
                out = tmp / f"out{size}{'w' if extra else 'f'}"
                cmd = [str(exe), "svbrdf", str(src), "-o", str(out), "--dtype", args.dtype, *extra]
                status, wall, peak = run_guarded(cmd, env, guard, args.timeout, tmp / "stderr.txt")
                label = " ".join(extra) or "(defaults)"
                print(f"{f'{size}x{size}':<12}{label:<30}{status:<32}{wall:>9.1f}{peak:>10.0f}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ main


def cpu_kind() -> str:
    name = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = torch.cpu
    bf16 = getattr(cpu, "_is_avx512_bf16_supported", lambda: None)()
    amx = getattr(cpu, "_is_amx_tile_supported", lambda: None)()
    cap = torch.backends.cpu.get_cpu_capability()
    return f"{name}, {os.cpu_count()} cores visible, torch capability {cap}, AVX-512 BF16 {bf16}, AMX {amx}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument(
        "--shared",
        type=Path,
        default=ROOT.parent / "shared" / "data",
        help="the data folder holding materials-cc0/ and flash-photos/ (default ../shared/data)",
    )
    ap.add_argument("--dtype", default="auto", help="as teamwork --dtype: auto, fp32, bf16")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (CLI: OMP_NUM_THREADS)")
    ap.add_argument("--max-side", type=int, default=512, help="photos with a longer side above this are box-filtered")
    ap.add_argument("--synth-size", type=int, default=256)
    ap.add_argument("--synth-steps", type=int, default=16, help="synthesize steps (the CLI's default 16)")
    ap.add_argument("--seam-seeds", type=int, default=2, help="synthesize materials in section 1")
    ap.add_argument("--coherence-seeds", type=int, default=4, help="synthesize materials in section 3")
    ap.add_argument("--sizes", default="2048,4096", help="memory: photo sides")
    ap.add_argument("--guard-gb", type=float, default=8.0, help="memory: the child's address-space limit")
    ap.add_argument("--timeout", type=float, default=2400.0, help="memory: seconds per child")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SECTIONS]
    if bad:
        raise SystemExit(f"--sections: {', '.join(bad)} not among {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    cache: dict[str, TeamPipeline] = {}

    def pipes(name: str) -> TeamPipeline:
        if name not in cache:
            cache[name] = TeamPipeline.load(name, device="cpu", dtype=args.dtype)
        return cache[name]

    dt = pipes("svbrdf").autocast
    print(f"# CPU: {cpu_kind()}")
    print(
        f"# threads {torch.get_num_threads()}, --dtype {args.dtype} -> {'bf16 autocast' if dt else 'fp32'}; "
        f"torch {torch.__version__}; data {args.shared}{'' if args.shared.is_dir() else ' (missing)'}"
    )
    print(
        "# the shipped svbrdf, intrinsics and inpaint adapters are one-step: for them sync none and syncsde are "
        "the same computation (decoded windows blended), average fuses the latents"
    )
    data = args.shared
    photos, notes = photo_set(data, args.max_side)
    if "seams" in chosen:
        section_seams(args, pipes, data, photos, notes)
    if "windowed" in chosen:
        section_windowed(args, pipes, data)
    if "metrics" in chosen:
        section_metrics(args, pipes, data)
    if "memory" in chosen:
        section_memory(args, pipes)


if __name__ == "__main__":
    main()
