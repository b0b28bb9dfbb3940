"""Can a network learn, on this machine's budget, a fill that beats the harmonic fill on RMSE?

    python benchmarks/inpaint_learnability.py [--steps 600] [--batch-size 8] [--threads 2]

A control for the inpainting rows of tasks_quality.py: not a Teamwork adapter but a plain convolutional U-Net
(Ronneberger et al. 2015; 1.2M parameters, trained from scratch) given the whole budget of a dedicated inpainting
network. It sees the hole's harmonic fill, the known pixels and the mask, predicts a correction inside the hole
only (zero-initialised, so it starts exactly at the harmonic fill), and is trained on the holes alone (MSE) on
procedural scene photos with training seeds and fresh random masks. It is scored every --eval-every steps on the
held-out set of `tasks_quality.py --tasks inpaint` (scene photos with seeds >= scenes.EVAL_SEED0, the same masks).
If this network cannot leave the harmonic fill's score, a rank-16 adapter on a frozen base at the same budget is
not expected to either.
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tasks_quality import rmse  # noqa: E402

from teamwork_cli import scenes as S  # noqa: E402
from teamwork_cli.holefill import harmonic_fill  # noqa: E402
from teamwork_cli.task_data import random_masks  # noqa: E402


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


class FillNet(nn.Module):
    """Four-level U-Net: (harmonic fill, known pixels, mask) -> harmonic fill + correction inside the mask."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        self.enc = nn.ModuleList([block(7, widths[0])] + [block(a, b) for a, b in pairwise(widths)])
        self.dec = nn.ModuleList([block(b + a, a) for a, b in pairwise(widths)])
        self.out = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, fill: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        skips = [self.enc[0](torch.cat([fill, image * (1 - mask), mask], 1))]
        for enc in self.enc[1:]:
            skips.append(enc(F.avg_pool2d(skips[-1], 2)))
        u = skips.pop()
        for dec in reversed(self.dec):
            u = dec(torch.cat([F.interpolate(u, scale_factor=2), skips.pop()], 1))
        return fill + self.out(u) * mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--size", type=int, default=128, help="held-out image size (a multiple of 8)")
    ap.add_argument("--train-size", type=int, default=None, help="training image size (default: --size); the "
                    "masks scale with the image, the network is convolutional")
    ap.add_argument("--count", type=int, default=16, help="held-out images")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, size = args.count, args.size
    masks = random_masks(n, size, torch.Generator().manual_seed(S.EVAL_SEED0))  # tasks_quality's held-out set
    photos = S.generate([S.EVAL_SEED0 + 1000 + i for i in range(n)], size)["photo"]
    fills = harmonic_fill(photos, masks)
    net = FillNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(1)

    def held_out() -> float:
        with torch.no_grad():
            return rmse(torch.cat([net(fills[i : i + 4], photos[i : i + 4], masks[i : i + 4])
                                   for i in range(0, n, 4)]), photos, masks)

    print(f"# {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters, batch {args.batch_size}, "
          f"{args.train_size or size} px, lr {args.lr}, {args.threads} thread(s); RMSE in mask on {n} held-out "
          f"scene photos at {size} px")
    print(f"harmonic fill{'':<19}{rmse(fills, photos, masks):.4f}")
    start, losses = time.time(), []
    for step in range(1, args.steps + 1):
        seeds = torch.randint(0, S.EVAL_SEED0, (args.batch_size,), generator=g).tolist()  # training seeds only
        x = S.generate(seeds, args.train_size or size)["photo"]
        m = random_masks(args.batch_size, args.train_size or size, g)
        loss = ((net(harmonic_fill(x, m), x, m) - x) ** 2 * m).sum() / (3 * m.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            train = sum(losses) / len(losses)
            losses = []
            print(f"network, step {step:<6} {held_out():.4f}   (train hole MSE {train:.4f}, "
                  f"{(time.time() - start) / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
