"""Tile images side by side with a caption under each, for the contact sheets of docs/embedded-model.md.

    python scripts/tile.py -o docs/sheet.jpg [--height 192] [--columns 6] caption=path.png ...

Files are shown as stored (their encoding, e.g. sRGB or (n+1)/2), grey ones as grey; EXR values are clipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teamwork_cli.materials.read import read_image

CAPTION = 18


def tile(path: Path, caption: str, height: int) -> Image.Image:
    px = read_image(path).pixels
    px = np.repeat(px, 3, axis=2) if px.shape[2] == 1 else px[..., :3]
    img = Image.fromarray((np.clip(px, 0, 1) * 255 + 0.5).astype(np.uint8))
    width = round(img.width * height / img.height)
    img = img.resize((width, height), Image.NEAREST if img.height < height else Image.LANCZOS)
    out = Image.new("RGB", (width, height + CAPTION), "white")
    out.paste(img, (0, 0))
    ImageDraw.Draw(out).text((4, height + 3), caption, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", nargs="+", help="caption=path")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--columns", type=int, default=6)
    args = ap.parse_args()
    tiles = [tile(Path(p), c, args.height) for c, p in (item.split("=", 1) for item in args.items)]
    rows = [tiles[i : i + args.columns] for i in range(0, len(tiles), args.columns)]
    width = max(sum(t.width for t in r) + 4 * (len(r) - 1) for r in rows)
    sheet = Image.new("RGB", (width, sum(r[0].height for r in rows) + 4 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        x = 0
        for t in r:
            sheet.paste(t, (x, y))
            x += t.width + 4
        y += r[0].height + 4
    sheet.save(args.out, quality=90)
    print(args.out)


if __name__ == "__main__":
    main()
