"""`teamwork info`: an adapter's header as text and JSON, and its errors."""

from __future__ import annotations

import json

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
