"""Write the bundled examples of intrinsics, inpaint, shade (examples/) from held-out procedural seeds.

    python scripts/make_examples.py

Seeds are at procedural.scenes.EVAL_SEED0 + 9000 and above: never drawn in training (training seeds lie below
EVAL_SEED0) nor by the benchmarks (EVAL_SEED0 + 0..3999). Deterministic: a rerun rewrites the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teamwork_cli.materials.write import write_map
from teamwork_cli.procedural import materials as P  # noqa: E402
from teamwork_cli.procedural import scenes as S  # noqa: E402
from teamwork_cli.training.task_data import random_mask  # noqa: E402

SEED = S.EVAL_SEED0 + 9000
OUT = ROOT / "examples"


def save(path: Path, channel: str, value: torch.Tensor, bits: int = 8) -> None:
    write_map(path, value.permute(1, 2, 0).numpy(), channel, bits=bits, overwrite=True)
    print(path.relative_to(ROOT))


def main() -> None:
    scene = S.generate([SEED], 128)  # a scene photo, random lighting: for intrinsics and inpaint
    save(OUT / "scene.png", "image", scene["image"][0].clamp(0, 1))
    mask = random_mask(128, torch.Generator().manual_seed(SEED))
    save(OUT / "scene_mask.png", "mask", mask)
    studio = S.generate([SEED + 1], 128, lighting="studio")  # shading buffers (and the true image, for checking)
    for c in ("albedo", "normals", "roughness", "metallic", "depth", "basecolor"):
        save(OUT / "buffers" / f"{c}.png", c, studio[c][0], bits=16)
    save(OUT / "buffers" / "truth_image.png", "image", studio["image"][0].clamp(0, 1))
    mat = P.generate([SEED + 2], 256, augment=False)  # a material with a scratch to remove from every map
    for c in ("diffuse", "specular", "roughness", "normals"):
        save(OUT / "material" / f"{c}.png", c, mat[c][0], bits=16)
    save(OUT / "material_mask.png", "mask", random_mask(256, torch.Generator().manual_seed(SEED + 2)))


if __name__ == "__main__":
    main()
