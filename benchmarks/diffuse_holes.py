"""Holes in `teamwork svbrdf`'s diffuse map: pixels much darker than their neighbourhood, on real flash photos.

    python benchmarks/diffuse_holes.py [--shared DIR] [--fits none diffuse levels]

For the bundled examples/wood_flash.png and the real flash photos in DIR/data/flash-photos, runs the shipped
svbrdf adapter (`teamwork_cli.tasks.svbrdf.estimate`, as `teamwork svbrdf --fit F` does) and prints, per photo and
fit, the share of diffuse pixels darker than a fifth of the median of their 16 x 16 px neighbourhood (luminance
of the linear diffuse) and the share that is pure black (all channels below 1/1000). In Blender such pixels
render as holes under a side light. The CC0 render RMSE (`svbrdf_quality.py`) says whether a change costs accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teamwork_cli.materials.read import read_image  # noqa: E402
from teamwork_cli.models.hub.resolve import default_adapter  # noqa: E402
from teamwork_cli.pipelines.team_pipeline import TeamPipeline  # noqa: E402
from teamwork_cli.tasks import svbrdf as task  # noqa: E402

LUMA = torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)  # Rec. 709 luminance of linear RGB


def local_median(x: torch.Tensor, size: int = 16) -> torch.Tensor:
    """The median of each pixel's size x size neighbourhood (edges replicated), [N, 1, H, W]."""
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(x, (lo, hi, lo, hi), mode="replicate")
    patches = padded.unfold(2, size, 1).unfold(3, size, 1)  # N, 1, H, W, size, size
    return patches.reshape(*patches.shape[:4], -1).median(-1).values


def hole_shares(diffuse: torch.Tensor) -> tuple[float, float]:
    """(share darker than a fifth of the 16 px neighbourhood's median, share pure black) of [N, 3, H, W]."""
    y = (diffuse.float() * LUMA).sum(1, keepdim=True)
    dark = (y < 0.2 * local_median(y)).float().mean().item()
    black = (diffuse.float() < 1e-3).all(1).float().mean().item()
    return dark, black


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--adapter", default=str(default_adapter("svbrdf")))
    ap.add_argument("--fits", nargs="+", default=list(task.FITS), choices=task.FITS)
    args = ap.parse_args()
    photos = [ROOT / "examples/wood_flash.png", *sorted((Path(args.shared) / "data/flash-photos").glob("*.png"))]
    pipe = TeamPipeline.load(args.adapter, device="cpu")
    print("# share of diffuse pixels darker than 1/5 of their 16 px neighbourhood's median (black: all < 1e-3)")
    print(f"{'photo':<28}" + "".join(f"{'fit ' + f:>20}" for f in args.fits))
    totals = {f: [0.0, 0.0] for f in args.fits}
    seen: list[torch.Tensor] = []
    for path in photos:
        photo = torch.from_numpy(read_image(path).pixels[..., :3].copy()).permute(2, 0, 1)[None]
        if any(p.shape == photo.shape and torch.equal(p, photo) for p in seen):
            print(f"{path.name:<28}the same photo as one above, skipped")
            continue
        seen.append(photo)
        cells = []
        for fit in args.fits:
            dark, black = hole_shares(task.estimate(pipe, photo, fit=fit)["diffuse"])
            totals[fit][0] += dark
            totals[fit][1] += black
            cells.append(f"{100 * dark:7.2f}% ({100 * black:5.2f}%)")
        print(f"{path.name:<28}" + "".join(f"{c:>20}" for c in cells), flush=True)
    n = len(seen)
    print(f"{'mean':<28}" + "".join(f"{100 * d / n:7.2f}% ({100 * b / n:5.2f}%)".rjust(20) for d, b in totals.values()))


if __name__ == "__main__":
    main()
