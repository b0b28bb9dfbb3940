"""Pretrain the embedded base model on procedural materials (rectified flow, unconditional).

    python -m teamwork_cli.training.pretrain --steps 2400 --out teamwork_cli/weights/base

Every row of a batch is one map of a random view of a pool material (the flash photo, diffuse, specular,
roughness or normals, in its file encoding), so the base learns the look of every material channel that the
Teamwork adapters later tie together.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from teamwork_cli.core.encoding import encode, to_model
from teamwork_cli.models.embedded import DEFAULT_CONFIG, EmbeddedDenoiser
from teamwork_cli.training.data import load_or_build_pool, svbrdf_views
from teamwork_cli.training.loop import TrainConfig, train

CHANNELS = ("image", "diffuse", "specular", "roughness", "normals")


def base_loss(pool: dict[str, Tensor], size: int, batch_size: int):
    def loss_fn(model: EmbeddedDenoiser, g: torch.Generator) -> Tensor:
        views = svbrdf_views(pool, batch_size, size, g)
        pick = torch.randint(0, len(CHANNELS), (batch_size,), generator=g)
        rows = []
        for i, c in enumerate(pick.tolist()):
            ch = CHANNELS[c]
            value = views[ch][i : i + 1]
            rows.append(to_model(value if ch == "image" else encode(ch, value)))
        x0 = model.encode(torch.cat(rows))
        t = model.draw_timesteps(batch_size, g)
        eps = torch.randn(x0.shape, generator=g)
        pred = model(model.add_noise(x0, eps, t), t)
        return torch.nn.functional.mse_loss(pred.float(), model.target(x0, eps, t))

    return loss_fn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="teamwork_cli/weights/base")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--pool", type=int, default=1536)
    ap.add_argument("--pool-seed", type=int, default=0, help="first procedural seed of the training pool")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/pretrain", help="folder for the pool cache and resumable state")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = Path(args.work)
    pool = load_or_build_pool(work.parent / f"pool_{args.pool}_256_{args.pool_seed}.pt", args.pool, 256, args.pool_seed)
    model = EmbeddedDenoiser.from_config(DEFAULT_CONFIG)
    cfg = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=100, seed=args.seed, checkpoint_every=100
    )
    t0, first = time.time(), [None]

    def progress(step: int, total: int, loss: float) -> None:
        if first[0] is None:
            first[0] = step - 1
        if step % 10 == 0 or step == total:
            rate = (step - first[0]) / max(1e-9, time.time() - t0)
            print(f"step {step}/{total} loss {loss:.4f} {rate * 60:.0f} steps/min", file=sys.stderr, flush=True)

    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--resume"]
    command = "python -m teamwork_cli.training.pretrain " + " ".join(given)

    def save(m: EmbeddedDenoiser, step: int) -> None:
        m.save_pretrained(
            args.out,
            meta={"command": command, "steps": step, "pool": args.pool, "pool_seed": args.pool_seed, "size": args.size},
        )

    train(
        model,
        base_loss(pool, args.size, args.batch_size),
        cfg,
        work / "state.pt",
        resume=args.resume,
        on_checkpoint=save,
        progress=progress,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
