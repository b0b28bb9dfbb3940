"""Cost of the Teamwork adapter over the frozen base layer (CPU, fp32, torch.no_grad, one process).

Prints median wall times (base and adapted runs alternate) of the base forward on a batch of T rows (one
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

from teamwork_cli.adapter import TeamBatch, inject_adapter, team_context


def median_ms_pair(base: Callable[[], object], adapted: Callable[[], object], repeats: int,
                   warmup: int = 3) -> tuple[float, float]:
    """Median times of two functions, measured alternately so load from other processes hits both alike."""
    for _ in range(warmup):
        base()
        adapted()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((base, times[0]), (adapted, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[0]), 1000 * statistics.median(times[1])


def randomise_up(model: nn.Module) -> None:
    # A fresh adapter has up = 0; give it real values so no step can be skipped.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("adapter.up"):
                p.normal_(0.0, 0.02)


def compare(label: str, model: nn.Module, layers: list[str] | None, make_input: Callable[[int], dict],
            teammates: int, rank: int, repeats: int) -> tuple[float, float]:
    inputs = make_input(teammates)
    batch = TeamBatch.from_active(torch.ones(1, teammates, dtype=torch.bool))
    team = copy.deepcopy(model)
    inject_adapter(team, layers, teammates, rank)
    randomise_up(team)

    def adapted() -> object:
        with team_context(team, batch):
            return team(**inputs)

    base_ms, team_ms = median_ms_pair(lambda: model(**inputs), adapted, repeats)
    print(f"{label:<34} T={teammates}  base {base_ms:8.2f} ms  adapted {team_ms:8.2f} ms  "
          f"ratio {team_ms / base_ms:5.3f}")
    return base_ms, team_ms


def scaling(label: str, times: dict[int, tuple[float, float]]) -> None:
    (b4, a4), (b8, a8) = times[4], times[8]
    print(f"{label} adapted T=8 / T=4: {a8 / a4:.3f}   (base T=8 / T=4: {b8 / b4:.3f}; "
          f"adapter-only overhead T=8 / T=4: {(a8 - b8) / (a4 - b4):.3f})")


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
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 gives steadier figures on a shared CPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, no_grad, median of "
          f"{args.repeats}")
    with torch.no_grad():
        linear = Wrapped(nn.Linear(1536, 1536))
        times: dict[int, tuple[float, float]] = {}
        for t in (4, 8):
            times[t] = compare("(a) Linear 1536->1536 rank 64", linear, ["layer"],
                               lambda n: {"x": torch.randn(n, args.tokens, 1536)}, t, 64, args.repeats)
        scaling("(a)", times)

        from diffusers import SD3Transformer2DModel

        sd3 = SD3Transformer2DModel(sample_size=32, patch_size=2, in_channels=4, num_layers=2,
                                    attention_head_dim=32, num_attention_heads=4, joint_attention_dim=64,
                                    caption_projection_dim=128, pooled_projection_dim=32, out_channels=4).eval()

        def sd3_input(n: int) -> dict:
            return {"hidden_states": torch.randn(n, 4, 32, 32), "encoder_hidden_states": torch.randn(n, 8, 64),
                    "pooled_projections": torch.randn(n, 32), "timestep": torch.full((n,), 500.0)}

        for t in (4, 8):
            times[t] = compare("(b) tiny SD3 (width 128, 256 tok)", sd3, None, sd3_input, t, 16, args.repeats)
        scaling("(b)", times)


if __name__ == "__main__":
    main()
