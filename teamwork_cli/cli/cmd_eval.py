"""`teamwork eval svbrdf --pred DIR --gt DIR`: scores of estimated material maps (docs/conventions.md section 4)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from teamwork_cli.cli import options as O
from teamwork_cli.core.errors import TeamworkError
from teamwork_cli.materials.files import ImageError

app = typer.Typer(
    help="Score estimates against ground truth.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)


@app.command("svbrdf")
def svbrdf(
    pred: Path = typer.Option(
        ...,
        "--pred",
        help="Estimated maps: a folder (<stem>_<channel>.<ext>, or one "
        "sub-folder per material) or a prefix such as out/brick.",
    ),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth maps, laid out like --pred; materials pair by stem."),
    fov: float = typer.Option(45.0, "--fov", help="Camera field of view of the renders, in degrees (0-180)."),
    normal_convention: str = typer.Option(
        "opengl",
        "--normal-convention",
        help="How --pred stores its normal maps: opengl (the default, as docs/conventions.md) or directx.",
        callback=lambda value: O.check_normal_convention(value),
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Per-map RMSE (diffuse, specular in linear values; roughness; normals as (n+1)/2) and render RMSE (mean
    over nine lights at (x, y, h), x, y in {-1, 0, 1}, of sRGB renders), per material and their mean.

    Every ground-truth material needs a prediction with all maps (diffuse + specular or basecolor + metallic,
    roughness, normals). A prediction of another size is resampled to the ground truth's, with a note on
    stderr. Ground truth without specular, roughness or normals maps gets 0.04, 0.5 or flat ones (noted).

    Example: teamwork eval svbrdf --pred out/ --gt data/test/
    """
    if not 0 < fov < 180:
        raise typer.BadParameter(f"must be between 0 and 180 degrees; got {fov}", param_hint="--fov")
    # The scorer (torch) loads here, not at start-up: `teamwork --help` stays fast.
    from teamwork_cli.graphics.scoring import SCORES, lost_message, mean_scores, pair_available, score_pair

    rows = {}
    try:
        pairs, lost = pair_available(pred, gt)
    except ImageError as e:
        raise TeamworkError(
            str(e),
            "--pred and --gt take folders of <stem>_<channel>.<ext> maps (or one "
            "sub-folder per material) or prefixes like out/brick; materials pair by stem",
        ) from e
    errors: list[object] = []
    if lost:  # failed rows, like an unreadable prediction: the others are still scored
        errors += lost
        typer.echo(f"Error: {lost_message(pred, lost)}", err=True)
    for pair in pairs:  # a material that cannot be scored is reported; the others still are
        try:
            scores, notes = score_pair(pair, fov_deg=fov, normal_convention=normal_convention)
        except (ImageError, ValueError, OSError) as e:
            errors.append(e)
            msg = str(e)
            typer.echo(f"Error: {msg if pair.name in msg else f'{pair.name}: {msg}'}", err=True)
            continue
        for note in notes:
            typer.echo(f"Note: {note}", err=True)
        rows[pair.name] = scores
    hint = (
        "a prediction needs diffuse, specular (or basecolor and metallic), roughness and normals maps, "
        "readable and of one size"
    )
    if not rows:
        raise TeamworkError(
            f"none of the {len(pairs) + len(lost)} materials could be scored (see the Error lines above)", hint
        )
    if errors:
        typer.echo(
            f"Hint: {len(errors)} of {len(pairs) + len(lost)} materials failed; the mean is over the other "
            f"{len(rows)} ({hint})",
            err=True,
        )
    mean = mean_scores(list(rows.values()))
    if as_json:
        typer.echo(
            json.dumps(
                {"task": "svbrdf", "fov_deg": fov, "count": len(rows), "materials": rows, "mean": mean}, indent=2
            )
        )
        return 1 if errors else 0
    width = max(len(n) for n in [*rows, "material", "mean"])
    typer.echo(f"{'material':<{width}}" + "".join(f"  {k:>9}" for k in SCORES))
    for name, scores in [*rows.items(), ("mean", mean)]:
        typer.echo(f"{name:<{width}}" + "".join(f"  {scores[k]:9.4f}" for k in SCORES))
    return 1 if errors else 0
