"""Commands whose implementation has not landed yet: they say so clearly (exit 1)."""

from __future__ import annotations

import typer

from ..errors import TeamworkError

PENDING = {
    "intrinsics": "Intrinsic decomposition of scene photos (albedo, shading, normals, depth, ...).",
    "inpaint": "Fill the masked region of an image or of a whole material.",
    "shade": "Neural shading: render an image from intrinsic channels.",
    "synthesize": "Generate complete materials from noise.",
}


def register(app: typer.Typer) -> None:
    for name, help_text in PENDING.items():

        def command(ctx: typer.Context, args: list[str] | None = typer.Argument(None, hidden=True),
                    _name: str = typer.Option(name, hidden=True)) -> None:
            raise TeamworkError(f"'teamwork {ctx.info_name}' is not available in this version yet",
                                "see the README for the commands that work today")

        app.command(name, help=help_text + " (not available yet)",
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(command)
