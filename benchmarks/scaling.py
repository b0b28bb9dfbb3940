"""How a step's cost grows with the team size T: Teamwork coordination vs joint attention (paper Fig. 1d).

A tiny SD3 MMDiT (diffusers `SD3Transformer2DModel`, random weights) runs one forward for one image with all T
teammates active, T = 2, 4, 8, 16:
- teamwork: per-teammate adapters with low-rank coordination (docs/conventions.md section 5), per-row attention;
- joint: the same adapters without coordination, teammates coupled by attending over all T token sequences.

Real SD3 at 1024 px has 4096 image tokens per teammate (128 x 128 latents, 2 x 2 patches) and width 1536; this
CPU cannot run that, so tokens and width are scaled down (defaults 1024 tokens, width 128).  Teamwork's cost is
linear in T, so T16/T8 stays near 2 (target <= 2.2); joint attention's sequence grows with T and its attention
cost with T^2, so its T16/T8 ratio rises towards 4 as attention dominates.

    python benchmarks/scaling.py [--tokens 1024] [--width 128] [--layers 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
from diffusers import SD3Transformer2DModel

from teamwork_cli.adapters.model import adapter_layers, inject_adapter, remove_adapter, team_context
from teamwork_cli.core.team import TeamBatch
from teamwork_cli.models.joint_attention import disable_joint_attention, enable_joint_attention

HEAD_DIM = 64  # SD3's attention head width
CONTEXT_TOKENS = 77  # prompt tokens per row (SD3 has 77 CLIP + 256 T5; scaled like the image tokens)


def build(tokens: int, width: int, layers: int) -> SD3Transformer2DModel:
    side = int(math.isqrt(tokens))
    if side * side != tokens:
        raise ValueError(f"--tokens must be a square number (a square latent), got {tokens}")
    if width % HEAD_DIM:
        raise ValueError(f"--width must be a multiple of {HEAD_DIM}, got {width}")
    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=2 * side,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=layers,
        attention_head_dim=HEAD_DIM,
        num_attention_heads=width // HEAD_DIM,
        joint_attention_dim=width,
        caption_projection_dim=width,
        pooled_projection_dim=width,
        pos_embed_max_size=side,
    ).eval()


def time_forward(model: SD3Transformer2DModel, state_or_model, t: int, side: int, width: int, repeats: int) -> float:
    x = torch.randn(t, 16, 2 * side, 2 * side)
    ctx = torch.randn(t, CONTEXT_TOKENS, width)
    pooled = torch.randn(t, width)
    steps = torch.full((t,), 500.0)
    batch = TeamBatch.from_active(torch.ones(1, t, dtype=torch.bool))
    times = []
    with torch.no_grad(), team_context(state_or_model, batch):
        for i in range(repeats + 1):  # the first run warms up allocators and kernels
            start = time.perf_counter()
            model(x, encoder_hidden_states=ctx, pooled_projections=pooled, timestep=steps)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1024, help="image tokens per teammate (SD3 1024 px: 4096)")
    ap.add_argument("--width", type=int, default=128, help="transformer width (SD3 medium: 1536)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rank", type=int, default=32, help="adapter rank")
    ap.add_argument("--teams", default="2,4,8,16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads; 1 gives steadier figures on a shared CPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teams = [int(t) for t in args.teams.split(",")]
    model = build(args.tokens, args.width, args.layers)
    side = int(math.isqrt(args.tokens))
    print(
        f"SD3 MMDiT, {args.layers} layers, width {args.width}, {args.tokens} image + {CONTEXT_TOKENS} prompt "
        f"tokens per teammate, rank {args.rank}, {args.threads} thread(s), median of {args.repeats}"
    )
    result: dict[str, dict[int, float]] = {"teamwork": {}, "joint": {}}
    for t in teams:
        for mode in ("teamwork", "joint"):
            inject_adapter(model, None, t, args.rank, communication=mode == "teamwork")
            with torch.no_grad():  # non-zero `up` so that no work can be skipped
                for layer in adapter_layers(model).values():
                    layer.adapter.up.normal_(0.0, 0.01)
            if mode == "joint":
                enable_joint_attention(model)
            result[mode][t] = time_forward(model, model, t, side, args.width, args.repeats)
            if mode == "joint":
                disable_joint_attention(model)
            remove_adapter(model)
    print(f"{'T':>4} {'teamwork s/step':>16} {'joint s/step':>14} {'joint/teamwork':>15}")
    for t in teams:
        tw, jt = result["teamwork"][t], result["joint"][t]
        print(f"{t:>4} {tw:>16.3f} {jt:>14.3f} {jt / tw:>15.2f}")
    for mode, series in result.items():
        ratios = ", ".join(f"T{b}/T{a} = {series[b] / series[a]:.2f}" for a, b in zip(teams, teams[1:], strict=False))
        print(f"{mode}: {ratios}")
    if 8 in teams and 16 in teams:
        r = result["teamwork"][16] / result["teamwork"][8]
        print(f"teamwork T16/T8 = {r:.2f} ({'ok' if r <= 2.2 else 'FAILS'}: target <= 2.2)")


if __name__ == "__main__":
    main()
