"""Cost of the Teamwork adapter over the frozen base layer (CPU, fp32, torch.no_grad, one process).

Prints median wall times (all runs interleaved) of the base forward on a batch of T rows (one
image, every teammate active) and of the adapted forward (non-zero `up`, coordination on), their ratio, and
the T=8 / T=4 ratio of adapted time.
Targets: adapted/base <= 1.15 at SD3 width with T=4; T8/T4 <= 2.1.

    python benchmarks/adapter_overhead.py [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from teamwork_cli.adapters.model import inject_adapter, team_context
from teamwork_cli.core.team import TeamBatch


def median_ms(fns: list[Callable[[], object]], repeats: int, warmup: int = 3) -> list[float]:
    """Median times of several functions measured round-robin, so load from other processes drifts over all
    of them alike instead of biasing one."""
    times: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + repeats):
        for fn, out in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            if i >= warmup:
                out.append(time.perf_counter() - start)
    return [1000 * statistics.median(t) for t in times]


def randomise_up(model: nn.Module) -> None:
    # A fresh adapter has up = 0; give it real values so no step can be skipped.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("adapter.up"):
                p.normal_(0.0, 0.02)


def compare(
    label: str, model: nn.Module, layers: list[str] | None, make_input: Callable[[int], dict], rank: int, repeats: int
) -> None:
    fns: list[Callable[[], object]] = []
    for t in (4, 8):
        inputs = make_input(t)
        batch = TeamBatch.from_active(torch.ones(1, t, dtype=torch.bool))  # one image, all teammates active
        team = copy.deepcopy(model)
        inject_adapter(team, layers, t, rank)
        randomise_up(team)

        def adapted(team: nn.Module = team, batch: TeamBatch = batch, inputs: dict = inputs) -> object:
            with team_context(team, batch):
                return team(**inputs)

        fns += [lambda inputs=inputs: model(**inputs), adapted]
    base4, team4, base8, team8 = median_ms(fns, repeats)
    for t, base_ms, team_ms in ((4, base4, team4), (8, base8, team8)):
        print(f"{label:<34} T={t}  base {base_ms:8.2f} ms  adapted {team_ms:8.2f} ms  ratio {team_ms / base_ms:5.3f}")
    print(
        f"{label[:3]} adapted T=8 / T=4: {team8 / team4:.3f}   (base: {base8 / base4:.3f}; "
        f"adapter-only overhead: {(team8 - base8) / (team4 - base4):.3f})"
    )


class Wrapped(nn.Module):
    """A lone layer inside a module so it can be adapted by name."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); 1 gives steadier figures on a shared CPU",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, no_grad, median of {args.repeats}")
    with torch.no_grad():
        linear = Wrapped(nn.Linear(1536, 1536))
        compare(
            "(a) Linear 1536->1536 rank 64",
            linear,
            ["layer"],
            lambda n: {"x": torch.randn(n, args.tokens, 1536)},
            64,
            args.repeats,
        )

        from diffusers import SD3Transformer2DModel

        sd3 = SD3Transformer2DModel(
            sample_size=32,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=32,
            num_attention_heads=4,
            joint_attention_dim=64,
            caption_projection_dim=128,
            pooled_projection_dim=32,
            out_channels=4,
        ).eval()

        def sd3_input(n: int) -> dict:
            return {
                "hidden_states": torch.randn(n, 4, 32, 32),
                "encoder_hidden_states": torch.randn(n, 8, 64),
                "pooled_projections": torch.randn(n, 32),
                "timestep": torch.full((n,), 500.0),
            }

        compare("(b) tiny SD3 (width 128, 256 tok)", sd3, None, sd3_input, 16, args.repeats)


if __name__ == "__main__":
    main()
