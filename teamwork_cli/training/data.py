"""Training data: a pool of procedural materials and on-the-fly augmented svbrdf batches.

Generating a material costs far more than rendering it, so training draws from a cached pool of materials and
makes each batch by random crops, scales, flips and transposes of pool materials, then renders the flash photo
of the transformed patch (docs/conventions.md section 3): every view is a valid patch with its own photo.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from teamwork_cli.core.encoding import encode
from teamwork_cli.graphics import render as R
from teamwork_cli.procedural import families as PF
from teamwork_cli.procedural import materials as P
from teamwork_cli.procedural import noise as PN

POOL_KEYS = ("basecolor", "metallic", "roughness", "normals")


def build_pool(
    count: int, size: int = 256, seed0: int = 0, chunk: int = 16, progress: Callable[[int, int], None] | None = None
) -> dict[str, Tensor]:
    """`count` procedural materials (seeds seed0 ...) stored as fp16 maps [count, C, size, size]."""
    parts: dict[str, list[Tensor]] = {k: [] for k in POOL_KEYS}
    for start in range(0, count, chunk):
        seeds = range(seed0 + start, seed0 + min(count, start + chunk))
        batch = P.generate(seeds, size, augment=False)
        for k in POOL_KEYS:
            parts[k].append(batch[k].half())
        if progress:
            progress(min(count, start + chunk), count)
    return {k: torch.cat(v) for k, v in parts.items()}


def generator_version() -> str:
    """A fingerprint of the generator's code, so a cached pool made by an older generator is rebuilt."""
    h = hashlib.sha1()
    for mod in (PN, PF, P, R):  # every module a pool material's maps depend on, in a fixed order
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:12]


