"""Training data of the four tasks: procedural:inpaint blanks the input teammate; finetune runs on each source."""

from __future__ import annotations

import pytest
import torch

from teamwork_cli.cli.app import main
from teamwork_cli.core.layout import load_preset
from teamwork_cli.training.finetune import make_source


def test_inpaint_source_blanks_only_the_input_under_the_mask(tmp_path):
    src = make_source("procedural:inpaint", load_preset("inpaint-material"), 16, pool=3, cache=tmp_path)
    data = src(2, torch.Generator().manual_seed(0))
    m = data["mask"]
    for c in ("diffuse", "specular", "roughness", "normals"):
        x, blanked = data[c], data[f"{c}.in"]
        assert torch.equal(blanked * (1 - m), x * (1 - m))
        assert torch.equal(blanked * m, (0.5 * m).expand_as(x))
    with pytest.raises(ValueError, match="procedural:bricks: unknown generator; available: procedural:svbrdf"):
        make_source("procedural:bricks", load_preset("inpaint"), 16)


@pytest.mark.parametrize("preset,kind", [("inpaint", "inpaint"), ("shade", "scenes"), ("synthesize", "synthesize")])
def test_finetune_on_task_sources(tmp_path, tiny_base, monkeypatch, preset, kind):
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "a.safetensors"
    assert main(["finetune", "--preset", preset, "--data", f"procedural:{kind}", "--base", str(tiny_base), "-o",
                 str(out), "--steps", "1", "--batch-size", "2", "--resolution", "16", "--rank", "2", "--pool", "3",
                 "--mixed-precision", "no"]) == 0
    assert out.is_file()


def test_finetune_renders_scenes_in_fp32_under_bf16_training(tmp_path, tiny_base, monkeypatch):
    """The scene tracer runs inside the loss; the trainer's bf16 autocast must not reach it (it once did)."""
    monkeypatch.setenv("TEAMWORK_CACHE", str(tmp_path))
    out = tmp_path / "a.safetensors"
    assert main(["finetune", "--preset", "intrinsics", "--data", "procedural:scenes", "--base", str(tiny_base),
                 "-o", str(out), "--steps", "1", "--batch-size", "1", "--resolution", "16", "--rank", "2",
                 "--mixed-precision", "bf16"]) == 0
    assert out.is_file()
