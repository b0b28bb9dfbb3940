"""`teamwork presets`: text and JSON."""

from __future__ import annotations

import json


def test_presets_text_and_json(capsys, run):
    code, out, _ = run(["presets"], capsys)
    assert code == 0 and "svbrdf:" in out and "image.in, halfway.in" in out
    code, out, _ = run(["presets", "--json"], capsys)
    data = json.loads(out)
    assert data["svbrdf"]["inputs"] == ["image.in", "halfway.in"]
    assert data["synthesize"]["inputs"] == []
    assert set(data) >= {"svbrdf", "intrinsics", "inpaint", "inpaint-material", "shade", "synthesize"}
