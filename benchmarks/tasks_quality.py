"""Quality of `teamwork intrinsics | inpaint | shade | synthesize` on held-out procedural data (and inpainting
also on the real data of ../shared/data, where it applies: the other tasks have no real ground truth there).

    python benchmarks/tasks_quality.py [--count 16] [--size 128] [--steps N] [--weights DIR] [--base B] [--shared S]

Held-out data: scenes and materials with seeds >= procedural.scenes.EVAL_SEED0 (10,000,000; training draws below
it), masks from a generator seeded with it. For each task: the shipped adapter (`<weights>/<preset>.safetensors`), its
coordination-off twin (`benchmarks/weights/<preset>-nocoord.safetensors`, same training budget) and simple
baselines; a missing adapter is reported as "not shipped" and skipped, baselines always run.

Metrics (lower is better except PSNR):
  intrinsics  albedo si-RMSE (linear albedo after the best per-image scale), shading si-RMSE (diffuse shading S,
              same), normal angular error (degrees, mean over pixels), depth si-RMSE (after the best per-image
              scale and shift: the output is relative depth). Baselines: constant shading (albedo = image, S = 1)
              and a Retinex-style split (S = a wide Gaussian blur of log luminance, Land & McCann 1971); both use
              normals facing the camera, and depth constant resp. growing towards the top of the image.
  inpaint     RMSE inside the mask (sRGB image / encoded maps), seam: RMSE of the jump across the mask border
              minus the true jump (pixel pairs straddling the border). Baseline: harmonic (membrane) fill,
              the classical diffusion inpainting (`holefill`: conjugate gradients, coarse to fine). Adapters run as
              `teamwork inpaint` does; a diffusion (generative) adapter also once with --no-keep-context.
              Real data (never trained on): the four flash photos, and the maps of the three dielectric CC0 sets
              (the six crops of svbrdf_quality.py), cut into --size tiles; masks drawn as for the held-out set.
  shade       PSNR (dB) of the sRGB image against the true render under the studio rig the shader learns
              (graphics.scene.STUDIO_KEY), given all buffers, and again without basecolor (metals then grey). Baselines:
              local shading of the buffers the shader gets (both ways), with the same rig and no shadows
              (`teamwork_cli.graphics.deferred`: a deferred renderer; relative depth made metric by a near-far range
              fitted on training scenes); local shading of the true 3D scene (an oracle that knows what the buffers
              lack: metric positions, field of view); albedo alone.
  synthesize  coherence RMSE: the generated image teammate against the flash render (docs/conventions.md 3) of the
              generated maps. Baseline: mismatched pairs (one held-out material's photo vs another's maps).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from teamwork_cli.core.conventions import srgb_to_linear  # noqa: E402
from teamwork_cli.core.encoding import encode  # noqa: E402
from teamwork_cli.graphics import render as R  # noqa: E402
from teamwork_cli.graphics.deferred import deferred_shading  # noqa: E402
from teamwork_cli.graphics.holefill import harmonic_fill  # noqa: E402
from teamwork_cli.models.embedded import EMBEDDED_DIR
from teamwork_cli.pipelines.team_pipeline import TeamPipeline
from teamwork_cli.procedural import materials as P  # noqa: E402
from teamwork_cli.procedural import scenes as S  # noqa: E402
from teamwork_cli.tasks import inpaint as inpaint_task  # noqa: E402
from teamwork_cli.tasks import intrinsics as intrinsics_task  # noqa: E402
from teamwork_cli.tasks import shade as shade_task  # noqa: E402
from teamwork_cli.tasks import synthesize as synth_task  # noqa: E402
from teamwork_cli.training.task_data import random_masks  # noqa: E402

MAPS = ("diffuse", "specular", "roughness", "normals")


# ----------------------------------------------------------------------------------------------- metrics


def si_rmse(pred: torch.Tensor, gt: torch.Tensor, shift: bool = False) -> float:
    """Mean over images of the RMSE after the least-squares scale (and shift) of pred onto gt."""
    errs = []
    for p, g in zip(pred.flatten(1), gt.flatten(1), strict=True):
        cols = [p, torch.ones_like(p)] if shift else [p]
        a = torch.stack(cols, 1).double()
        coef = torch.linalg.lstsq(a, g.double().unsqueeze(1), driver="gelsd").solution
        errs.append(((a @ coef).squeeze(1) - g.double()).pow(2).mean().sqrt().item())
    return sum(errs) / len(errs)


def angular_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    cos = (F.normalize(pred, dim=1) * F.normalize(gt, dim=1)).sum(1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos)).mean().item()


def rmse(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    d = (a - b) ** 2
    if where is None:
        return d.mean().sqrt().item()
    w = where.expand_as(d)
    return (d[w > 0.5].mean().sqrt().item()) if (w > 0.5).any() else float("nan")


def seam_error(result: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> float:
    """RMSE of (jump of result) - (jump of gt) over neighbouring pixel pairs with exactly one pixel masked."""
    errs = []
    for dim in (-1, -2):
        n = mask.shape[dim] - 1
        cross = (mask.narrow(dim, 0, n) != mask.narrow(dim, 1, n)).expand(-1, result.shape[1], -1, -1)
        diff = result - gt
        errs.append((diff.narrow(dim, 1, n) - diff.narrow(dim, 0, n))[cross])
    e = torch.cat(errs)
    return e.pow(2).mean().sqrt().item() if e.numel() else float("nan")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return (10 * torch.log10(1 / mse)).mean().item()


# --------------------------------------------------------------------------------------------- baselines


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = int(math.ceil(3 * sigma))
    t = torch.arange(-k, k + 1, dtype=x.dtype)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = (w / w.sum()).to(x)
    c = x.shape[1]
    x = F.pad(x, (k, k, k, k), mode="replicate")
    x = F.conv2d(x, w.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, w.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def retinex(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Albedo, shading: shading is the smooth part of log luminance (Land & McCann 1971, one wide scale)."""
    lum = (image * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True).clamp_min(1e-4)
    shading = torch.exp(gaussian_blur(torch.log(lum), image.shape[-1] / 16)).expand(-1, 3, -1, -1)
    return image / shading, shading  # not clipped at 1: the score fits the scale anyway


