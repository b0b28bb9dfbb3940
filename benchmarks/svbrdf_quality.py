"""Quality of `teamwork svbrdf` on real CC0 materials (docs/conventions.md section 4) and real flash photos.

    python benchmarks/svbrdf_quality.py [--adapter A --nocoord B --steps 1 --resolution N]

Renders two 512 px crops of each dielectric set in ../shared/data/materials-cc0 (box-filtered to 256 px) under
the colocated flash, estimates maps from the photo, and prints per-map and render RMSE for the shipped adapter,
its coordination-off twin (same training budget) and the naive baseline, each alone and followed by each of the
two photo fits of `teamwork svbrdf --fit` (`teamwork_cli.graphics.flashfit`): `diffuse` (the diffuse map solved per
pixel from the photo given the other maps) and `levels` (the default: global levels fitted first, then that). The naive
rows + fits are the control: they show what a fit does without the network. Then the re-render RMSE on the real
flash photos in ../shared/data/flash-photos (estimate rendered under the same flash vs the photo), without a fit: a
fit solves diffuse from the photo, so its re-render matches the photo by construction and would measure nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teamwork_cli.core.conventions import decode_normals, srgb_to_linear  # noqa: E402
from teamwork_cli.graphics import flashfit  # noqa: E402
from teamwork_cli.graphics import render as R  # noqa: E402
from teamwork_cli.materials.read import read_image
from teamwork_cli.models.hub.resolve import default_adapter
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.tasks import svbrdf as task  # noqa: E402

SETS = ("factory_wall", "stone_floor", "defense_wall")
MAPS = ("diffuse", "specular", "roughness", "normals")


def load_crops(shared: Path) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Two 512 px crops (top-left, bottom-right) of each set, box-filtered to 256 px, in value domain."""
    out = []
    for name in SETS:
        d = shared / "data/materials-cc0" / name
        img = {
            k: torch.from_numpy(read_image(d / f"{f}.jpg").pixels).permute(2, 0, 1)[None]
            for k, f in (("basecolor", "basecolor"), ("normals", "normal_opengl"), ("roughness", "roughness"))
        }
        for tag, (y, x) in (("a", (0, 0)), ("b", (512, 512))):
            c = {k: F.avg_pool2d(v[..., y : y + 512, x : x + 512], 2) for k, v in img.items()}
            maps = {
                "diffuse": srgb_to_linear(c["basecolor"][:, :3]),
                "specular": torch.full_like(c["basecolor"][:, :3], 0.04),
                "roughness": c["roughness"][:, :3].mean(1, keepdim=True),
                "normals": decode_normals(c["normals"][:, :3], axis=1),
            }
            out.append((f"{name}/{tag}", maps))
    return out


def naive(photo_linear: torch.Tensor) -> dict[str, torch.Tensor]:
    n = torch.zeros_like(photo_linear)
    n[:, 2] = 1
    return {
        "diffuse": photo_linear,
        "specular": torch.full_like(photo_linear, 0.04),
        "roughness": torch.full_like(photo_linear[:, :1], 0.5),
        "normals": n,
    }


def scores(pred: dict, gt: dict) -> dict[str, float]:
    s = {m: R.map_rmse(pred, gt, m) for m in MAPS}
    s["render"] = R.render_rmse(pred, gt)
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--adapter", default=str(default_adapter("svbrdf")))
    ap.add_argument("--nocoord", default=str(ROOT / "benchmarks" / "weights" / "svbrdf-nocoord.safetensors"))
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="auto", help="as teamwork svbrdf --dtype")
    ap.add_argument("--ensemble", type=int, default=2, help="as teamwork svbrdf --ensemble (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    shared = Path(args.shared)
    crops = load_crops(shared)
    methods = {"naive baseline": None}
    for label, path in (("teamwork (shipped)", args.adapter), ("coordination off", args.nocoord)):
        if Path(path).is_file():
            methods[label] = TeamPipeline.load(path, device="cpu", dtype=args.dtype)
        else:
            print(f"# {label}: {path} not found, skipped", file=sys.stderr)
    one = [label for label, pipe in methods.items() if pipe is not None and pipe.one_step]
    if one:  # deterministic: `teamwork svbrdf` runs them once whatever --ensemble says
        print(f"# one-step adapters (1 pass, no noise, no ensemble): {', '.join(one)}")
    print(
        f"# steps={args.steps} ensemble={args.ensemble} resolution={args.resolution or 'input'} seed={args.seed}; "
        f"{len(crops)} crops of {', '.join(SETS)} at 256 px"
    )
    header = f"{'method':<34}" + "".join(f"{m:>11}" for m in (*MAPS, "render"))
    print(header)
    for label, pipe in methods.items():
        rows: dict[str, list[dict[str, float]]] = {label: [], f"{label} + fit diffuse": [], f"{label} + fit levels": []}
        for _, gt in crops:
            photo = R.to_photo(R.render_flash(*(gt[m] for m in MAPS)))
            if pipe is None:
                pred = naive(srgb_to_linear(photo))
            else:
                pred = task.estimate(
                    pipe, photo, steps=args.steps, seed=args.seed, resolution=args.resolution, ensemble=args.ensemble
                )
            rows[label].append(scores(pred, gt))
            # The post-processes of `teamwork svbrdf --fit diffuse|levels`, on every method alike.
            rows[f"{label} + fit diffuse"].append(scores(flashfit.demodulate_diffuse(pred, photo), gt))
            fitted = flashfit.demodulate_diffuse(flashfit.fit_levels(pred, photo), photo)
            rows[f"{label} + fit levels"].append(scores(fitted, gt))
        for name, rr in rows.items():
            mean = {k: sum(r[k] for r in rr) / len(rr) for k in rr[0]}
            print(f"{name:<34}" + "".join(f"{mean[k]:>11.4f}" for k in (*MAPS, "render")))
    photos = sorted((shared / "data/flash-photos").glob("*.png"))
    if photos:
        print("\n# re-render RMSE on real flash photos (sRGB, estimate under the same flash vs the photo)")
        for label, pipe in methods.items():
            errs = []
            for p in photos:
                photo = torch.from_numpy(read_image(p).pixels[..., :3]).permute(2, 0, 1)[None]
                if pipe is None:
                    pred = naive(srgb_to_linear(photo))
                else:
                    pred = task.estimate(
                        pipe,
                        photo,
                        steps=args.steps,
                        seed=args.seed,
                        resolution=args.resolution,
                        ensemble=args.ensemble,
                    )
                rerender = R.to_photo(R.render_flash(*(pred[m] for m in MAPS)))
                errs.append(((rerender - photo) ** 2).mean().sqrt().item())
            print(f"{label:<22}{sum(errs) / len(errs):>11.4f}   " + " ".join(f"{e:.4f}" for e in errs))


if __name__ == "__main__":
    main()
