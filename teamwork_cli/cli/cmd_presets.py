"""`teamwork presets`: the team layouts that ship with teamwork."""

from __future__ import annotations

import json

import typer

from teamwork_cli.core.layout import available_presets, load_preset


def presets(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the preset team layouts (presets/*.json) with their input and output teammates."""
    layouts = [load_preset(n) for n in available_presets()]
    if as_json:
        data = {
            lt.name: {
                "description": lt.description,
                "inputs": [t.name for t in lt.inputs],
                "outputs": [t.name for t in lt.outputs],
            }
            for lt in layouts
        }
        typer.echo(json.dumps(data, indent=2))
        return
    for lt in layouts:
        typer.echo(f"{lt.name}: {lt.description}")
        typer.echo(f"  in:  {', '.join(t.name for t in lt.inputs) or '(none)'}")
        typer.echo(f"  out: {', '.join(t.name for t in lt.outputs)}")