# ----------------------------------------------------------------------------------------------- methods


def load_methods(preset: str, weights: Path, base: str | None) -> dict[str, TeamPipeline]:
    """The shipped adapter and its coordination-off twin that exist (the others are reported as not shipped), and
    the diffusion adapter a shipped one-step estimator was continued from, where it is kept."""
    methods: dict[str, TeamPipeline] = {}
    for label, name in (
        ("teamwork (shipped)", preset),
        ("coordination off", f"{preset}-nocoord"),
        ("diffusion adapter (before one-step)", f"{preset}-diffusion"),
    ):
        path = weights / f"{name}.safetensors"
        if not path.is_file() and name.endswith("-nocoord"):  # the ablation twins are not in the package
            path = ROOT / "benchmarks" / "weights" / f"{name}.safetensors"
        if label.startswith("diffusion") and not path.is_file():
            continue
        if path.is_file():
            methods[label] = TeamPipeline.load(path, base=base, device="cpu")
        else:
            print(f"{label:<36}not shipped ({path.name}), skipped")
    return methods


def row(label: str, values: list[float]) -> None:
    print(f"{label:<36}" + "".join(f"{v:>16.4f}" for v in values))


def header(title: str, cols: list[str]) -> None:
    print(f"\n## {title}\n{'method':<36}" + "".join(f"{c:>16}" for c in cols))


