"""Scoring estimated materials against ground truth, folder against folder (docs/conventions.md section 4).

Materials are paired by name (stem, or sub-folder name for bare `<channel>.<ext>` files); a folder holding
a single material is paired with a single material whatever their names.  Predictions must have every map
(diffuse and specular may come as basecolor + metallic): a missing map is an error, never a default.  Ground
truth may lack specular/normals/roughness/metallic (e.g. dielectric scans): those get the defaults of
materials/folders.py, with a note.  A prediction of another size is resampled to the ground truth's size (box filter
when shrinking, bilinear when growing), with a note: estimators often work at a fixed resolution, and
resampling the estimate leaves the reference untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from teamwork_cli.graphics.render import map_rmse, render_rmse
from teamwork_cli.materials.files import ImageError
from teamwork_cli.materials.folders import MAPS, MaterialFiles, find_material, find_materials, read_material

SCORES = (*MAPS, "render")


@dataclass(frozen=True)
class Pair:
    name: str
    pred: MaterialFiles
    gt: MaterialFiles


def _materials(source: Path) -> list[MaterialFiles]:
    """A folder's materials, or the one material of a prefix."""
    return find_materials(source) if source.is_dir() else [find_material(source)]


def pair_materials(pred: Path | str, gt: Path | str) -> list[Pair]:
    """Ground-truth materials with their predictions; raises ImageError naming what has no partner."""
    pairs, lost = pair_available(pred, gt)
    if lost:
        raise ImageError(lost_message(pred, lost))
    return pairs


def pair_available(pred: Path | str, gt: Path | str) -> tuple[list[Pair], list[str]]:
    """The ground-truth materials that have a prediction, paired, and the names of those that have none."""
    preds, gts = _materials(Path(pred)), _materials(Path(gt))
    if not gts:
        raise ImageError(f"{gt}: no ground-truth materials found")
    if len(preds) == 1 and len(gts) == 1:
        return [Pair(gts[0].name, preds[0], gts[0])], []
    by_name = {m.name: m for m in preds}
    return [Pair(m.name, by_name[m.name], m) for m in gts if m.name in by_name], [
        m.name for m in gts if m.name not in by_name
    ]


def lost_message(pred: Path | str, lost: list[str]) -> str:
    found = sorted(m.name for m in _materials(Path(pred)))  # what there is, to spot a misnamed stem
    return (
        f"{pred}: no prediction for {', '.join(lost)} (materials pair by stem; predictions found: "
        f"{', '.join(found) or 'none'})"
    )


def _clip(maps: dict[str, Tensor]) -> dict[str, Tensor]:
    # Section 4 scores maps in [0, 1]: EXR estimates may stray outside.
    return {c: v if c == "normals" else v.clamp(0, 1) for c, v in maps.items()}


def score_maps(pred: dict[str, Tensor], gt: dict[str, Tensor], fov_deg: float = 45.0) -> dict[str, float]:
    """Per-map RMSE (diffuse, specular, roughness, normals) and render RMSE of value-domain maps [1, C, H, W]."""
    pred, gt = _clip(pred), _clip(gt)
    with torch.no_grad():
        scores = {c: map_rmse(pred, gt, c) for c in MAPS}
        scores["render"] = render_rmse(pred, gt, fov_deg=fov_deg)
    return scores


def score_pair(
    pair: Pair, fov_deg: float = 45.0, normal_convention: str = "opengl"
) -> tuple[dict[str, float], list[str]]:
    """Scores of one pair, and notes on defaulted ground truth or resized predictions."""
    missing = pair.pred.missing(strict=True)
    if missing:
        where = pair.pred.folder / (pair.pred.stem + "_*" if pair.pred.stem else "")
        raise ImageError(
            f"{where}: prediction {pair.name!r} has no {', '.join(missing)} map "
            f"(found: {', '.join(sorted(pair.pred.files)) or 'none'})"
        )
    gt, notes = read_material(pair.gt)
    pred, pred_notes = read_material(pair.pred, normal_convention=normal_convention)
    hw, own = gt["diffuse"].shape[-2:], pred["diffuse"].shape[-2:]
    if own != hw:
        notes.append(f"{pair.name}: prediction is {own[1]}x{own[0]}, resized to the ground truth's {hw[1]}x{hw[0]}")
        pred, pred_notes = read_material(pair.pred, size=(hw[0], hw[1]), normal_convention=normal_convention)
    notes += pred_notes
    return score_maps(pred, gt, fov_deg), notes


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in SCORES} if rows else {}
