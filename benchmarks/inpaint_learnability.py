"""Can a network learn, at a CPU training budget, a fill that beats the harmonic fill on RMSE?

    python benchmarks/inpaint_learnability.py [--steps 600] [--batch-size 8] [--threads 2]

A control for the inpainting rows of tasks_quality.py: not a Teamwork adapter but a plain convolutional U-Net
(Ronneberger et al. 2015; 1.2M parameters, trained from scratch) given the whole budget of a dedicated inpainting
network. It sees the hole's harmonic fill, the known pixels and the mask, predicts a correction inside the hole
only (zero-initialised, so it starts exactly at the harmonic fill), and is trained on the holes alone (MSE) on
procedural scene photos with training seeds and fresh random masks. It is scored every --eval-every steps on the
held-out set of `tasks_quality.py --tasks inpaint` (scene photos, seeds >= procedural.scenes.EVAL_SEED0, same masks).
If this network cannot leave the harmonic fill's score, a rank-16 adapter on a frozen base at the same budget is
not expected to either.

--target flat trains towards a target with the texture taken out: the harmonic fill plus the structure the
texture-free scene has in the hole, (flat render) - (harmonic fill of the flat render), where the flat render is the
same scene with every surface's maps replaced by their means (same layout, lights and exposure). That correction is
a function of geometry and lighting alone, so its gradient is free of the texture noise a fill cannot know; on the
held-out set it would score as printed on the "oracle" line. The held-out RMSE against this target is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from teamwork_cli.graphics.holefill import harmonic_fill  # noqa: E402
from teamwork_cli.graphics.render import to_photo  # noqa: E402
from teamwork_cli.procedural import scenes as S  # noqa: E402
from teamwork_cli.training.task_data import random_masks  # noqa: E402


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


def photos_and_flat(seeds: list[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scene photos (procedural.scenes.generate) and the same scenes with flat materials, one exposure each."""

    def flat(maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {k: v.mean((1, 2), keepdim=True).expand_as(v).clone() for k, v in maps.items()}
        out["normals"] = torch.zeros_like(maps["normals"])
        out["normals"][2] = 1
        return out

    photos, flats = [], []
    for seed in seeds:
        scene = dataclasses.replace(S.sample_scene(seed), gain=1.0)
        plain = dataclasses.replace(
            scene, surfaces=[dataclasses.replace(f, material=flat(f.material)) for f in scene.surfaces]
        )
        image, image_flat = S.render_scene(scene, size)["image"], S.render_scene(plain, size)["image"]
        # render_scene's auto exposure, from the textured image, applied to both
        lum = image.permute(1, 2, 0).reshape(-1, 3) @ torch.tensor([0.2126, 0.7152, 0.0722])
        k = S.sample_scene(seed).exposure / torch.quantile(lum, 0.97).clamp_min(1e-6)
        photos.append(to_photo(image * k))
        flats.append(to_photo(image_flat * k))
    return torch.stack(photos), torch.stack(flats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--size", type=int, default=128, help="held-out image size (a multiple of 8)")
    ap.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="training image size (default: --size); the masks scale with the image, the network is convolutional",
    )
    ap.add_argument("--count", type=int, default=16, help="held-out images")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--target", choices=("truth", "flat"), default="truth", help="what the hole is trained towards (see above)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, size = args.count, args.size
    masks = random_masks(n, size, torch.Generator().manual_seed(S.EVAL_SEED0))  # tasks_quality's held-out set
    photos, flats = photos_and_flat([S.EVAL_SEED0 + 1000 + i for i in range(n)], size)
    assert torch.allclose(photos[:1], S.generate(S.EVAL_SEED0 + 1000, size)["photo"], atol=1e-5)
    fills = harmonic_fill(photos, masks)
    flat_target = fills + flats - harmonic_fill(flats, masks)
    net = FillNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(1)

    def held_out() -> str:
        with torch.no_grad():
            pred = torch.cat([net(fills[i : i + 4], photos[i : i + 4], masks[i : i + 4]) for i in range(0, n, 4)])
        return f"{rmse(pred, photos, masks):.4f}   (vs the flat target {rmse(pred, flat_target, masks):.4f})"

    print(
        f"# {sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters, batch {args.batch_size}, "
        f"{args.train_size or size} px, lr {args.lr}, {args.threads} thread(s); RMSE in mask on {n} held-out "
        f"scene photos at {size} px"
    )
    print(
        f"harmonic fill{'':<19}{rmse(fills, photos, masks):.4f}   (vs the flat target "
        f"{rmse(fills, flat_target, masks):.4f})"
    )
    print(f"oracle: the flat target{'':<9}{rmse(flat_target, photos, masks):.4f}")
    start, losses = time.time(), []
    for step in range(1, args.steps + 1):
        seeds = torch.randint(0, S.EVAL_SEED0, (args.batch_size,), generator=g).tolist()  # training seeds only
        if args.target == "truth":
            x = x_flat = S.generate(seeds, args.train_size or size)["photo"]
        else:
            x, x_flat = photos_and_flat(seeds, args.train_size or size)
        m = random_masks(args.batch_size, args.train_size or size, g)
        fill = harmonic_fill(x, m)
        target = fill + x_flat - harmonic_fill(x_flat, m)  # the truth itself when x_flat is x
        loss = ((net(fill, x, m) - target) ** 2 * m).sum() / (3 * m.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            train = sum(losses) / len(losses)
            losses = []
            print(
                f"network, step {step:<6} {held_out()}   (train hole MSE {train:.4f}, "
                f"{(time.time() - start) / 60:.1f} min)",
                flush=True,
            )


if __name__ == "__main__":
    main()
