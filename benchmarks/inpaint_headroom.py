"""How much a smooth fill could still win over the harmonic fill, on the held-out inpainting set of tasks_quality.

    python benchmarks/inpaint_headroom.py [--count 16] [--size 128]

Rows (RMSE inside the mask, as `tasks_quality.py --tasks inpaint`): the harmonic fill; the harmonic fill of the
context blurred first, from known pixels only (normalized convolution, Knutsson & Westin 1993: a smoother guess,
the boundary's texture no longer leaks inwards); and an oracle that knows the missing pixels' local mean (the
true image blurred). Blurs are Gaussian, zero-padded and renormalized at the image border (no wrap-around).
If even the oracle's local mean is no better than the harmonic fill, what a learned fill can still win is
structure that continues across a hole (edges, silhouettes), not a better smooth guess.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch.nn.functional as F  # noqa: E402
from tasks_quality import MAPS, header, rmse, row  # noqa: E402

from teamwork_cli.core.encoding import encode  # noqa: E402
from teamwork_cli.graphics.holefill import harmonic_fill  # noqa: E402
from teamwork_cli.procedural import materials as P  # noqa: E402
from teamwork_cli.procedural import scenes as S  # noqa: E402
from teamwork_cli.training.task_data import random_masks  # noqa: E402


def blur(x: torch.Tensor, sigma: float, known: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian blur (sigma in pixels) of the known pixels of x (all if None), renormalized by their weight."""
    r = int(3 * sigma + 1)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    w = torch.ones_like(x[:, :1]) if known is None else known

    def conv(v: torch.Tensor) -> torch.Tensor:  # separable, zero padding, per channel
        c = v.shape[1]
        v = F.conv2d(v, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, r), groups=c)
        return F.conv2d(v, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(r, 0), groups=c)

    return conv(x * w) / conv(w).clamp_min(1e-8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    n, size = args.count, args.size
    masks = random_masks(n, size, torch.Generator().manual_seed(S.EVAL_SEED0))  # tasks_quality's held-out set
    photos = S.generate([S.EVAL_SEED0 + 1000 + i for i in range(n)], size)["photo"]
    mats = P.generate([S.EVAL_SEED0 + i for i in range(n)], size, augment=False)
    for name, truth in (
        ("inpaint (image)", {"image": photos}),
        ("inpaint-material (mean over maps)", {c: encode(c, mats[c]) for c in MAPS}),
    ):
        header(name, ["RMSE in mask"])
        fills = {"harmonic fill": lambda x: harmonic_fill(x, masks)}
        for px in (0.5, 1, 2, 3):
            fills[f"harmonic, context blurred {px} px"] = lambda x, s=px: harmonic_fill(blur(x, s, 1 - masks), masks)
        for px in (2, 4, 8, 16):
            fills[f"oracle: truth blurred {px} px"] = lambda x, s=px: blur(x, s)
        for label, fill in fills.items():
            row(label, [sum(rmse(fill(x), x, masks) for x in truth.values()) / len(truth)])


if __name__ == "__main__":
    main()
