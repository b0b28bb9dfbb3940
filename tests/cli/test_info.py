"""`teamwork info`: an adapter's header as text and JSON, and its errors."""

from __future__ import annotations

import json

import torch

SVBRDF = ["image.in", "halfway.in", "diffuse.out", "specular.out", "roughness.out", "normals.out"]


def test_info_text_and_json(tiny_svbrdf_adapter, capsys, run):
    code, out, err = run(["info", str(tiny_svbrdf_adapter)], capsys)
    assert code == 0, err
    assert "tiny test adapter" in out and "image.in, halfway.in" in out and "coordination" in out
    code, out, _ = run(["info", str(tiny_svbrdf_adapter), "--json"], capsys)
    data = json.loads(out)
    assert data["inputs"] == SVBRDF[:2] and data["outputs"] == SVBRDF[2:]
    assert data["rank"] == 4 and data["coordination"] is True
    assert data["adapted_layers"] > 0 and data["parameters"] > 0
    assert data["objective"] == "diffusion" and data["train_steps"] is None  # a file that does not say


def test_info_errors(tmp_path, capsys, run):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    code, out, err = run(["info", str(bad)], capsys)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("Error:") and "bad.safetensors" in lines[0] and lines[1].startswith("Hint:")
    code, _, err = run(["info", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 1 and err.startswith("Error:") and "Traceback" not in err


def test_info_shows_joint_attention_and_its_keys(tmp_path, capsys, run):
    from safetensors.torch import save_file

    path = tmp_path / "joint.safetensors"
    tensors = {
        "transformer_blocks.0.attn.to_q.adapter.down": torch.zeros(3, 16, 2),
        "transformer_blocks.0.attn.to_q.adapter.up": torch.zeros(3, 2, 16),
        "transformer_blocks.0.attn.adapter": torch.zeros(()),
    }
    meta = {
        "modelspec.type": "teamwork",
        "teamwork.teammates": "image.in,diffuse.out,normals.out",
        "teamwork.lora_rank": "2",
        "teamwork.profile": "SD3_PLUSATTN",
        "teamwork.attn_allow": "100;011;011",
        "teamwork.teammate_image_ids": "0,1,2",
    }
    save_file(tensors, str(path), metadata=meta)
    code, out, err = run(["info", str(path), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["joint_attention"] is True and data["joint_attention_modules"] == 1
    assert data["attn_allow"] == "100;011;011" and data["teammate_image_ids"] == [0, 1, 2]
    assert data["parameters"] == 3 * 16 * 2 * 2  # the marker is no parameter
    code, out, _ = run(["info", str(path)], capsys)
    assert "attn allow" in out and "100;011;011" in out and "0, 1, 2" in out