def bench_intrinsics(args: argparse.Namespace) -> None:
    buf = S.generate([S.EVAL_SEED0 + i for i in range(args.count)], args.size)
    image = srgb_to_linear(buf["photo"])  # what the methods see: the stored photo
    ramp = torch.linspace(1, 0, args.size).view(1, 1, -1, 1).expand(args.count, 1, -1, args.size)
    flat = torch.zeros_like(image)
    flat[:, 2] = 1

    def scores(albedo, shading, normals, depth) -> list[float]:
        return [
            si_rmse(albedo, buf["albedo"]),
            si_rmse(shading, buf["diffuseshading"]),
            angular_error(normals, buf["normals"]),
            si_rmse(depth, buf["depth"], shift=True),
        ]

    header("intrinsics", ["albedo siRMSE", "shading siRMSE", "normals deg", "depth siRMSE"])
    row(
        "constant shading (albedo = image)",
        scores(image.clamp(0, 1), torch.ones_like(image), flat, torch.full_like(ramp, 0.5)),
    )
    albedo, shading = retinex(image)
    row("Retinex-style split", scores(albedo, shading, flat, ramp))
    for label, pipe in load_methods("intrinsics", args.weights, args.base).items():
        want = ["albedo", "diffuseshading", "normals", "depth"]
        have = intrinsics_task.available(pipe)
        if not set(want) <= set(have):
            print(f"{label:<36}lacks {', '.join(sorted(set(want) - set(have)))}, skipped")
            continue
        sizes = {1} if pipe.one_step else {1, *(int(e) for e in args.ensemble.split(","))}  # one-step: deterministic
        for k in sorted(sizes):  # as `teamwork intrinsics --ensemble k`
            est = intrinsics_task.estimate(pipe, buf["photo"], want, steps=args.steps, seed=0, ensemble=k)
            row(
                label + (f", ensemble {k}" if k > 1 else ""),
                scores(est["albedo"], est["diffuseshading"], est["normals"], est["depth"]),
            )


