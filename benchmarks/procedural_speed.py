"""Speed of the procedural material generator, plus a contact sheet to judge its realism by eye.

    python benchmarks/procedural_speed.py [--size 256] [--batch 16] [--out out/procedural_sheet.png]

Prints samples per minute (batched, after a warm-up batch) and writes a PNG whose columns are 16 random
materials and whose rows are: flash photo, diffuse, specular, roughness, normals (sRGB colours, (n+1)/2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from teamwork_cli.procedural import materials as procedural


def _srgb(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8) ** (1 / 2.4) - 0.055)


def sheet_rows(batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Display rows [B, 3, H, W] in [0, 1]: photo, diffuse, specular, roughness, normals."""
    return [
        batch["image"],
        _srgb(batch["diffuse"]),
        _srgb(batch["specular"]),
        batch["roughness"].expand(-1, 3, -1, -1),
        (batch["normals"] + 1) / 2,
    ]


def save_sheet(rows: list[torch.Tensor], path: Path, pad: int = 2) -> None:
    b, _, h, w = rows[0].shape
    canvas = np.ones((len(rows) * (h + pad), b * (w + pad), 3), dtype=np.uint8) * 255
    for i, row in enumerate(rows):
        for j in range(b):
            img = (row[j].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
            canvas[i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = img
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(canvas).save(tmp)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None, help="first seed of the sheet (default: random)")
    ap.add_argument("--out", type=Path, default=Path("out/procedural_sheet.png"))
    args = ap.parse_args()

    procedural.generate(range(10**6, 10**6 + args.batch), args.size)  # warm-up (allocations, FFT plans)
    t0 = time.perf_counter()
    for k in range(args.batches):
        procedural.generate(range(k * args.batch, (k + 1) * args.batch), args.size)
    dt = time.perf_counter() - t0
    n = args.batches * args.batch
    print(
        f"procedural.generate: {n} samples at {args.size}px in {dt:.2f} s "
        f"-> {60 * n / dt:.0f} samples/min (batch {args.batch}, {torch.get_num_threads()} threads)"
    )

    seed = int(torch.randint(0, 2**31, ())) if args.seed is None else args.seed
    batch = procedural.generate(range(seed, seed + 16), args.size)
    save_sheet(sheet_rows(batch), args.out)
    print(f"contact sheet (seeds {seed}..{seed + 15}): {args.out}")


if __name__ == "__main__":
    main()
