"""Where the render error of `teamwork svbrdf` comes from, on the real CC0 crops of svbrdf_quality.py.

    python benchmarks/svbrdf_diagnose.py [--adapter A] [--ensemble 4] [--procedural 8]

Replaces one estimated map at a time by the ground truth (or the dielectric specular 0.04, or flat normals) and
prints the render RMSE (docs/conventions.md section 4) of each; then, on held-out procedural materials (seeds >=
10_000_000, never trained on), how the estimated mean roughness and specular follow the truth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from svbrdf_quality import MAPS, load_crops  # noqa: E402

from teamwork_cli.graphics import render as R  # noqa: E402
from teamwork_cli.models.hub.resolve import default_adapter
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.procedural import materials as P  # noqa: E402
from teamwork_cli.tasks import svbrdf as task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parents[1] / "shared"))
    ap.add_argument("--adapter", default=str(default_adapter("svbrdf")))
    ap.add_argument("--ensemble", type=int, default=4)
    ap.add_argument("--procedural", type=int, default=8)
    args = ap.parse_args()
    pipe = TeamPipeline.load(args.adapter, device="cpu")
    rows: dict[str, list[float]] = {}
    print(f"{'crop':<16}{'est. rough':>11}{'true rough':>11}{'est. spec':>10}")
    for name, gt in load_crops(Path(args.shared)):
        photo = R.to_photo(R.render_flash(*(gt[m] for m in MAPS)))
        est = task.estimate(pipe, photo, ensemble=args.ensemble)
        est = {m: est[m] for m in MAPS}
        flat = torch.zeros_like(gt["normals"])
        flat[:, 2] = 1
        spec = torch.full_like(est["specular"], 0.04)
        variants = {
            "estimate": est,
            "specular = 0.04": {**est, "specular": spec},
            "roughness = truth": {**est, "roughness": gt["roughness"]},
            "diffuse = truth": {**est, "diffuse": gt["diffuse"]},
            "normals flat": {**est, "normals": flat},
            "normals = truth": {**est, "normals": gt["normals"]},
            "spec 0.04 + rough truth": {**est, "specular": spec, "roughness": gt["roughness"]},
        }
        for k, v in variants.items():
            rows.setdefault(k, []).append(R.render_rmse(v, gt))
        print(
            f"{name:<16}{est['roughness'].mean():>11.3f}{gt['roughness'].mean():>11.3f}{est['specular'].mean():>10.3f}"
        )
    print(f"\n{'estimate with':<26}{'render RMSE':>12}")
    for k, v in rows.items():
        print(f"{k:<26}{sum(v) / len(v):>12.4f}")
    if args.procedural:
        b = P.generate(range(10_000_000, 10_000_000 + args.procedural), 128, augment=False)
        est = task.estimate(pipe, b["image"], ensemble=args.ensemble)
        t, e = b["roughness"].mean((1, 2, 3)), est["roughness"].mean((1, 2, 3))
        ts, es = b["specular"].mean((1, 2, 3)), est["specular"].mean((1, 2, 3))
        corr = torch.corrcoef(torch.stack([t, e]))[0, 1].item()
        print(
            f"\nheld-out procedural (n={args.procedural}): mean roughness true {t.mean():.3f} (std {t.std():.3f}), "
            f"estimated {e.mean():.3f} (std {e.std():.3f}), correlation {corr:.2f}; "
            f"mean specular true {ts.mean():.3f}, estimated {es.mean():.3f}"
        )


if __name__ == "__main__":
    main()
