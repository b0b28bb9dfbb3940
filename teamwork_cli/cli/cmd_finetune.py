"""`teamwork finetune`: train a Teamwork adapter for any channel set on any supported base."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from teamwork_cli.cli import options as O
from teamwork_cli.core import distributed
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import OutputExistsError


def finetune(
    out: Path = typer.Option(..., "-o", "--out", help="The adapter file to write (.safetensors, published format)."),
    channels: str = typer.Option(None, "--channels", help="Teammates, e.g. image.in,diffuse.out,normals.out."),
    preset: str = typer.Option(
        None, "--preset", help="A preset's teammates instead of --channels (see `teamwork presets`)."
    ),
    data: str = typer.Option(
        ...,
        "--data",
        help="DIR with DIR/<sample>/<channel>.<png|jpg|exr|tif> (a sample "
        "may lack channels), or generated data: procedural:svbrdf, procedural:scenes, "
        "procedural:inpaint, "
        "procedural:synthesize.",
    ),
    base: str = typer.Option(None, "--base", help="Base model: a diffusers folder or hub id (default: embedded)."),
    transformer: str = O.TRANSFORMER_OPT,
    steps: int = typer.Option(1000, "--steps", min=1, help="Optimizer steps."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per micro-batch (each a whole team)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per optimizer step."),
    resolution: int = typer.Option(128, "--resolution", min=16, help="Training crop size in pixels."),
    rank: int = typer.Option(16, "--rank", help="Rank of the low-rank coordination offset."),
    coordination: bool = typer.Option(
        True,
        "--coordination/--no-coordination",
        help="Teammates read each other (the paper's method) or not (ablation).",
    ),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw or prodigy."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate for AdamW (Prodigy sets its own)."),
    warmup: int = typer.Option(50, "--warmup", help="Warm-up steps of the learning-rate schedule."),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine or constant after warm-up."),
    clip: float = typer.Option(1.0, "--clip", help="Gradient norm clipping (0: off)."),
    dropout: float = typer.Option(0.0, "--dropout", help="Probability to drop each teammate of a sample."),
    seed: int = typer.Option(0, "--seed", min=0, max=O.SEED_MAX, help="Seed of the whole run (data, noise, init)."),
    checkpoint_every: int = typer.Option(100, "--checkpoint-every", help="Steps between checkpoints."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from OUT.state.pt."),
    mixed_precision: str = typer.Option(
        "auto",
        "--mixed-precision",
        help="auto (bf16 on a GPU or on a CPU with native bf16, else no), bf16, fp16 or no.",
    ),
    title: str = typer.Option(None, "--title", help="modelspec.title of the file (default: from the channels)."),
    pool: int = typer.Option(1536, "--pool", help="procedural: number of cached materials to draw views from."),
    pool_seed: int = typer.Option(0, "--pool-seed", help="procedural: first seed of the material pool."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads for torch (0: default)."),
    init: Path = typer.Option(
        None,
        "--init",
        help="Start from this adapter's weights (same teammates, base, "
        "--rank and coordination) instead of a fresh adapter: continue a shipped or "
        "published adapter on more or other data. Its step count is recorded in OUT.",
    ),
    timestep_mean: float = typer.Option(
        0.0,
        "--timestep-mean",
        help="Flow models: mean of the logit-normal noise-level draw; >0 favours high noise (estimation tasks).",
    ),
    one_step: bool = typer.Option(
        False,
        "--one-step",
        help="Train a deterministic one-step estimator (outputs "
        "from zero at the last timestep, loss on the clean outputs) instead of a "
        "denoiser: for estimation tasks (svbrdf, intrinsics, shade), not for generation. "
        "Recorded in the file; the commands then run it in one step, no noise.",
    ),
    start: str = typer.Option(
        None,
        "--start",
        help="With --one-step: outputs that start from an input's "
        "guess instead of from zero, as OUT=IN[,OUT=IN...], e.g. image.out=deferred.in "
        "(shade) or image.out=image.in (inpaint with --hole-fill harmonic).",
    ),
    start_level: float = typer.Option(
        1.0,
        "--start-level",
        help="With --start: the noise level (a fraction of "
        "the last timestep) the guess is given at; small keeps it nearly as is.",
    ),
    hole_fill: str = typer.Option(
        "grey",
        "--hole-fill",
        help="procedural:inpaint: show the team each hole as "
        "mid grey or as its harmonic fill (a smooth guess it refines). Recorded in the "
        "file; `teamwork inpaint` fills holes the same way.",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace OUT (and start over from a killed run's OUT.state.pt, which --resume would continue).",
    ),
    hole_loss: bool = typer.Option(
        False,
        "--hole-loss",
        help="Inpainting teams (mask.in): the loss counts only "
        "the holes and their seams, the pixels `teamwork inpaint` keeps; outside, the "
        "input is composited back anyway.",
    ),
    joint_attention: bool = typer.Option(
        False,
        "--joint-attention",
        help="The teammates of each image also attend to each other (the reference's *_PLUSATTN profiles: "
        "SD3, Flux, FLUX.2-klein, SD2/SDXL bases); recorded in the file, which loads the same way.",
    ),
    attn_allow: str = typer.Option(
        None,
        "--attn-allow",
        help="With --joint-attention: whom each teammate may attend to, one row per teammate in --channels "
        "order, e.g. 100;011;011 (default: everyone).",
    ),
) -> None:
    """Train an adapter that makes the base model's copies work as a team (inputs clean, outputs denoised).

    Single process on a CPU or GPU, or many: `accelerate launch -m teamwork_cli finetune ...`. A checkpoint
    (OUT.state.pt, plus OUT itself) is written every --checkpoint-every steps; --resume continues exactly.

    Example: teamwork finetune --preset svbrdf --data procedural:svbrdf -o svbrdf.safetensors --steps 2000
    """
    import torch

    from teamwork_cli.adapters.config import parse_attn_allow
    from teamwork_cli.core.layout import TeamLayout, load_preset
    from teamwork_cli.graphics.holefill import HOLE_FILLS
    from teamwork_cli.models.embedded import pixel_multiple as embedded_pixel_multiple
    from teamwork_cli.models.loading import check_transformer_base
    from teamwork_cli.training.finetune import PROCEDURAL, check_start, make_source, train_adapter
    from teamwork_cli.training.loop import TrainConfig

    if (channels is None) == (preset is None):
        raise typer.BadParameter(
            "give exactly one of --channels and --preset (e.g. --preset svbrdf, or --channels image.in,diffuse.out)",
            param_hint="--channels / --preset",
        )
    try:  # bad names are bad usage (exit 2), found before any data or model loads
        layout = load_preset(preset) if preset else TeamLayout.from_names(channels)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--preset" if preset else "--channels") from None
    pairs = [p.strip() for p in (start or "").split(",") if p.strip()]
    if any(p.count("=") != 1 for p in pairs):
        raise typer.BadParameter(f"must be OUT=IN[,OUT=IN...], got {start!r}", param_hint="--start")
    start_map = dict(p.split("=") for p in pairs)
    if len(start_map) < len(pairs):
        raise typer.BadParameter(f"each output may start from one input; got {start!r}", param_hint="--start")
    try:  # bad usage found before the data is built or the base loads
        check_start(layout, start_map, start_level, one_step)
        TrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            schedule=schedule,
            warmup=warmup,
            grad_accum=grad_accum,
            clip=clip,
            seed=seed,
            checkpoint_every=checkpoint_every,
            mixed_precision=mixed_precision,
        ).check()
    except ValueError as e:  # "<field> must ...": named as the option the user typed
        field, _, rest = str(e).partition(" ")
        hint = "--" + field.replace("_", "-") if field in TrainConfig.__dataclass_fields__ else None
        raise typer.BadParameter(rest if hint else str(e), param_hint=hint) from None
    if rank < 1:
        raise typer.BadParameter(f"must be at least 1; got {rank}", param_hint="--rank")
    if not 0 <= dropout < 1:  # 1 would drop every teammate of every sample
        raise typer.BadParameter(f"must be in [0, 1); got {dropout}", param_hint="--dropout")
    if data.startswith("procedural:") and data.removeprefix("procedural:") not in PROCEDURAL:
        raise typer.BadParameter(
            f"{data}: generated data is one of {', '.join('procedural:' + k for k in PROCEDURAL)}", param_hint="--data"
        )
    if hole_fill not in HOLE_FILLS:
        raise typer.BadParameter(f"must be one of {', '.join(HOLE_FILLS)}; got {hole_fill!r}", param_hint="--hole-fill")
    if attn_allow is not None:
        if not joint_attention:
            raise typer.BadParameter("masks joint attention: give --joint-attention with it", param_hint="--attn-allow")
        try:
            parse_attn_allow(attn_allow, len(layout))
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--attn-allow") from None
    check_transformer_base(base, transformer)  # before the data is built
    if base is None and resolution % (m := embedded_pixel_multiple()):  # other bases: checked once loaded
        raise typer.BadParameter(
            f"must be a multiple of {m} for the embedded base; got {resolution}", param_hint="--resolution"
        )
    if out.is_dir():  # bad usage, found before any data loads or a step trains
        raise typer.BadParameter(
            f"{out} is a folder; give the adapter file to write, e.g. {out / 'adapter.safetensors'}",
            param_hint="'-o' / '--out'",
        )
    parent = out.parent
    if not parent.is_dir():
        raise TeamworkError(
            f"{out}: the folder {parent} does not exist", "create it first, or give -o in an existing folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TeamworkError(f"{out}: the folder {parent} is not writable", "give -o in a folder you can write to")
    state = out.with_name(out.name + ".state.pt")
    if not resume and not overwrite:
        if state.exists():
            raise OutputExistsError(
                f"{state}: a run's training state exists; --resume continues it, --overwrite starts over"
            )
        if out.exists():
            raise OutputExistsError(f"{out}: already exists; pass --overwrite to replace it")
    if resume and state.is_file():  # a run continues as it began: caught here, not as a shape error after loading
        from teamwork_cli.training.loop import saved_team

        saved = saved_team(state)
        if saved is not None and saved[1] != rank:
            raise typer.BadParameter(
                f"the run in {state} has rank {saved[1]}; --resume continues it with the same --rank "
                f"(or start over with --overwrite)",
                param_hint="--rank",
            )
        if saved is not None and saved[0] != len(layout):
            raise typer.BadParameter(
                f"the run in {state} has {saved[0]} teammates, these channels {len(layout)}; --resume continues "
                "it with the same team",
                param_hint="--channels / --preset",
            )
    if overwrite and not resume and distributed.current().is_main:
        state.unlink(missing_ok=True)  # a later --resume must continue this run, not the replaced one
    if threads:
        torch.set_num_threads(threads)
    source = make_source(data, layout, resolution, pool=pool, pool_seed=pool_seed, hole_fill=hole_fill)
    t0 = time.time()
    first: list[int] = []

    def progress(step: int, total: int, loss: float) -> None:
        if not first:
            first.append(step - 1)
        if step % 10 == 0 or step == total:
            rate = (step - first[0]) / max(1e-9, time.time() - t0) * 60
            print(f"step {step}/{total} loss {loss:.4f} {rate:.1f} steps/min", file=sys.stderr, flush=True)

    argv = [a for a in sys.argv[1:] if a != "--resume"]
    done = train_adapter(
        layout,
        source,
        out,
        base=base,
        transformer=transformer,
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        rank=rank,
        coordination=coordination,
        optimizer=optimizer,
        lr=lr,
        warmup=warmup,
        schedule=schedule,
        clip=clip,
        dropout=dropout,
        seed=seed,
        resolution=resolution,
        checkpoint_every=checkpoint_every,
        resume=resume,
        mixed_precision=mixed_precision,
        title=title,
        command="teamwork " + " ".join(argv),
        progress=progress,
        logit_mean=timestep_mean,
        init=init,
        one_step=one_step,
        metadata={"teamwork.hole_fill": hole_fill} if hole_fill != "grey" else None,
        start=start_map,
        start_level=start_level,
        hole_loss=hole_loss,
        joint_attention=joint_attention,
        attn_allow=attn_allow,
    )
    typer.echo(str(out))
    print(f"{done} optimizer steps; adapter written to {out}", file=sys.stderr)