def real_inpaint_sets(shared: Path, size: int) -> list[tuple[str, str, dict[str, torch.Tensor]]]:
    """(preset, title, truth) on ../shared/data where it exists: the real flash photos, and the maps of the three
    dielectric CC0 sets (svbrdf_quality's six crops at 256 px), each cut into size x size tiles."""
    from svbrdf_quality import load_crops

    from teamwork_cli.materials.read import read_image

    def tiles(x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N * (H // size) * (W // size), C, size, size]
        c, h, w = x.shape[1:]
        x = x[..., : h - h % size, : w - w % size].unfold(2, size, size).unfold(3, size, size)
        return x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size)

    out = []
    photos = sorted((shared / "data/flash-photos").glob("*.png"))
    if photos:
        x = torch.cat([torch.from_numpy(read_image(f).pixels[..., :3]).permute(2, 0, 1)[None] for f in photos])
        out.append(("inpaint", f"{len(photos)} real flash photos (../shared)", {"image": tiles(x.float())}))
    if (shared / "data/materials-cc0").is_dir():
        crops = [maps for _, maps in load_crops(shared)]
        out.append(
            (
                "inpaint-material",
                f"{len(crops)} crops of 3 real CC0 materials (../shared)",
                {c: tiles(torch.cat([encode(c, m[c]) for m in crops])) for c in MAPS},
            )
        )
    return out


def bench_inpaint(args: argparse.Namespace) -> None:
    photos = S.generate([S.EVAL_SEED0 + 1000 + i for i in range(args.count)], args.size)["photo"]
    mats = P.generate([S.EVAL_SEED0 + i for i in range(args.count)], args.size, augment=False)
    sets = [
        ("inpaint", "held-out procedural", {"image": photos}),
        ("inpaint-material", "held-out procedural", {c: encode(c, mats[c]) for c in MAPS}),
        *real_inpaint_sets(args.shared, args.size),
    ]
    methods = {preset: load_methods(preset, args.weights, args.base) for preset in ("inpaint", "inpaint-material")}
    for preset, title, truth in sets:
        n = len(next(iter(truth.values())))
        masks = random_masks(n, args.size, torch.Generator().manual_seed(S.EVAL_SEED0))  # same draw on every set
        header(f"{preset}, {title}, {n} images (mean over {', '.join(truth)})", ["RMSE in mask", "seam"])

        def scores(filled: dict[str, torch.Tensor], truth=truth, masks=masks) -> list[float]:
            return [
                sum(rmse(filled[c], truth[c], masks) for c in truth) / len(truth),
                sum(seam_error(filled[c], truth[c], masks) for c in truth) / len(truth),
            ]

        row("harmonic (diffusion) fill", scores({c: harmonic_fill(x, masks) for c, x in truth.items()}))
        runs = [(label, pipe, True) for label, pipe in methods[preset].items()]
        for label, pipe in methods[preset].items():  # a sampled fill without holding the context while sampling
            if label != "coordination off" and not pipe.one_step:
                runs.append((label.split(" (")[0] + ", --no-keep-context", pipe, False))
        for label, pipe, keep in runs:
            filled = {c: torch.zeros_like(x) for c, x in truth.items()}
            for i in range(n):  # one mask per image
                out = inpaint_task.inpaint(
                    pipe,
                    {c: x[i : i + 1] for c, x in truth.items()},
                    masks[i : i + 1],
                    steps=args.steps,
                    seed=i,
                    keep_context=keep,
                )
                for c in truth:  # back to the encoded domain the truth is in
                    filled[c][i] = encode(c, out[c])[0]
            row(label, scores(filled))


def bench_shade(args: argparse.Namespace) -> None:
    seeds = [S.EVAL_SEED0 + 2000 + i for i in range(args.count)]
    buf = S.generate(seeds, args.size, lighting="studio")  # the rig the shader learns (graphics.scene.STUDIO_KEY)
    local = S.generate(seeds, args.size, shadows=False, lighting="studio")["photo"]
    header("shade", ["PSNR dB"])
    no_base = {c: v for c, v in buf.items() if c != "basecolor"}
    row("local shading of the buffers", [psnr(R.to_photo(deferred_shading(buf)), buf["photo"])])
    row("local shading, no basecolor", [psnr(R.to_photo(deferred_shading(no_base)), buf["photo"])])
    row("local shading, true 3D scene (oracle)", [psnr(local, buf["photo"])])
    row("albedo alone", [psnr(R.to_photo(buf["albedo"]), buf["photo"])])
    for label, pipe in load_methods("shade", args.weights, args.base).items():
        ins = shade_task.check_team(pipe)
        image = shade_task.shade(pipe, {c: encode(c, buf[c]) for c in ins}, steps=args.steps, seed=0)
        row(label, [psnr(R.to_photo(image), buf["photo"])])
        if "basecolor" in ins:  # as a user without glTF maps runs it
            image = shade_task.shade(
                pipe, {c: encode(c, buf[c]) for c in ins if c != "basecolor"}, steps=args.steps, seed=0
            )
            row(label.split(" (")[0] + ", no basecolor", [psnr(R.to_photo(image), buf["photo"])])


def bench_synthesize(args: argparse.Namespace) -> None:
    mats = P.generate([S.EVAL_SEED0 + 3000 + i for i in range(args.count + 1)], args.size, augment=False)
    header("synthesize", ["coherence RMSE"])
    shuffled = {m: mats[m][1:] for m in MAPS}
    shuffled["image"] = srgb_to_linear(mats["image"][:-1])
    row("mismatched pairs", [synth_task.coherence_rmse(shuffled)])
    for label, pipe in load_methods("synthesize", args.weights, args.base).items():
        gen = synth_task.synthesize(pipe, args.count, (args.size, args.size), steps=args.steps, seed=S.EVAL_SEED0)
        row(label, [sum(synth_task.coherence_rmse(m) for m in gen) / len(gen)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=16, help="held-out samples per task")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: each command's default)")
    ap.add_argument("--weights", type=Path, default=EMBEDDED_DIR, help="folder of <preset>.safetensors adapters")
    ap.add_argument("--base", default=None, help="base model of the adapters (default: their metadata)")
    ap.add_argument("--tasks", default="intrinsics,inpaint,shade,synthesize")
    ap.add_argument(
        "--shared",
        type=Path,
        default=ROOT.parent / "shared",
        help="inpaint: also score on the real photos and CC0 maps of SHARED/data where they exist",
    )
    ap.add_argument("--ensemble", default="2,4", help="intrinsics: also score these ensemble sizes (1 always)")
    args = ap.parse_args()
    tasks = {
        "intrinsics": (bench_intrinsics, 1),
        "inpaint": (bench_inpaint, 8),
        "shade": (bench_shade, 4),
        "synthesize": (bench_synthesize, 16),
    }
    print(
        f"# held-out seeds >= {S.EVAL_SEED0}; {args.count} samples per task at {args.size} px; "
        f"adapters from {args.weights}"
    )
    for name in args.tasks.split(","):
        if name not in tasks:
            raise SystemExit(f"--tasks: {name!r} is not one of {', '.join(tasks)}")
        fn, default_steps = tasks[name]
        fn(argparse.Namespace(**{**vars(args), "steps": args.steps or default_steps}))


if __name__ == "__main__":
    main()
