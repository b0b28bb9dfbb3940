"""Scoring estimated materials against ground truth: pairing by name, per-map and render RMSE, notes."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.graphics import scoring
from teamwork_cli.materials.files import ImageError


def _maps(diffuse: float = 0.4, roughness: float = 0.5) -> dict[str, torch.Tensor]:
    normals = torch.zeros(1, 3, 8, 8)
    normals[:, 2] = 1
    return {
        "diffuse": torch.full((1, 3, 8, 8), diffuse),
        "specular": torch.full((1, 3, 8, 8), 0.04),
        "roughness": torch.full((1, 1, 8, 8), roughness),
        "normals": normals,
    }


def test_score_maps_is_zero_for_the_same_maps_and_per_map_otherwise():
    gt = _maps()
    same = scoring.score_maps(gt, gt)
    assert list(same) == list(scoring.SCORES) == ["diffuse", "specular", "roughness", "normals", "render"]
    assert all(v == 0 for v in same.values())
    off = scoring.score_maps(_maps(roughness=0.7), gt)
    assert off["roughness"] == pytest.approx(0.2, rel=1e-5) and off["diffuse"] == 0 and off["render"] > 0


def test_scores_clip_values_to_the_unit_range_except_normals():
    gt = _maps(diffuse=1.0)
    assert scoring.score_maps(_maps(diffuse=3.0), gt)["diffuse"] == 0  # an EXR estimate above 1 counts as 1


def test_mean_scores():
    rows = [dict.fromkeys(scoring.SCORES, 1.0), dict.fromkeys(scoring.SCORES, 3.0)]
    assert scoring.mean_scores(rows) == dict.fromkeys(scoring.SCORES, 2.0)
    assert scoring.mean_scores([]) == {}


def test_pairing_by_stem_and_what_has_no_partner(tmp_path, make_material):
    for stem in ("brick", "tile"):
        make_material(tmp_path / "gt", stem)
    make_material(tmp_path / "pred", "brick")
    make_material(tmp_path / "pred", "stone")
    pairs, lost = scoring.pair_available(tmp_path / "pred", tmp_path / "gt")
    assert [p.name for p in pairs] == ["brick"] and lost == ["tile"]
    assert pairs[0].pred.folder == tmp_path / "pred" and pairs[0].gt.folder == tmp_path / "gt"
    with pytest.raises(ImageError, match="no prediction for tile .*predictions found: brick, stone"):
        scoring.pair_materials(tmp_path / "pred", tmp_path / "gt")
    make_material(tmp_path / "pred", "tile")
    assert [p.name for p in scoring.pair_materials(tmp_path / "pred", tmp_path / "gt")] == ["brick", "tile"]


def test_single_materials_pair_whatever_their_names_and_empty_ground_truth_is_an_error(tmp_path, make_material):
    make_material(tmp_path / "gt", "brick")
    make_material(tmp_path / "pred", "photo7")
    [pair] = scoring.pair_materials(tmp_path / "pred", tmp_path / "gt")
    assert pair.name == "brick" and pair.pred.name == "photo7"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no ground-truth materials found"):
        scoring.pair_materials(tmp_path / "pred", tmp_path / "empty")


def test_score_pair_resizes_a_prediction_and_says_so(tmp_path, make_material):
    make_material(tmp_path / "gt", "brick", seed=0)
    make_material(tmp_path / "pred", "brick", seed=0, size=8)
    [pair] = scoring.pair_materials(tmp_path / "pred", tmp_path / "gt")
    scores, notes = scoring.score_pair(pair)
    assert set(scores) == set(scoring.SCORES) and all(v >= 0 for v in scores.values())
    assert any("prediction is 8x8, resized to the ground truth's 16x16" in n for n in notes)
    make_material(tmp_path / "same", "brick", seed=0)
    same, notes = scoring.score_pair(scoring.pair_materials(tmp_path / "same", tmp_path / "gt")[0])
    assert all(v < 1e-6 for v in same.values()) and notes == []


def test_a_prediction_without_every_map_is_an_error_never_a_default(tmp_path, make_material):
    make_material(tmp_path / "gt", "brick")
    make_material(tmp_path / "pred", "brick", channels=("diffuse", "normals"))
    [pair] = scoring.pair_materials(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(ImageError, match="prediction 'brick' has no specular, roughness map"):
        scoring.score_pair(pair)
    make_material(tmp_path / "gltf", "brick", channels=("basecolor", "metallic", "roughness", "normals"))
    scores, _ = scoring.score_pair(scoring.pair_materials(tmp_path / "gltf", tmp_path / "gt")[0])
    assert set(scores) == set(scoring.SCORES)  # basecolor + metallic stand for diffuse + specular