def load_or_build_pool(
    path: str | Path, count: int, size: int = 256, seed0: int = 0, progress: Callable[[int, int], None] | None = None
) -> dict[str, Tensor]:
    path = Path(path)
    meta = [count, size, seed0, generator_version()]
    if path.is_file():
        pool = torch.load(path)
        if pool["meta"] == meta:
            return {k: pool[k] for k in POOL_KEYS}
    pool = build_pool(count, size, seed0, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name per process: two jobs started together (an adapter and its twin) both build the pool; each renames
    # its own complete file into place, and the last rename wins with identical contents.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({**pool, "meta": meta}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return pool


def _transform(maps: dict[str, Tensor], flip_x: bool, flip_y: bool, transpose: bool) -> dict[str, Tensor]:
    """Flip/transpose maps, turning the normals with the patch (x right, y up: rows run along -y)."""
    out = {}
    for k, v in maps.items():
        if flip_x:
            v = v.flip(-1)
        if flip_y:
            v = v.flip(-2)
        if transpose:
            v = v.transpose(-2, -1)
        out[k] = v
    n = out["normals"]
    nx, ny, nz = n[:, 0], n[:, 1], n[:, 2]
    if flip_x:
        nx = -nx
    if flip_y:
        ny = -ny
    if transpose:  # (x, y) -> (-y, -x)
        nx, ny = -ny, -nx
    out["normals"] = torch.stack([nx, ny, nz], 1)
    return out


def svbrdf_views(
    pool: dict[str, Tensor],
    batch_size: int,
    size: int,
    generator: torch.Generator,
    fov_deg: float = 45.0,
    augment: bool = True,
) -> dict[str, Tensor]:
    """A batch of random views of pool materials with their flash photos, maps in value domain.

    A view is a square window of side s in [size, pool size] (wrapped: pool maps tile) resampled to `size`, so
    the model sees each material at several physical scales, with the flash highlight at the patch centre.
    """
    n, _, full, _ = pool["basecolor"].shape
    idx = torch.randint(0, n, (batch_size,), generator=generator)
    views: dict[str, list[Tensor]] = {k: [] for k in POOL_KEYS}
    for i in idx.tolist():
        side = int(torch.randint(min(size, full), full + 1, (1,), generator=generator))
        oy, ox = (int(v) for v in torch.randint(0, full, (2,), generator=generator))
        for k in POOL_KEYS:
            m = torch.roll(pool[k][i : i + 1].float(), (-oy, -ox), dims=(-2, -1))[..., :side, :side]
            if side != size:  # a training size above the pool's upsamples its windows
                m = F.interpolate(m, size=(size, size), mode="area" if side > size else "bilinear")
            views[k].append(m)
    maps = {k: torch.cat(v) for k, v in views.items()}
    fx, fy, tr = (bool(b) for b in torch.randint(0, 2, (3,), generator=generator))
    maps = _transform(maps, fx, fy, tr)
    maps["normals"] = F.normalize(maps["normals"], dim=1)
    base, metal = maps.pop("basecolor"), maps.pop("metallic")
    maps["diffuse"] = base * (1 - metal)
    maps["specular"] = 0.04 * (1 - metal) + base * metal
    radiance = R.render_flash(maps["diffuse"], maps["specular"], maps["roughness"], maps["normals"], fov_deg=fov_deg)
    if augment:  # real photos vary in exposure and sensor noise
        gain = torch.empty(batch_size, 1, 1, 1).uniform_(0.7, 1.3, generator=generator)
        sigma = torch.exp(
            torch.empty(batch_size, 1, 1, 1).uniform_(math.log(0.002), math.log(0.02), generator=generator)
        )
        photo = R.to_photo(radiance * gain)
        noise = torch.randn(photo.shape, generator=generator)
        maps["image"] = (photo + sigma * noise).clamp(0, 1)
    else:
        maps["image"] = R.to_photo(radiance)
    hw = R.halfway_map(size, size, fov_deg)
    maps["halfway"] = hw.unsqueeze(0).expand(batch_size, -1, -1, -1)
    return maps


def encoded_views(
    pool: dict[str, Tensor], batch_size: int, size: int, generator: torch.Generator, **kwargs
) -> dict[str, Tensor]:
    """`svbrdf_views` in file encoding ([0, 1], as PNG files hold them): what folder datasets give too."""
    views = svbrdf_views(pool, batch_size, size, generator, **kwargs)
    out = {k: encode(k, v) for k, v in views.items() if k != "image"}
    out["image"] = views["image"]  # already what a camera stores
    return out


class FolderSource:
    """Training samples from `DIR/<sample>/<channel>.<ext>`; a sample may lack channels (inactive teammates).

    Files are decoded once and kept in memory as their [0, 1] file encoding; each draw takes a random square
    crop (the same window for all channels of a sample), resized to `size` if the sample is smaller.
    """

    def __init__(self, root: str | Path, channels: list[str], size: int, outputs: list[str] | None = None) -> None:
        """outputs: the team's output channels; a sample with none of them teaches nothing and is skipped, with a
        warning naming it (found here, not at the step that first draws it)."""
        from teamwork_cli.materials.files import SUPPORTED_READ

        self.root, self.channels, self.size = Path(root), channels, size
        if not self.root.is_dir():
            raise FileNotFoundError(f"--data {root}: not a folder (expected DIR/<sample>/<channel>.<ext>)")
        self.samples: list[dict[str, Path]] = []
        skipped: list[str] = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in SUPPORTED_READ}
            found = {c: files[c] for c in channels if c in files}
            if found and outputs is not None and not set(found) & set(outputs):
                skipped.append(d.name)
            elif found:
                self.samples.append(found)
        if skipped:
            warnings.warn(
                f"--data {root}: {len(skipped)} sample(s) without any output channel of the team "
                f"({', '.join(outputs or [])}) skipped: {', '.join(skipped[:5])}"
                + (", ..." if len(skipped) > 5 else ""),
                stacklevel=2,
            )
        if not self.samples:
            raise ValueError(
                f"--data {root}: no sample folder holds "
                + (
                    f"any output channel ({', '.join(outputs)})"
                    if skipped and outputs
                    else f"any of the channels {', '.join(channels)}"
                )
                + " (expected DIR/<sample>/<channel>.<png|jpg|exr|tif>)"
            )
        self._cache: dict[tuple[int, str], Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, i: int, channel: str) -> Tensor:
        key = (i, channel)
        if key not in self._cache:
            from teamwork_cli.materials.read import read_map

            value = torch.from_numpy(read_map(self.samples[i][channel], channel)).permute(2, 0, 1)
            self._cache[key] = encode(channel, value.unsqueeze(0))[0].half()
        return self._cache[key]

    def __call__(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        from teamwork_cli.core.channels import channel_spec

        s = self.size
        out = {c: torch.full((batch_size, channel_spec(c).components, s, s), float("nan")) for c in self.channels}
        for b in range(batch_size):
            i = int(torch.randint(0, len(self.samples), (1,), generator=generator))
            maps = {c: self._load(i, c) for c in self.samples[i]}
            # Maps of one sample at different resolutions cover the same surface: bring them to the largest size
            # so that one pixel window is the same region in every map.
            h = max(m.shape[-2] for m in maps.values())
            w = max(m.shape[-1] for m in maps.values())
            maps = {
                c: m
                if m.shape[-2:] == (h, w)
                else F.interpolate(m[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
                for c, m in maps.items()
            }
            side = min(h, w)
            oy = int(torch.randint(0, h - side + 1, (1,), generator=generator))
            ox = int(torch.randint(0, w - side + 1, (1,), generator=generator))
            for c, m in maps.items():
                crop = m[None, :, oy : oy + side, ox : ox + side].float()
                if side != s:
                    crop = F.interpolate(crop, size=(s, s), mode="area" if side > s else "bilinear")
                out[c][b] = crop[0]
        return out
