"""`teamwork info FILE.safetensors`: what a Teamwork adapter file holds."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from teamwork_cli.core.errors import TeamworkError


def info(
    path: Path = typer.Argument(
        ...,
        metavar="ADAPTER",
        help="A Teamwork adapter (.safetensors, published "
        "format), or a shipped adapter's name (e.g. inpaint-diffusion).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show an adapter's title, base model, teammates, rank, coordination, layers, joint attention (with its
    attn_allow and teammate image ids), parameters, and how it was trained (objective: diffusion or one-step;
    steps, a one-step start, an inpainting hole fill and hole loss, when the file says)."""
    from teamwork_cli.adapters.checkpoint import read_adapter_info
    from teamwork_cli.models.hub.resolve import resolve_adapter

    path = resolve_adapter(path)
    try:
        a = read_adapter_info(path)
    except ValueError as e:
        raise TeamworkError(
            str(e),
            "give a Teamwork adapter: a .safetensors file written by `teamwork finetune` or published with the paper",
        ) from None
    data = {
        "path": str(path),
        "title": a.title,
        "base_model": a.base_model,
        "inputs": a.inputs,
        "outputs": a.outputs,
        "rank": a.rank,
        "coordination": a.communication,
        "use_bias": a.use_bias,
        "profile": a.profile,
        "architecture": a.architecture,
        "resolution": a.resolution,
        "adapted_layers": a.num_layers,
        # joint attention across teammates: the file's `P.adapter` markers or a *_PLUSATTN profile
        "joint_attention": a.joint,
        "joint_attention_modules": len(a.joint_attention),
        "attn_allow": a.attn_allow,  # which teammates each may attend to, e.g. 100;011;011 (not recorded: all)
        "teammate_image_ids": a.teammate_image_ids,  # per-teammate RoPE image-id offsets, where recorded
        "parameters": a.num_params,
        # one-step: a deterministic estimator (finetune --one-step); diffusion: sampled (files without the key)
        "objective": a.metadata.get("teamwork.objective", "diffusion"),
        "train_steps": _int_or_none(a.metadata.get("teamwork.train_steps")),
    }
    if "teamwork.one_step_start" in a.metadata:  # finetune --start: outputs that start from an input's guess
        data["start"] = (
            f"{a.metadata['teamwork.one_step_start'] or '(none)'} at level "
            f"{a.metadata.get('teamwork.one_step_level', '1.0')}"
        )
    if "teamwork.hole_fill" in a.metadata:  # inpainting adapters: what the team sees in a hole (tasks.inpaint)
        data["hole_fill"] = a.metadata["teamwork.hole_fill"]
    if "teamwork.loss" in a.metadata:  # finetune --hole-loss: trained on the holes only
        data["loss"] = a.metadata["teamwork.loss"]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    width = max(len(k) for k in data)
    for k, v in data.items():
        if v is None:
            v = "(not recorded)"
        elif isinstance(v, list):
            v = ", ".join(str(x) for x in v) or "(none)"
        elif isinstance(v, bool):
            v = "on" if v else "off"
        elif isinstance(v, int):
            v = f"{v:,}"
        typer.echo(f"{k.replace('_', ' '):<{width}}  {v}")


def _int_or_none(text: str | None) -> int | str | None:
    """Metadata values are strings (safetensors); a step count reads better as a number, in JSON too."""
    try:
        return int(text) if text is not None else None
    except ValueError:
        return text
